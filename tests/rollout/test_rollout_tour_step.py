"""The tour's "Safe rollout" step on the session workspace (it trains its own champion when the MLOps step
left none, as here: the session's small test model would differ too much from a full retrain)."""

from __future__ import annotations

import io
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_tour_step_promotes_a_retrained_version_and_rolls_back_a_faulty_one(rollout_ws: Any) -> None:
    from rich.console import Console

    from aiw.mlops.registry import ModelRegistry
    from aiw.mlops.rollout.store import RolloutStore
    from aiw.mlops.rollout.tour import tour_step
    from aiw.tour import TourContext

    keys = {
        role: rollout_ws.keys.create(f"tour-{role}", role, actor="tests")[1]
        for role in ("data_scientist", "approver", "admin")
    }
    out = io.StringIO()
    ctx = TourContext(rollout_ws, rollout_ws.settings, Console(file=out, width=200), 2000, 7, facts={"keys": keys})
    tour_step(ctx)
    text = out.getvalue()
    fact = ctx.facts["rollout"]
    name = fact["model"]
    assert name == "claims-fraud" and fact["promoted"] == 2 and fact["rolled_back"] == 3 and fact["champion"] == 2
    assert ModelRegistry(rollout_ws).aliases(name)["champion"] == 2
    assert "canary of v2: promoted" in text and "[promote] step 3/3 (100%)" in text
    assert "canary of v3: rolled_back" in text and "error rate over 5.0%" in text
    assert 0 < fact["failed_requests"] <= 0.1 * fact["requests"]
    assert "[critical] rollout-rollback" in text
    statuses = [r.status for r in RolloutStore(rollout_ws.db, rollout_ws.audit).history(name)]
    assert statuses == ["rolled_back", "promoted"]
