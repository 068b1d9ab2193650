"""Deployments: canary and shadow rollouts of governed models under ``/v1/deployments``.

The API process serves the traffic, so its router takes every change at once and status shows
its live, in-memory metrics; rollouts started by the CLI are picked up within ``poll_s``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from aiw.api.deps import CurrentPrincipal, DbId, WorkspaceDep, requires

__all__ = ["router"]

router = APIRouter(prefix="/v1/deployments", tags=["deployments"])


class _GuardrailFields(BaseModel):
    """Guardrail overrides; omitted fields take ``settings.rollout``'s defaults."""

    bake: str | float | None = Field(None, description="Bake window per step: 60s, 500ms, 2m or seconds")
    max_error_rate: float | None = Field(None, ge=0, lt=1, description="Candidate error rate that rolls back")
    max_p95_ratio: float | None = Field(None, ge=1, description="Candidate/champion p95 latency that rolls back")
    latency_floor_ms: float | None = Field(None, ge=0, description="p95 differences below this are noise")
    max_prediction_psi: float | None = Field(None, gt=0, description="PSI between the arms' predictions")
    min_requests: int | None = Field(None, ge=1, le=10_000_000, description="Requests per arm before judging")

    def overrides(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(exclude={"version", "steps", "bake"}).items() if v is not None}


class ShadowBody(_GuardrailFields):
    """A shadow deployment of ``version``."""

    version: int = Field(ge=1, le=2**63 - 1, description="The candidate version")


class CanaryBody(ShadowBody):
    """A canary of ``version``."""

    steps: list[float] | None = Field(
        None, min_length=1, max_length=20, description="Candidate shares in percent, increasing, ending at 100"
    )


class ReasonBody(BaseModel):
    """Why an operator promotes or rolls back."""

    reason: str = Field("", max_length=5000)


def _service(request: Request) -> Any:
    from aiw.api.routes.models import _server
    from aiw.mlops.rollout.service import DeploymentService

    return DeploymentService(request.app.state.workspace, router=_server(request).rollouts)


@router.get("", openapi_extra=requires("deployments:read"))
def list_rollouts(
    request: Request, model: str | None = Query(None, max_length=200), limit: int = Query(50, ge=1, le=1000)
) -> list[dict[str, Any]]:
    """Rollouts, newest first (``?model=`` for one model)."""
    return [r.as_dict() for r in _service(request).history(model, limit=limit)]


@router.get("/_rollouts/{rollout_id}", openapi_extra=requires("deployments:read"))
def show_rollout(rollout_id: DbId, ws: WorkspaceDep) -> dict[str, Any]:
    """One rollout with every decision taken on it."""
    from aiw.mlops.rollout.store import RolloutStore

    store = RolloutStore(ws.db, ws.audit)
    return {**store.get(rollout_id).as_dict(), "decisions": [d.as_dict() for d in store.decisions(rollout_id)]}


@router.get("/{name}", openapi_extra=requires("deployments:read"))
def status(name: str, request: Request) -> dict[str, Any]:
    """The model's newest rollout: split, live per-arm metrics and every decision with its reason."""
    result: dict[str, Any] = _service(request).status(name).as_dict()
    return result


@router.get("/{name}/history", openapi_extra=requires("deployments:read"))
def history(name: str, request: Request, limit: int = Query(50, ge=1, le=1000)) -> list[dict[str, Any]]:
    """The model's rollouts, newest first."""
    return [r.as_dict() for r in _service(request).history(name, limit=limit)]


@router.post("/{name}/canary", status_code=201, openapi_extra=requires("deployments:write"))
def canary(name: str, body: CanaryBody, request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
    """Start a canary of an approved version against ``@champion``."""
    rollout = _service(request).canary(
        name, body.version, principal, steps=body.steps, bake=body.bake, **body.overrides()
    )
    result: dict[str, Any] = rollout.as_dict()
    return result


@router.post("/{name}/shadow", status_code=201, openapi_extra=requires("deployments:write"))
def shadow(name: str, body: ShadowBody, request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
    """Start a shadow: the candidate scores a mirrored copy of the traffic; its answers are never returned."""
    rollout = _service(request).shadow(name, body.version, principal, bake=body.bake, **body.overrides())
    result: dict[str, Any] = rollout.as_dict()
    return result


@router.post("/{name}/promote", openapi_extra=requires("deployments:write"))
def promote(name: str, body: ReasonBody, request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
    """End the running canary now: ``@champion`` moves to the candidate (needs ``models:promote`` too)."""
    result: dict[str, Any] = _service(request).promote(name, principal, reason=body.reason).as_dict()
    return result


@router.post("/{name}/rollback", openapi_extra=requires("deployments:write"))
def rollback(name: str, body: ReasonBody, request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
    """End the running rollout now: all traffic back to ``@champion``."""
    result: dict[str, Any] = _service(request).rollback(name, principal, reason=body.reason).as_dict()
    return result
