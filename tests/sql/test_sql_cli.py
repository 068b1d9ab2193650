"""``aiw sql`` and ``aiw insights``: output formats, atomic files, refusals with exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from aiw.settings import load_settings

pytestmark = pytest.mark.unit


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """``cli(workspace, *args)``: run the aiw CLI in-process against ``workspace``."""
    from aiw.cli import app

    runner = CliRunner()

    def run(ws: Any, *args: str) -> Any:
        monkeypatch.setenv("AIW_HOME", str(ws.root))
        monkeypatch.setenv("COLUMNS", "250")  # wide enough that rich does not fold table cells
        if ws.settings.tracking.url:
            monkeypatch.setenv("AIW_TRACKING__URL", ws.settings.tracking.url)
        load_settings.cache_clear()
        return runner.invoke(app, list(args), catch_exceptions=False)

    yield run
    load_settings.cache_clear()


def test_sql_formats(cli: Callable[..., Any], sample_ws: Any, tmp_path: Path) -> None:
    shown = cli(sample_ws, "sql", "SELECT line_of_business, count(*) AS n FROM claims GROUP BY 1 ORDER BY 1")
    assert shown.exit_code == 0 and "auto" in shown.stdout and "5 rows" in shown.stdout
    csv = cli(sample_ws, "sql", "SELECT 1 AS a, 'x' AS b", "--format", "csv")
    assert csv.stdout.splitlines()[:2] == ['"a","b"', '1,"x"']
    out = tmp_path / "res.json"
    written = cli(sample_ws, "sql", "SELECT claim_id FROM claims ORDER BY claim_id", "--out", str(out), "--limit", "3")
    assert written.exit_code == 0 and "truncated" in written.stderr
    assert json.loads(out.read_text()) == [{"claim_id": 1}, {"claim_id": 2}, {"claim_id": 3}]
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed away
    parquet = tmp_path / "res.parquet"
    assert cli(sample_ws, "sql", "SELECT * FROM sample_anomalies", "--out", str(parquet)).exit_code == 0
    assert pq.read_table(parquet).column_names == [
        "day",
        "line_of_business",
        "kind",
        "expected_claims",
        "injected_claims",
    ]
    markup = cli(sample_ws, "sql", "SELECT ai_redact('mail x@y.com') AS r")
    assert "[EMAIL]" in markup.stdout


def test_sql_refusals_exit_non_zero(
    sample_ws: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from aiw.cli import main

    monkeypatch.setenv("AIW_HOME", str(sample_ws.root))
    load_settings.cache_clear()
    try:
        for args, code, text in (
            (["sql", "DELETE FROM claims"], 2, "write statements are not allowed"),
            (["sql", "SELECT 1", "--format", "xml"], 2, "--format"),
            (["sql", "SELECT 1", "--format", "parquet"], 2, "--out"),
        ):
            monkeypatch.setattr(sys, "argv", ["aiw", *args])
            with pytest.raises(SystemExit) as exit_info:
                main()
            assert exit_info.value.code == code
            assert text in capsys.readouterr().err
    finally:
        load_settings.cache_clear()


def test_insights_forecast_and_anomalies(cli: Callable[..., Any], sample_ws: Any, tmp_path: Path) -> None:
    out = tmp_path / "fc.csv"
    fc = cli(
        sample_ws,
        "insights",
        "forecast",
        "--table",
        "claims",
        "--ts",
        "incident_date",
        "--agg",
        "count",
        "--grain",
        "day",
        "--fill",
        "zero",
        "--horizon",
        "10",
        "--out",
        str(out),
    )
    assert fc.exit_code == 0 and "AutoETS" in fc.stdout
    lines = out.read_text().splitlines()
    assert lines[0] == '"series","ts","forecast","lower","upper","model"' and len(lines) == 11
    an = cli(
        sample_ws,
        "insights",
        "anomalies",
        "--table",
        "claims",
        "--ts",
        "incident_date",
        "--agg",
        "count",
        "--series",
        "line_of_business",
        "--fill",
        "zero",
        "--level",
        "99.9",
    )
    assert an.exit_code == 0 and "anomalies in" in an.stdout and "home" in an.stdout


def test_insights_baseline(cli: Callable[..., Any], model_ws: Any) -> None:
    result = cli(
        model_ws,
        "insights",
        "baseline",
        "--table",
        "accounts",
        "--target",
        "flag",
        "--folds",
        "3",
        "--models",
        "dummy,logistic_regression",
    )
    assert result.exit_code == 0
    assert result.stdout.index("logistic_regression") < result.stdout.index("dummy")  # ranked by AUC
    assert "baseline-accounts" in result.stdout
