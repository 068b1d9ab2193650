"""API keys and the audit log."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from aiw.api.deps import CurrentPrincipal, WorkspaceDep, requires
from aiw.governance.identity import ApiKey

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["governance"])


class KeyCreate(BaseModel):
    """A key to create."""

    role: Literal["viewer", "analyst", "data_scientist", "approver", "admin"]
    name: str = Field(min_length=1, max_length=200)


def _key_json(key: ApiKey) -> dict[str, object]:
    return {
        "id": key.id,
        "name": key.name,
        "role": key.role,
        "created_at": key.created_at,
        "created_by": key.created_by,
        "revoked_at": key.revoked_at,
        "active": key.active,
    }


@router.post("/keys", status_code=201, openapi_extra=requires("keys:admin"))
def create_key(body: KeyCreate, ws: WorkspaceDep, principal: CurrentPrincipal) -> dict[str, object]:
    """Create a key; the secret is in this response only."""
    key, secret = ws.keys.create(body.name, body.role, actor=principal.name)
    return {**_key_json(key), "secret": secret}


@router.get("/keys", openapi_extra=requires("keys:admin"))
def list_keys(ws: WorkspaceDep) -> list[dict[str, object]]:
    """Every key (never secrets)."""
    return [_key_json(k) for k in ws.keys.list()]


@router.delete("/keys/{key_id}", openapi_extra=requires("keys:admin"))
def revoke_key(key_id: str, request: Request, ws: WorkspaceDep, principal: CurrentPrincipal) -> dict[str, object]:
    """Revoke a key at once."""
    key = ws.keys.revoke(key_id, actor=principal.name)
    request.app.state.key_cache.clear()
    return _key_json(key)


@router.get("/audit", openapi_extra=requires("audit:read"))
def audit_log(
    ws: WorkspaceDep,
    actor: str | None = None,
    action: str | None = None,
    resource: str | None = None,
    outcome: Literal["success", "failure", "denied"] | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = Query(100, ge=1, le=10_000),
) -> list[dict[str, object]]:
    """Audit records, newest first, filtered."""
    return [
        r.as_dict()
        for r in ws.audit.records(
            actor=actor, action=action, resource=resource, outcome=outcome, since=since, until=until, limit=limit
        )
    ]


@router.get("/audit/verify", openapi_extra=requires("audit:verify"))
def audit_verify(ws: WorkspaceDep) -> dict[str, object]:
    """Verify the hash chain; names the first bad record when it is broken."""
    report = ws.audit.verify()
    return {"ok": report.ok, "checked": report.checked, "first_bad_seq": report.first_bad_seq, "reason": report.reason}
