"""The Analytics and Data health dashboard pages, rendered with Streamlit's AppTest."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PAGES = Path(__file__).resolve().parents[2] / "src" / "aiw" / "dashboard" / "pages"


@pytest.fixture
def home(built_ws, monkeypatch):  # type: ignore[no-untyped-def]
    from aiw.settings import load_settings

    monkeypatch.setenv("AIW_HOME", str(built_ws.root))
    load_settings.cache_clear()
    yield built_ws
    load_settings.cache_clear()


def _run(page: str):  # type: ignore[no-untyped-def]
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(PAGES / page), default_timeout=120)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def test_analytics_page_shows_kpis_breakdowns_and_corpus(home) -> None:  # type: ignore[no-untyped-def]
    from aiw.data.analytics import kpis

    app = _run("5_Analytics.py")
    metrics = {m.label: m.value for m in app.metric}
    k = kpis(home)
    assert metrics["Claims"] == f"{k.claims:,}" and metrics["Open claims"] == f"{k.open_claims:,}"
    assert metrics["Loss ratio"].endswith("%")
    assert int(metrics["Documents"]) > 0
    subheaders = [s.value for s in app.subheader]
    assert subheaders == ["Claims trend", "Breakdowns", "Document corpus"]
    frames = [d.value for d in app.dataframe]
    assert any("line_of_business" in f.columns for f in frames) and any("region" in f.columns for f in frames)
    assert any("title" in f.columns for f in frames)


def test_analytics_page_without_marts_says_what_to_do(workspace, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from aiw.settings import load_settings

    monkeypatch.setenv("AIW_HOME", str(workspace.root))
    load_settings.cache_clear()
    try:
        app = _run("5_Analytics.py")
        assert any("aiw data build" in i.value for i in app.info)
    finally:
        load_settings.cache_clear()


def test_data_health_page_shows_gates_bands_and_runs(built_ws, clone, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from aiw.data.quality import QualityGates, TableMonitor
    from aiw.pipelines.dag import Pipeline, Step
    from aiw.pipelines.runner import PipelineRunner
    from aiw.settings import load_settings

    ws = clone(built_ws)
    QualityGates(
        ws,
        ws.settings.quality,
        [TableMonitor("main.claims", volume_column="reported_at", freshness_column="reported_at")],
    ).run(actor="tests")
    PipelineRunner(ws, ws.settings).run(Pipeline("toy", (Step("a", lambda ctx: {"ok": 1}),)), actor="tests")
    monkeypatch.setenv("AIW_HOME", str(ws.root))
    load_settings.cache_clear()
    try:
        app = _run("6_Data_Health.py")
    finally:
        load_settings.cache_clear()
    assert any("Latest gates" in s.value for s in app.success)
    frames = [d.value for d in app.dataframe]
    checks = next(f for f in frames if "check" in f.columns)
    assert set(checks["check"]) >= {"volume", "freshness", "schema"}
    runs = next(f for f in frames if "pipeline" in f.columns)
    assert runs["pipeline"].tolist() == ["toy"] and runs["status"].tolist() == ["success"]
    assert any("main.claims" in m.value for m in app.markdown)
