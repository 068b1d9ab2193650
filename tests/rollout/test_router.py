"""The router and the controller over the real serving layer (ModelServer, no HTTP): splits,
per-arm outcomes, shadow mirroring, promotion through the registry, rollback with an alert."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from rollout_helpers import Models, People, drive, serving

from aiw.errors import ConflictError, NotFoundError, PolicyViolation

pytestmark = pytest.mark.unit


def test_routes_split_by_share_only_for_the_champion(rollout_ws: Any, model_name: str, people: People) -> None:
    from aiw.mlops.rollout.service import DeploymentService

    server = serving(rollout_ws)
    try:
        router = server.rollouts
        assert router.route(model_name) is None
        DeploymentService(rollout_ws, router=router).canary(model_name, 2, people.ds, steps="25,100", bake="1h")
        live = router.get(model_name)
        assert live is not None and live.share == 0.25 and not live.mirror
        arms = Counter(router.route(model_name).arm for _ in range(4000))  # type: ignore[union-attr]
        assert 0.22 < arms["candidate"] / 4000 < 0.28
        assert router.route(model_name, 1) is None and router.route(model_name, "staging") is None
        assert router.route(model_name, "champion") is not None
        sticky = [router.route(model_name, key=f"customer-{i}") for i in range(2000)]
        assert [r.arm for r in sticky[:50]] == [
            router.route(model_name, key=f"customer-{i}").arm  # type: ignore
            for i in range(50)
        ]
        assert 0.21 < sum(r.arm == "candidate" for r in sticky) / 2000 < 0.29  # type: ignore[union-attr]
        route = router.route(model_name, key="customer-1")
        assert route is not None and route.ref in (1, 2) and route.version == route.ref
    finally:
        server.close()


def test_a_healthy_canary_advances_step_by_step_and_promotes_through_the_registry(
    rollout_ws: Any, models: Models, model_name: str, people: People
) -> None:
    from aiw.mlops.registry import ModelRegistry
    from aiw.mlops.rollout.service import DeploymentService
    from aiw.mlops.rollout.store import RolloutStore

    server = serving(rollout_ws)
    store = RolloutStore(rollout_ws.db, rollout_ws.audit)
    try:
        rollout = DeploymentService(rollout_ws, router=server.rollouts).canary(
            model_name, 2, people.ds, steps=[20, 50, 100], bake=0.3
        )
        counts = drive(server, model_name, models.rows, people.ds, until=lambda: not store.get(rollout.id).running)
    finally:
        server.close()
    done = store.get(rollout.id)
    assert done.status == "promoted", done.reason
    decisions = store.decisions(rollout.id)
    assert [(d.action, d.to_share) for d in decisions if d.action != "hold"] == [
        ("start", 0.2),
        ("advance", 0.5),
        ("advance", 1.0),
        ("promote", 1.0),
    ]
    assert all(d.actor == "rollout-controller" for d in decisions[1:])
    last = decisions[-1]
    assert {c["name"]: c["status"] for c in last.metrics["checks"]} == {
        "error_rate": "pass",
        "latency_p95": "pass",
        "prediction_shift": "pass",
    }
    assert last.metrics["candidate"]["requests"] >= 30 and last.metrics["candidate"]["errors"] == 0
    assert counts["failed"] == 0 and counts["v1"] > 0 and counts["v2"] > 0
    assert ModelRegistry(rollout_ws).aliases(model_name)["champion"] == 2
    moved = rollout_ws.audit.records(action="models.promote", resource=f"model:{model_name}/2")
    assert moved and moved[0].actor == "rollout-controller"
    assert [
        r.action
        for r in rollout_ws.audit.records(resource=f"model:{model_name}/2", action="deployments.", newest_first=False)
        if r.action != "deployments.hold"
    ] == ["deployments.start", "deployments.advance", "deployments.advance", "deployments.promote"]


def test_a_candidate_failing_10_percent_is_rolled_back_with_an_alert(
    rollout_ws: Any, models: Models, model_name: str, people: People
) -> None:
    from aiw.mlops.monitoring.alerts import AlertManager
    from aiw.mlops.registry import ModelRegistry
    from aiw.mlops.rollout.service import DeploymentService
    from aiw.mlops.rollout.store import RolloutStore

    server = serving(rollout_ws)
    store = RolloutStore(rollout_ws.db, rollout_ws.audit)
    try:
        rollout = DeploymentService(rollout_ws, router=server.rollouts).canary(
            model_name, 3, people.ds, steps=[20, 100], bake="1h"
        )
        during = drive(server, model_name, models.rows, people.ds, until=lambda: not store.get(rollout.id).running)
        after = drive(server, model_name, models.rows[500:], people.ds, until=lambda: False, limit=1.0)
    finally:
        server.close()
    done = store.get(rollout.id)
    assert done.status == "rolled_back" and done.share == 0.0
    assert "error rate over 5.0%" in done.reason
    total = sum(during.values())
    assert 0 < during["failed"] <= 0.2 * total  # never more than the canary's share of requests
    assert during["v1"] > during["v3"]
    assert after["failed"] == 0 and after["v3"] == 0 and after["v1"] > 0  # all back on the champion
    assert ModelRegistry(rollout_ws).aliases(model_name)["champion"] == 1
    alerts = AlertManager(rollout_ws.db, rollout_ws.audit, rollout_ws.settings.alerts).list_alerts(
        subject=f"model:{model_name}"
    )
    assert len(alerts) == 1 and alerts[0].severity == "critical" and alerts[0].rule == "rollout-rollback"
    assert alerts[0].details["code"] == "error_rate" and alerts[0].details["rollout_id"] == rollout.id


def test_a_shadow_never_reaches_the_caller_and_is_compared(
    rollout_ws: Any, models: Models, model_name: str, people: People
) -> None:
    from aiw.mlops.rollout.service import DeploymentService
    from aiw.mlops.rollout.store import RolloutStore

    server = serving(rollout_ws)
    store = RolloutStore(rollout_ws.db, rollout_ws.audit)
    service = DeploymentService(rollout_ws, router=server.rollouts)
    try:
        healthy = service.shadow(model_name, 2, people.ds, bake=0.3)
        live = server.rollouts.get(model_name)
        assert live is not None and live.mirror and live.share == 0.0
        counts = drive(server, model_name, models.rows, people.ds, until=lambda: not store.get(healthy.id).running)
        assert counts["failed"] == 0 and counts["v2"] == 0  # the caller only ever saw the champion
        assert store.get(healthy.id).status == "completed"
        shadow = store.decisions(healthy.id)[-1].metrics["shadow"]
        assert shadow["agreement"] == 1.0 and shadow["compared_rows"] >= 30  # same model files: same answers

        faulty = service.shadow(model_name, 3, people.ds, bake="1h")
        counts = drive(server, model_name, models.rows, people.ds, until=lambda: not store.get(faulty.id).running)
    finally:
        server.close()
    assert counts["failed"] == 0 and counts["v3"] == 0
    done = store.get(faulty.id)
    assert done.status == "rolled_back" and "error rate" in done.reason


def test_a_champion_moved_outside_the_rollout_ends_it(rollout_ws: Any, model_name: str, people: People) -> None:
    from aiw.mlops.registry import PromotionWorkflow
    from aiw.mlops.rollout.service import DeploymentService

    server = serving(rollout_ws)
    try:
        rollout = DeploymentService(rollout_ws, router=server.rollouts).canary(model_name, 2, people.ds, bake="1h")
        PromotionWorkflow(rollout_ws).promote(model_name, 3, "production", people.admin)
        decided = server.rollouts.controller.tick()
    finally:
        server.close()
    assert [d.code for d in decided] == ["champion_moved"]
    assert server.rollouts.get(model_name) is None
    stored = DeploymentService(rollout_ws).status(model_name).rollout
    assert stored is not None and stored.id == rollout.id and stored.status == "rolled_back"


def test_who_may_start_what(rollout_ws: Any, models: Models, people: People) -> None:
    from rollout_helpers import setup_model

    from aiw.mlops.registry import ModelRegistry
    from aiw.mlops.rollout.service import DeploymentService

    name = setup_model(rollout_ws, models, people)
    service = DeploymentService(rollout_ws)
    with pytest.raises(PolicyViolation, match="lacks the permission 'deployments:write'"):
        service.canary(name, 2, people.viewer)
    unapproved = ModelRegistry(rollout_ws).register(models.good, name, people.ds).version
    with pytest.raises(PolicyViolation, match="no approved request for production"):
        service.canary(name, unapproved, people.ds)
    denied = rollout_ws.audit.records(action="deployments.canary", resource=f"model:{name}/{unapproved}")
    assert denied and denied[0].outcome == "denied"
    with pytest.raises(NotFoundError, match="has no version 99"):
        service.canary(name, 99, people.ds)
    shadow = service.shadow(name, unapproved, people.ds, bake="1h")  # a shadow answers nobody: no approval
    with pytest.raises(ConflictError, match="already has a running rollout"):
        service.canary(name, 2, people.ds)
    with pytest.raises(PolicyViolation, match="lacks the permission 'deployments:write'"):
        service.rollback(name, people.viewer)
    back = service.rollback(name, people.ds, reason="done watching")
    assert back.id == shadow.id and back.status == "rolled_back" and "done watching" in back.reason
    with pytest.raises(NotFoundError, match="no running rollout"):
        service.promote(name, people.admin)
    # an operator's promotion moves @champion through the registry, which wants models:promote
    canary = service.canary(name, 2, people.ds, bake="1h")
    with pytest.raises(PolicyViolation, match="models:promote"):
        service.promote(name, people.ds)
    promoted = service.promote(name, people.admin, reason="looks great")
    assert promoted.id == canary.id and promoted.status == "promoted"
    assert ModelRegistry(rollout_ws).aliases(name)["champion"] == 2
    status = service.status(name)
    assert status.champion_version == 2 and [d.action for d in status.decisions] == ["start", "promote"]
    assert status.decisions[-1].actor == "root"
    no_champion = f"{name}-fresh"
    ModelRegistry(rollout_ws).register(models.good, no_champion, people.ds)
    with pytest.raises(ConflictError, match="has no @champion"):
        service.shadow(no_champion, 1, people.ds)
