"""The Deployments dashboard page, driven by Streamlit's AppTest over real rollouts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rollout_helpers import Models, People, drive, serving, setup_model
from streamlit.testing.v1 import AppTest

from aiw.settings import load_settings

pytestmark = pytest.mark.unit

PAGE = Path(__file__).resolve().parents[2] / "src" / "aiw" / "dashboard" / "pages" / "8_Deployments.py"


def _page(ws: Any, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("AIW_HOME", str(ws.root))
    load_settings.cache_clear()
    app = AppTest.from_file(str(PAGE), default_timeout=120)
    app.run()
    return app


def test_the_page_shows_the_split_live_metrics_and_every_decision(
    rollout_ws: Any, models: Models, people: People, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiw.mlops.rollout.service import DeploymentService

    failed = setup_model(rollout_ws, models, people)
    live = setup_model(rollout_ws, models, people)
    server = serving(rollout_ws)
    service = DeploymentService(rollout_ws, router=server.rollouts)
    try:
        bad = service.canary(failed, 3, people.ds, steps="20,100", bake="1h")
        drive(server, failed, models.rows, people.ds, until=lambda: not service.store.get(bad.id).running)
        service.canary(live, 2, people.ds, steps="25,50,100", bake="1h", min_requests=1000)
        served = [0]

        def enough() -> bool:
            served[0] += 1
            return served[0] > 6

        drive(server, live, models.rows, people.ds, until=enough)
        server.rollouts.controller.publish()
    finally:
        server.close()
    try:
        app = _page(rollout_ws, monkeypatch)
        assert not app.exception, app.exception
        assert app.selectbox(key="model").value == live  # the newest rollout first
        assert [m.value for m in app.metric][:3] == ["running", "canary", "v2"]
        assert "25% of live traffic" in app.get("progress")[0].proto.text
        steps, arms, decisions, history = (d.value for d in app.dataframe)
        assert list(steps["state"]) == ["current", "ahead", "ahead"]
        assert list(arms["arm"]) == ["champion", "candidate"] and list(arms["version"]) == ["v1", "v2"]
        assert arms["requests"].sum() > 50 and (arms["requests"] > 0).all()
        assert list(decisions["action"]) == ["start"] and decisions["by"][0] == "dana"
        # the rolled-back rollout: its reason and the alert-worthy decision
        app.selectbox(key="model").select(failed).run()
        assert not app.exception
        assert app.metric[0].value == "rolled back"
        assert len(app.dataframe) == 3  # no live metrics for a finished rollout
        steps, decisions, history = (d.value for d in app.dataframe)
        assert list(decisions["action"]) == ["start", "rollback"]
        assert "error rate over 5.0%" in decisions["reason"][1] and decisions["by"][1] == "rollout-controller"
        assert any("No live metrics" in c.value for c in app.caption)
        assert {failed, live} <= set(history["model"])
    finally:
        load_settings.cache_clear()
