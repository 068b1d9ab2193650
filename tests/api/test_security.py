"""The API denies by default: every route needs a key and its declared permission."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from aiw.api import create_app
from aiw.api.app import iter_routes
from aiw.api.deps import PUBLIC, permission_of
from aiw.governance.identity import PERMISSIONS, ROLES

pytestmark = pytest.mark.unit


@pytest.fixture
def api(workspace):  # type: ignore[no-untyped-def]
    keys = {role: workspace.keys.create(f"{role}-key", role, actor="test")[1] for role in ROLES}
    app = create_app(workspace.settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield app, client, keys


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def test_every_route_declares_a_permission_and_enforces_it(api) -> None:  # type: ignore[no-untyped-def]
    app, client, keys = api
    routes = iter_routes(app.router)
    assert len(routes) >= 8
    for route in routes:
        permission = permission_of(route)
        assert permission, f"{route.path} declares no permission"
        if permission == PUBLIC:
            continue
        for method in route.methods:
            path = _concrete(route.path)
            anonymous = client.request(method, path)
            assert anonymous.status_code == 401, (method, path, anonymous.text)
            assert anonymous.json()["error"]["type"] == "unauthenticated"
            for role in ROLES:
                if permission in PERMISSIONS[role]:
                    continue
                denied = client.request(method, path, headers={"Authorization": f"Bearer {keys[role]}"})
                assert denied.status_code == 403, (role, method, path, denied.text)
                assert permission in denied.json()["error"]["message"]


def test_a_route_without_permission_is_refused_at_runtime(api) -> None:  # type: ignore[no-untyped-def]
    app, client, keys = api
    app.router.add_api_route("/v1/forgotten", lambda: {"leak": True}, methods=["GET"])
    response = client.get("/v1/forgotten", headers={"Authorization": f"Bearer {keys['admin']}"})
    assert response.status_code == 403 and "declares no permission" in response.json()["error"]["message"]


def test_a_route_without_permission_fails_app_start(workspace, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from fastapi import APIRouter

    from aiw.api import app as app_module
    from aiw.errors import ConfigError

    def rogue_endpoint() -> dict[str, bool]:
        return {"leak": True}

    rogue = APIRouter()
    rogue.add_api_route("/v1/rogue", rogue_endpoint, methods=["GET"])
    import types

    module = types.ModuleType("rogue_routes")
    module.router = rogue  # type: ignore[attr-defined]
    monkeypatch.setitem(__import__("sys").modules, "rogue_routes", module)
    monkeypatch.setattr(app_module, "ROUTERS", [*app_module.ROUTERS, "rogue_routes"])
    with pytest.raises(ConfigError, match="/v1/rogue"):
        app_module.create_app(workspace.settings)


def test_public_health_and_ready(api) -> None:  # type: ignore[no-untyped-def]
    _, client, _ = api
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ok"


def test_keys_flow_and_revocation_takes_effect(api, workspace) -> None:  # type: ignore[no-untyped-def]
    _, client, keys = api
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    created = client.post("/v1/keys", json={"role": "analyst", "name": "n1"}, headers=admin)
    assert created.status_code == 201
    secret, key_id = created.json()["secret"], created.json()["id"]
    mine = {"X-API-Key": secret}
    assert client.get("/v1/whoami", headers=mine).json()["role"] == "analyst"
    assert all("secret" not in k for k in client.get("/v1/keys", headers=admin).json())
    assert client.delete(f"/v1/keys/{key_id}", headers=admin).status_code == 200
    again = client.get("/v1/whoami", headers=mine)
    assert again.status_code == 401 and "revoked" in again.json()["error"]["message"]
    actions = [r["action"] for r in client.get("/v1/audit", headers=admin).json()]
    assert actions[:2] == ["keys.revoke", "keys.create"]
    assert client.get("/v1/audit/verify", headers=admin).json()["ok"] is True


def test_denied_state_change_is_audited(api, workspace) -> None:  # type: ignore[no-untyped-def]
    _, client, keys = api
    client.post(
        "/v1/keys", json={"role": "admin", "name": "escalate"}, headers={"Authorization": f"Bearer {keys['analyst']}"}
    )
    last = workspace.audit.records(limit=1)[0]
    assert last.action == "api.denied" and last.outcome == "denied" and last.actor == "analyst-key"


def test_errors_share_one_shape(api) -> None:  # type: ignore[no-untyped-def]
    _, client, keys = api
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    bad = client.post("/v1/keys", json={"role": "boss", "name": "x"}, headers=admin)
    assert bad.status_code == 422 and "role" in bad.json()["error"]["message"]
    missing = client.delete("/v1/keys/nope", headers=admin)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
    unknown = client.get("/v1/nothing-here", headers=admin)
    assert unknown.status_code == 404 and "error" in unknown.json()


def test_a_form_body_is_told_to_send_json(api) -> None:  # type: ignore[no-untyped-def]
    """curl -d sends a form by default; the answer says what to change."""
    _, client, keys = api
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    form = client.post(
        "/v1/keys",
        content=b'{"role": "viewer", "name": "x"}',
        headers={**admin, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 422
    assert "Content-Type: application/json" in form.json()["error"]["hint"]
    typed = client.post("/v1/keys", json={"role": "boss", "name": "x"}, headers=admin)
    assert typed.json()["error"]["hint"] == "see the schema at /docs"


def test_oversized_body_is_refused(api) -> None:  # type: ignore[no-untyped-def]
    _, client, keys = api
    response = client.post(
        "/v1/keys",
        content=b"x" * (11 * 1024 * 1024),
        headers={"Authorization": f"Bearer {keys['admin']}", "Content-Type": "application/json"},
    )
    assert response.status_code == 413 and response.json()["error"]["type"] == "payload_too_large"


def test_metrics_count_requests_by_route(api) -> None:  # type: ignore[no-untyped-def]
    _, client, keys = api
    viewer = {"Authorization": f"Bearer {keys['viewer']}"}
    client.get("/v1/whoami", headers=viewer)
    text = client.get("/metrics", headers=viewer).text
    assert re.search(r'aiw_http_requests_total\{method="GET",route="/v1/whoami",status="200"\} \d', text)
    assert "aiw_http_request_duration_seconds_bucket" in text
