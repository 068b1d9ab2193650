"""Rollouts and decisions persisted in the metadata database (SQLite and PostgreSQL), audited."""

from __future__ import annotations

from typing import Any

import pytest

from aiw.errors import ConflictError, InvalidInputError, NotFoundError
from aiw.mlops.rollout.guardrails import ArmMetrics
from aiw.mlops.rollout.plan import Guardrails, RolloutPlan
from aiw.mlops.rollout.state import decide, manual_decision
from aiw.mlops.rollout.store import RolloutStore

pytestmark = pytest.mark.unit

HEALTHY = ArmMetrics.from_outcomes([1.0] * 200, 0, [0.1, 0.2, 0.3, 0.4] * 50)


def _plan(model: str = "m") -> RolloutPlan:
    return RolloutPlan(model, 2, 1, steps=(10, 50, 100), bake_s=5, guardrails=Guardrails(min_requests=20))


def _exercise(ws: Any) -> None:
    store = RolloutStore(ws.db, ws.audit)
    r = store.create(_plan(), actor="dana", now=1000.0)
    assert r.running and r.step_index == 0 and r.share == 0.1 and r.revision == 0
    assert r.step_started_at.timestamp() == 1000.0 and r.state.step_started_at == 1000.0
    assert store.current("m") == r and store.active() == [r]
    with pytest.raises(ConflictError, match=r"already has a running rollout \(#\d+, v2 canary\)"):
        store.create(_plan(), actor="dana", now=1001.0)
    # a hold records itself without moving the rollout
    hold = decide(r.plan, r.state, HEALTHY, ArmMetrics(), 1005.0)
    assert hold.action == "hold"
    held = store.record(r, hold, actor="rollout-controller", now=1005.0)
    assert held.revision == 0 and held.step_index == 0 and "holding" in held.reason
    # an advance moves it and bumps the revision; a stale writer then loses
    adv = decide(r.plan, r.state, HEALTHY, HEALTHY, 1006.0)
    moved = store.record(held, adv, actor="rollout-controller", now=1006.0, metrics={"candidate": {"requests": 200}})
    assert moved.step_index == 1 and moved.share == 0.5 and moved.revision == 1
    assert moved.step_started_at.timestamp() == 1006.0
    with pytest.raises(ConflictError, match="changed since it was read"):
        store.record(held, adv, actor="another-process", now=1006.5)
    with pytest.raises(InvalidInputError, match="not a decision"):
        store.record(moved, decide(moved.plan, moved.state, HEALTHY, HEALTHY, 1007.0), actor="x", now=1007.0)
    # a final decision frees the model for the next rollout
    back = store.record(moved, manual_decision(moved.plan, moved.state, "rollback", "test"), actor="dana", now=1010.0)
    assert back.status == "rolled_back" and back.share == 0.0 and back.finished_at is not None
    assert store.current("m") is None and store.active() == []
    again = store.create(_plan(), actor="dana", now=1020.0)
    assert again.id != r.id and [x.id for x in store.history("m")] == [again.id, r.id]
    assert store.latest("m") == again
    store.publish_metrics(again.id, {"candidate": {"requests": 3}}, now=1021.0)
    assert store.get(again.id).live_metrics == {"candidate": {"requests": 3}}
    # every decision is recorded and audited
    actions = [d.action for d in store.decisions(r.id)]
    assert actions == ["start", "hold", "advance", "rollback"]
    advance = store.decisions(r.id)[2]
    assert advance.from_share == 0.1 and advance.to_share == 0.5 and advance.metrics["candidate"]["requests"] == 200
    assert {c["name"] for c in advance.metrics["checks"]} == {"error_rate", "latency_p95", "prediction_shift"}
    audited = [(a.actor, a.action) for a in ws.audit.records(action="deployments.", newest_first=False)]
    assert audited == [
        ("dana", "deployments.start"),
        ("rollout-controller", "deployments.hold"),
        ("rollout-controller", "deployments.advance"),
        ("dana", "deployments.rollback"),
        ("dana", "deployments.start"),
    ]
    assert ws.audit.verify().ok
    with pytest.raises(NotFoundError, match="No rollout #999"):
        store.get(999)


def test_rollouts_persist_and_every_decision_is_audited_sqlite(workspace: Any) -> None:
    _exercise(workspace)


@pytest.mark.integration
def test_rollouts_persist_and_every_decision_is_audited_postgresql(pg_url: str, settings: Any) -> None:
    from aiw.settings import build_settings
    from aiw.workspace import Workspace

    ws = Workspace(build_settings(home=settings.home, metadata={"url": pg_url})).init()
    try:
        assert ws.db.dialect == "postgresql"
        _exercise(ws)
    finally:
        ws.db.dispose()
