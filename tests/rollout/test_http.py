"""Real traffic through the real server (uvicorn on a free port): a healthy canary is promoted step
by step, a candidate failing 10% of requests is rolled back with no more failures than its share,
and a restart mid-rollout resumes at the persisted step. Driven through ``/v1/deployments``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from rollout_helpers import Models, wait_for

from aiw.mlops.rollout.loadgen import LoadGenerator

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def keys(rollout_ws: Any) -> dict[str, str]:
    """API key secrets per role."""
    out = {}
    for role in ("viewer", "data_scientist", "admin"):
        _, out[role] = rollout_ws.keys.create(f"rollout-{role}", role, actor="tests")
    return out


@pytest.fixture
def api(rollout_ws: Any) -> Iterator[str]:
    """The API served by uvicorn in a thread; yields its base URL."""
    from aiw.mlops.tour import ApiServerThread

    with ApiServerThread(rollout_ws.settings) as base:
        yield base


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _status(base: str, name: str, key: str) -> dict[str, Any]:
    r = httpx.get(f"{base}/v1/deployments/{name}", headers=_auth(key), timeout=30)
    r.raise_for_status()
    result: dict[str, Any] = r.json()
    return result


def _finished(base: str, name: str, key: str) -> dict[str, Any] | None:
    status = _status(base, name, key)
    return status if status["rollout"]["status"] != "running" else None


def test_a_healthy_canary_is_promoted_step_by_step(
    api: str, keys: dict[str, str], models: Models, model_name: str
) -> None:
    ds = keys["data_scientist"]
    r = httpx.post(
        f"{api}/v1/deployments/{model_name}/canary",
        headers=_auth(ds),
        timeout=60,
        json={"version": 2, "steps": [20, 50, 100], "bake": "0.5s", "min_requests": 30},
    )
    assert r.status_code == 201, r.text
    assert r.json()["share"] == 0.2 and r.json()["status"] == "running"
    with LoadGenerator(f"{api}/v1/models/{model_name}/predict", ds, models.rows) as traffic:
        live = wait_for(lambda: (_status(api, model_name, keys["viewer"])["live"] or {}).get("candidate"), timeout=30)
        assert live["version"] == 2
        done = wait_for(lambda: _finished(api, model_name, ds), timeout=60)
        before = traffic.mark()
        wait_for(lambda: traffic.mark()["v2"] > before["v2"] + 20, timeout=30)
        after = traffic.mark()
    assert done["rollout"]["status"] == "promoted", done["rollout"]["reason"]
    assert done["champion_version"] == 2
    steps = [(d["action"], d["to_share"]) for d in done["decisions"] if d["action"] != "hold"]
    assert steps == [("start", 0.2), ("advance", 0.5), ("advance", 1.0), ("promote", 1.0)]
    assert all("passed every guardrail" in d["reason"] for d in done["decisions"][1:] if d["action"] != "hold")
    assert after["http500"] == after["transport"] == 0 and after["v1"] > 0 and after["v2"] > 0
    assert after["v1"] == before["v1"]  # once promoted, @champion answers with v2 only
    # the history and the viewer's permissions
    history = httpx.get(f"{api}/v1/deployments/{model_name}/history", headers=_auth(keys["viewer"]), timeout=30)
    assert [h["status"] for h in history.json()] == ["promoted"]
    refused = httpx.post(
        f"{api}/v1/deployments/{model_name}/rollback", headers=_auth(keys["viewer"]), json={}, timeout=30
    )
    assert refused.status_code == 403


def test_a_candidate_failing_10_percent_is_rolled_back_automatically(
    api: str, keys: dict[str, str], models: Models, model_name: str, rollout_ws: Any
) -> None:
    from aiw.mlops.monitoring.alerts import AlertManager

    ds = keys["data_scientist"]
    r = httpx.post(
        f"{api}/v1/deployments/{model_name}/canary",
        headers=_auth(ds),
        timeout=60,
        json={"version": 3, "steps": [10, 50, 100], "bake": "30s", "min_requests": 30},
    )
    assert r.status_code == 201, r.text
    with LoadGenerator(f"{api}/v1/models/{model_name}/predict", ds, models.rows) as traffic:
        done = wait_for(lambda: _finished(api, model_name, ds), timeout=60)
        during = traffic.mark()
        wait_for(lambda: sum(traffic.mark().values()) > sum(during.values()) + 100, timeout=30)
        after = traffic.mark()
    rollout = done["rollout"]
    assert rollout["status"] == "rolled_back" and rollout["share"] == 0.0 and done["champion_version"] == 1
    assert "error rate over 5.0%" in rollout["reason"]
    total = sum(during.values())
    failed = during["http500"] + during["transport"]
    # a 10%-failing candidate at a 10% share: about 1% of requests fail, never more than 10%
    assert during["http500"] > 0 and failed <= 0.1 * total, during
    assert after["http500"] + after["transport"] - failed <= 6  # in flight at the rollback, then none
    assert after["v3"] - during["v3"] <= 6 and after["v1"] > during["v1"]
    alerts = AlertManager(rollout_ws.db, rollout_ws.audit, rollout_ws.settings.alerts).list_alerts(
        subject=f"model:{model_name}"
    )
    assert [a.rule for a in alerts] == ["rollout-rollback"] and "error rate" in alerts[0].message


def test_a_restart_mid_rollout_resumes_at_the_persisted_step(
    rollout_ws: Any, keys: dict[str, str], models: Models, model_name: str
) -> None:
    from aiw.mlops.rollout.store import RolloutStore
    from aiw.mlops.tour import ApiServerThread

    ds = keys["data_scientist"]
    store = RolloutStore(rollout_ws.db, rollout_ws.audit)
    with ApiServerThread(rollout_ws.settings) as base:
        r = httpx.post(
            f"{base}/v1/deployments/{model_name}/canary",
            headers=_auth(ds),
            timeout=60,
            json={"version": 2, "steps": [10, 25, 50, 100], "bake": "0.5s", "min_requests": 30},
        )
        rollout_id = r.json()["id"]
        with LoadGenerator(f"{base}/v1/models/{model_name}/predict", ds, models.rows):
            wait_for(lambda: store.get(rollout_id).step_index >= 1, timeout=60)
    persisted = store.get(rollout_id)  # the first server is gone: this is where it left the rollout
    assert persisted.running and 1 <= persisted.step_index < 3
    with ApiServerThread(rollout_ws.settings) as base:  # a new app, router and controller
        status = _status(base, model_name, ds)
        assert status["rollout"]["step_index"] == persisted.step_index
        assert status["rollout"]["share"] == persisted.share
        with LoadGenerator(f"{base}/v1/models/{model_name}/predict", ds, models.rows):
            done = wait_for(lambda: _finished(base, model_name, ds), timeout=60)
    assert done["rollout"]["status"] == "promoted"
    decisions = [d for d in store.decisions(rollout_id) if d.action != "hold"]
    resumed = [d for d in decisions if d.at > persisted.updated_at]
    assert resumed[0].from_share == persisted.share  # it went on from the persisted step, not from 10%
    assert [d.to_share for d in decisions] == [0.1, 0.25, 0.5, 1.0, 1.0]
