"""``/v1/deployments`` through FastAPI's TestClient: permissions, errors and every route's shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def client(rollout_ws: Any) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from aiw.api.app import create_app

    with TestClient(create_app(rollout_ws.settings)) as c:
        yield c


@pytest.fixture(scope="module")
def keys(rollout_ws: Any) -> dict[str, str]:
    return {
        role: rollout_ws.keys.create(f"api-{role}", role, actor="tests")[1]
        for role in ("viewer", "data_scientist", "admin")
    }


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_the_deployment_routes(client: Any, keys: dict[str, str], model_name: str) -> None:
    ds, admin, viewer = keys["data_scientist"], keys["admin"], keys["viewer"]
    base = f"/v1/deployments/{model_name}"
    r = client.get(base, headers=_h(viewer))
    assert r.status_code == 200 and r.json()["rollout"] is None and r.json()["champion_version"] == 1
    assert client.get(base).status_code == 401
    r = client.post(f"{base}/shadow", headers=_h(viewer), json={"version": 2})
    assert r.status_code == 403 and "deployments:write" in r.json()["error"]["message"]
    r = client.post(f"{base}/canary", headers=_h(ds), json={"version": 2, "steps": [10, 5, 100]})
    assert r.status_code == 422 and "strictly increasing" in r.json()["error"]["message"]
    r = client.post(f"{base}/canary", headers=_h(ds), json={"version": 2, "bake": "forever"})
    assert r.status_code == 422 and "duration" in r.json()["error"]["message"]
    r = client.post(f"{base}/canary", headers=_h(ds), json={"version": 2, "max_error_rate": 2})
    assert r.status_code == 422
    r = client.post(f"{base}/shadow", headers=_h(ds), json={"version": 3, "bake": "1h", "min_requests": 500})
    assert r.status_code == 201, r.text
    shadow = r.json()
    assert shadow["mode"] == "shadow" and shadow["share"] == 0.0 and shadow["guardrails"]["min_requests"] == 500
    r = client.post(f"{base}/canary", headers=_h(ds), json={"version": 2})
    assert r.status_code == 409 and "already has a running rollout" in r.json()["error"]["message"]
    r = client.post(f"{base}/promote", headers=_h(admin), json={"reason": "x"})
    assert r.status_code == 409 and "cannot be promoted" in r.json()["error"]["message"]
    r = client.post(f"{base}/rollback", headers=_h(ds), json={"reason": "enough"})
    assert r.status_code == 200 and r.json()["status"] == "rolled_back"
    r = client.post(f"{base}/canary", headers=_h(ds), json={"version": 2, "steps": [25, 100], "bake": "1h"})
    assert r.status_code == 201 and r.json()["share"] == 0.25
    canary_id = r.json()["id"]
    status = client.get(base, headers=_h(viewer)).json()
    assert status["rollout"]["id"] == canary_id and status["live"]["rollout_id"] == canary_id  # in-process router
    assert status["live"]["share"] == 0.25 and status["live"]["candidate"]["version"] == 2
    r = client.post(f"{base}/promote", headers=_h(ds), json={})
    assert r.status_code == 403 and "models:promote" in r.json()["error"]["message"]
    r = client.post(f"{base}/promote", headers=_h(admin), json={"reason": "manual"})
    assert r.status_code == 200 and r.json()["status"] == "promoted"
    assert client.get(base, headers=_h(viewer)).json()["champion_version"] == 2
    history = client.get(f"{base}/history", headers=_h(viewer)).json()
    assert [(h["id"], h["status"]) for h in history] == [(canary_id, "promoted"), (shadow["id"], "rolled_back")]
    listed = client.get("/v1/deployments", params={"model": model_name}, headers=_h(viewer)).json()
    assert [h["id"] for h in listed] == [canary_id, shadow["id"]]
    one = client.get(f"/v1/deployments/_rollouts/{canary_id}", headers=_h(viewer)).json()
    assert [d["action"] for d in one["decisions"]] == ["start", "promote"]
    assert one["decisions"][1]["actor"] == "api-admin"
    assert client.get("/v1/deployments/_rollouts/99999", headers=_h(viewer)).status_code == 404
    r = client.get("/v1/deployments/no-such-model", headers=_h(viewer))
    assert r.status_code == 404 and "No model named" in r.json()["error"]["message"]
    r = client.post(f"{base}/rollback", headers=_h(ds), json={})
    assert r.status_code == 404 and "no running rollout" in r.json()["error"]["message"]


def test_the_routes_are_documented_with_their_permissions(client: Any) -> None:
    spec = client.get("/openapi.json").json()
    perms = {
        (path, method): op.get("x-permission")
        for path, ops in spec["paths"].items()
        if "deployments" in path
        for method, op in ops.items()
    }
    assert perms[("/v1/deployments/{name}/canary", "post")] == "deployments:write"
    assert perms[("/v1/deployments/{name}", "get")] == "deployments:read"
    assert set(perms.values()) == {"deployments:read", "deployments:write"} and len(perms) == 8
