"""Health, readiness, metrics, status and identity routes."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from aiw.api.deps import PUBLIC, CurrentPrincipal, WorkspaceDep, requires

__all__ = ["router"]

router = APIRouter(tags=["system"])


@router.get("/healthz", openapi_extra=requires(PUBLIC))
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", openapi_extra=requires(PUBLIC))
def readyz(ws: WorkspaceDep) -> JSONResponse:
    """Readiness: every configured backend answers (503 naming those that do not)."""
    checks = ws.status()
    failing = [c.concern for c in checks if c.required and not c.reachable]
    body = {
        "status": "ok" if not failing else "unavailable",
        "failing": failing,
        "checks": [
            {
                "concern": c.concern,
                "backend": c.backend,
                "reachable": c.reachable,
                "required": c.required,
                "detail": c.detail,
            }
            for c in checks
        ],
    }
    return JSONResponse(body, status_code=200 if not failing else 503)


@router.get("/metrics", openapi_extra=requires("metrics:read"))
def metrics() -> Response:
    """Prometheus metrics (scrape with a viewer key as bearer token)."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/status", openapi_extra=requires("status:read"))
def status(ws: WorkspaceDep) -> dict[str, object]:
    """Where each concern lives and whether it answers."""
    return {"workspace": str(ws.root), "concerns": [c.__dict__ for c in ws.status()]}


@router.get("/v1/whoami", openapi_extra=requires("status:read"))
def whoami(principal: CurrentPrincipal) -> dict[str, object]:
    """The caller's key name, role and permissions."""
    from aiw.governance.identity import permissions_of

    return {
        "name": principal.name,
        "role": principal.role,
        "key_id": principal.key_id,
        "permissions": sorted(permissions_of(principal.role)),
    }
