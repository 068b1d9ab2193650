"""The data platform's CLI: aiw data build|docs|check, aiw pipelines, aiw embeddings, aiw features."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from aiw.settings import load_settings

pytestmark = pytest.mark.unit


@pytest.fixture
def cli(monkeypatch):  # type: ignore[no-untyped-def]
    from aiw.cli import app

    runner = CliRunner()

    def _run(home, *args: str):  # type: ignore[no-untyped-def]
        monkeypatch.setenv("AIW_HOME", str(home))
        load_settings.cache_clear()
        return runner.invoke(app, list(args), catch_exceptions=False)

    yield _run
    load_settings.cache_clear()


def _exit(result) -> int:  # type: ignore[no-untyped-def]
    return result.exit_code


def test_data_build_check_and_docs(built_ws, clone, cli) -> None:  # type: ignore[no-untyped-def]
    from aiw.data._warehouse import warehouse

    ws = clone(built_ws)
    built = cli(ws.root, "data", "build", "--select", "stg_documents", "--no-freshness")
    assert _exit(built) == 0, built.output
    assert "stg_documents" in built.output and "success" in built.output
    first = cli(ws.root, "data", "check")
    assert "main.claims" in first.output and "volume" in first.output
    with warehouse(ws, read_only=False) as conn:
        conn.execute("UPDATE main.documents SET updated_at = updated_at - INTERVAL 10 DAY")
        conn.execute("ALTER TABLE main.payments DROP COLUMN method")
    failed = cli(ws.root, "data", "check")
    assert _exit(failed) == 1
    assert "main.documents freshness: observed newest row" in failed.output
    assert "expected newest row at most 48 h old" in failed.output
    assert "main.payments schema: observed 4 columns: dropped method" in failed.output
    history = cli(ws.root, "data", "check", "--history")
    assert _exit(history) == 0 and history.output.count("fail") >= 1
    docs = cli(ws.root, "data", "docs")
    assert _exit(docs) == 0 and "static_index.html" in docs.output


def test_data_build_failure_exits_non_zero(built_ws, clone, cli) -> None:  # type: ignore[no-untyped-def]
    from aiw.data._warehouse import warehouse

    ws = clone(built_ws)
    with warehouse(ws, read_only=False) as conn:
        conn.execute("UPDATE main.claims SET channel = 'fax' WHERE claim_id = 1")
    result = cli(ws.root, "data", "build", "--select", "stg_claims", "--no-freshness")
    assert _exit(result) == 1
    assert "dbt build failed" in result.output and "accepted_values_stg_claims_channel" in result.output


def test_pipelines_and_embeddings_commands(docs_copy, cli) -> None:  # type: ignore[no-untyped-def]
    ws = docs_copy
    listing = cli(ws.root, "pipelines", "list")
    assert "daily-validation" in listing.output and "request_approval" in listing.output
    refreshed = cli(ws.root, "embeddings", "refresh")
    assert _exit(refreshed) == 0 and "unchanged" in refreshed.output
    snaps = cli(ws.root, "embeddings", "snapshots")
    assert "accepted" in snaps.output
    run = cli(ws.root, "pipelines", "run", "embedding-refresh")
    assert _exit(run) == 0, run.output
    assert "embedding_refresh" in run.output and "success" in run.output
    runs = cli(ws.root, "pipelines", "runs", "--pipeline", "embedding-refresh")
    assert "success" in runs.output and "manual" in runs.output
    assert "success" not in cli(ws.root, "pipelines", "runs", "--pipeline", "training").output
    from aiw.errors import NotFoundError

    with pytest.raises(NotFoundError, match="No pipeline 'nope'"):  # main() turns it into exit code 3
        cli(ws.root, "pipelines", "run", "nope")
