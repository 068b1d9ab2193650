"""Dependencies shared by every route: settings, workspace, the authenticated principal.

Routes declare the one permission they need with ``openapi_extra=requires("models:read")``. The
app-wide :func:`authorize` dependency refuses any route that declares none (deny by default), so a
forgotten declaration fails closed.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Annotated, Any

from fastapi import Depends, Path, Request

from aiw.errors import PolicyViolation
from aiw.governance.identity import Principal
from aiw.mlops.registry.versions import MAX_ID
from aiw.settings import Settings
from aiw.workspace import Workspace

__all__ = [
    "PUBLIC",
    "CurrentPrincipal",
    "DbId",
    "ModelVersionId",
    "SettingsDep",
    "WorkspaceDep",
    "authorize",
    "permission_of",
    "requires",
]

PUBLIC = "public"
"""The permission of routes that need no key (health checks)."""

_KEY_TTL_S = 2.0  # authenticated keys are re-checked against the database this often


def requires(permission: str) -> dict[str, Any]:
    """``openapi_extra`` that declares a route's permission (and documents it in OpenAPI)."""
    if not permission:
        raise ValueError("a route's permission must be a non-empty string")
    return {"x-permission": permission}


def permission_of(route: Any) -> str | None:
    """The permission a route declared, or None."""
    extra = getattr(route, "openapi_extra", None) or {}
    value = extra.get("x-permission")
    return value if isinstance(value, str) and value else None


def _presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return request.headers.get("x-api-key") or None


class _KeyCache:
    """A short-lived cache of authenticated keys, so a hot route does not query per request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, Principal]] = {}

    def get(self, key: str) -> Principal | None:
        digest = hashlib.sha256(key.encode()).hexdigest()
        with self._lock:
            hit = self._entries.get(digest)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        return None

    def put(self, key: str, principal: Principal) -> None:
        digest = hashlib.sha256(key.encode()).hexdigest()
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[digest] = (time.monotonic() + _KEY_TTL_S, principal)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


def get_workspace(request: Request) -> Workspace:
    """The app's workspace."""
    ws: Workspace = request.app.state.workspace
    return ws


def authorize(request: Request) -> None:
    """App-wide: authenticate the key and check the route's permission; deny by default."""
    route = request.scope.get("route")
    permission = permission_of(route)
    if permission is None:
        raise PolicyViolation(
            f"{request.method} {request.url.path} declares no permission and is refused",
            hint="every route must declare openapi_extra=requires(...)",
        )
    if permission == PUBLIC:
        return
    ws = get_workspace(request)
    key = _presented_key(request)
    cache: _KeyCache = request.app.state.key_cache
    principal = cache.get(key) if key else None
    if principal is None:
        principal = ws.keys.authenticate(key)
        cache.put(key or "", principal)
    request.state.principal = principal
    if not principal.can(permission):
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            ws.audit.append(
                principal.name,
                "api.denied",
                f"route:{request.method} {getattr(route, 'path', '?')}",
                outcome="denied",
                details={"permission": permission, "role": principal.role},
            )
        principal.require(permission)


def get_principal(request: Request) -> Principal:
    """The principal :func:`authorize` authenticated for this request."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        raise PolicyViolation("this route is public and has no principal")
    return principal


DbId = Annotated[int, Path(ge=1, le=2**63 - 1, description="A positive database id.")]
"""A path id that fits a 64-bit database integer (larger ids get a 422, never a 500)."""
ModelVersionId = Annotated[int, Path(ge=1, le=MAX_ID, description="A model version number.")]
"""A model version in a path: a :data:`DbId` within MLflow's 32-bit version numbers."""
SettingsDep = Annotated[Settings, Depends(get_settings)]
WorkspaceDep = Annotated[Workspace, Depends(get_workspace)]
CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
