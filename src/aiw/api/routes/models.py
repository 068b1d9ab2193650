"""Models: governed registry, approvals, cards, export, and real-time scoring under ``/v1/models``.

Scoring: ``POST /v1/models/{name}/predict`` (the ``champion``), ``/v1/models/{name}@{alias}/predict``
or ``?alias=``, and ``/v1/models/{name}/versions/{version}/predict``; bodies in MLflow's formats, or
entity keys whose features are read from the online feature store (see :func:`predict`).
"""

from __future__ import annotations

import threading
from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from aiw.api.deps import CurrentPrincipal, DbId, ModelVersionId, WorkspaceDep, requires
from aiw.api.errors import error_body
from aiw.mlops.registry.versions import MAX_ID

__all__ = ["router"]

router = APIRouter(prefix="/v1/models", tags=["models"])

_server_lock = threading.Lock()


def _server(request: Request) -> Any:
    """The app's :class:`~aiw.mlops.serving.server.ModelServer`, made on first use."""
    state = request.app.state
    server = getattr(state, "model_server", None)
    if server is None:
        with _server_lock:
            server = getattr(state, "model_server", None)
            if server is None:
                from aiw.mlops.serving.server import ModelServer

                server = ModelServer(state.workspace)
                state.model_server = server
                state.shutdown_hooks.append(server.close)
    return server


def _registry(ws: Any) -> Any:
    from aiw.mlops.registry import ModelRegistry

    return ModelRegistry(ws)


def _workflow(ws: Any) -> Any:
    from aiw.mlops.registry import PromotionWorkflow

    return PromotionWorkflow(ws)


class RegisterBody(BaseModel):
    """What to register: a run id or a ``models:/m-...`` URI."""

    source: str = Field(min_length=1, max_length=1000, description="Run id or models:/m-... URI")
    description: str = Field("", max_length=5000)
    parent_version: int | None = Field(None, ge=1)


class RequestBody(BaseModel):
    """A promotion request."""

    target: Literal["staging", "production"]
    reason: str = Field("", max_length=5000)


class DecisionBody(BaseModel):
    """An approver's decision."""

    comment: str = Field("", max_length=5000)


class PromoteBody(BaseModel):
    """Where to promote."""

    target: Literal["staging", "production"]


class RollbackBody(BaseModel):
    """Which alias to roll back, and why."""

    target: Literal["staging", "production"]
    reason: str = Field("", max_length=5000)


class ExportBody(BaseModel):
    """Edge export options."""

    format: Literal["onnx"] = "onnx"
    tolerance: float = Field(1e-4, gt=0, le=0.1)


async def _predict(request: Request, name: str, ref: str | int | None, principal: Any) -> Response:
    from starlette.requests import ClientDisconnect

    from aiw.mlops.serving.server import PayloadTooLarge

    server = _server(request)
    try:
        body = await request.body()
    except ClientDisconnect:  # the client went away mid-request: nobody to answer, nothing to log
        return Response(status_code=499)
    try:
        content = await server.predict(name, ref, body, principal)
    except PayloadTooLarge as exc:
        return JSONResponse(error_body(413, "payload_too_large", exc.message, exc.hint), status_code=413)
    return Response(content, media_type="application/json")


# Scoring routes come first: requests are matched against routes in order, and scoring is the
# hot path. They read the principal that the app-wide ``authorize`` dependency stored on the
# request instead of declaring ``CurrentPrincipal``: a sync dependency costs a thread-pool hop per
# request, which on this hot path is a large share of the whole request.
@router.post("/{name}/predict", openapi_extra=requires("models:predict"))
async def predict(
    name: str,
    request: Request,
    alias: str | None = Query(None, description="Alias to score with (default champion)"),
) -> Response:
    """Score rows with the model's ``champion`` (or ``name@alias``, or ``?alias=``).

    The body carries the model's input columns in one of MLflow's formats
    (``{"dataframe_records": [{"amount": 1200.5, ...}]}``, ``dataframe_split``, ``instances``,
    ``inputs``), or entity keys, and the server reads the inputs from the online feature store
    (the body of Feast's feature server)::

        {"entities": {"claim_id": [17, 42]}}
        {"entities": {"claim_id": [17, 42]}, "feature_service": "claims_fraud"}
        {"entities": {"claim_id": [17]}, "features": ["claim_features:amount", ...]}

    Each input column of the model's signature is fed by the online feature of the same name (in
    a view looked up by the given keys; or in the feature service; or as named). The answer lists
    one prediction per key, in order, and ``"features": {"source": "online_store", "refs": [...]}``.
    Unknown keys, features or services, and keys the online store holds nothing for, get a 422
    that names them. A model that raises gets a 500 of type ``model_error`` naming the model,
    version and exception type.
    """
    model, _, at = name.partition("@")
    return await _predict(request, model, at or alias, request.state.principal)


@router.post("/{name}/versions/{version}/predict", openapi_extra=requires("models:predict"))
async def predict_version(name: str, version: ModelVersionId, request: Request) -> Response:
    """Score rows with one explicit version (bodies as for ``POST /v1/models/{name}/predict``)."""
    return await _predict(request, name, version, request.state.principal)


@router.get("", openapi_extra=requires("models:read"))
def list_models(ws: WorkspaceDep) -> list[dict[str, Any]]:
    """Every governed model with its newest version and aliases."""
    return [
        {
            "name": m.name,
            "latest_version": m.latest_version,
            "versions": m.versions,
            "aliases": m.aliases,
            "updated_at": m.updated_at.isoformat(),
        }
        for m in _registry(ws).list_models()
    ]


@router.get("/_requests", openapi_extra=requires("models:read"))
def all_requests(
    ws: WorkspaceDep,
    status: Literal["pending", "approved", "rejected", "promoted", "superseded"] | None = None,
    limit: int = Query(200, ge=1, le=1000),
) -> list[dict[str, Any]]:
    """Promotion requests of every model (``?status=pending`` for the approval queue)."""
    return [r.as_dict() for r in _workflow(ws).requests(None, status=status, limit=limit)]


@router.get("/{name}", openapi_extra=requires("models:read"))
def show_model(name: str, ws: WorkspaceDep) -> dict[str, Any]:
    """A model's versions, aliases and promotion requests."""
    from aiw.errors import NotFoundError

    registry = _registry(ws)
    versions = registry.versions(name)
    if not versions:
        raise NotFoundError(f"No model named {name!r} is registered", hint="see GET /v1/models")
    return {
        "name": name,
        "aliases": registry.aliases(name),
        "versions": [v.as_dict() for v in versions],
        "requests": [r.as_dict() for r in _workflow(ws).requests(name)],
    }


@router.get("/{name}/versions/{version}", openapi_extra=requires("models:read"))
def show_version(name: str, version: ModelVersionId, ws: WorkspaceDep) -> dict[str, Any]:
    """One version: lineage, checksums, metrics, signature."""
    mv = _registry(ws).get(name, version)
    gates = _workflow(ws).gates(mv)
    return {**mv.as_dict(), "gates": [g.describe() for g in gates]}


@router.post("/{name}/versions", status_code=201, openapi_extra=requires("models:write"))
def register_version(name: str, body: RegisterBody, ws: WorkspaceDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Register a logged model as a new governed version (checksums, lineage, audit)."""
    mv = _registry(ws).register(
        body.source, name, principal, description=body.description, parent_version=body.parent_version
    )
    result: dict[str, Any] = mv.as_dict()
    return result


@router.get("/{name}/requests", openapi_extra=requires("models:read"))
def model_requests(name: str, ws: WorkspaceDep) -> list[dict[str, Any]]:
    """A model's promotion requests, newest first."""
    return [r.as_dict() for r in _workflow(ws).requests(name)]


@router.post("/{name}/versions/{version}/requests", status_code=201, openapi_extra=requires("models:request"))
def request_promotion(
    name: str, version: ModelVersionId, body: RequestBody, ws: WorkspaceDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Request that a version be promoted to ``staging`` or ``production``."""
    result: dict[str, Any] = _workflow(ws).request(name, version, body.target, principal, reason=body.reason).as_dict()
    return result


def _request_of(ws: Any, name: str, request_id: int) -> Any:
    from aiw.errors import NotFoundError

    workflow = _workflow(ws)
    found = workflow.get(request_id)
    if found.model != name:
        raise NotFoundError(f"Request #{request_id} is not a request of model {name!r}")
    return workflow


@router.post("/{name}/requests/{request_id}/approve", openapi_extra=requires("models:approve"))
def approve(
    name: str, request_id: DbId, body: DecisionBody, ws: WorkspaceDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Approve a pending request (not your own)."""
    result: dict[str, Any] = (
        _request_of(ws, name, request_id).approve(request_id, principal, comment=body.comment).as_dict()
    )
    return result


@router.post("/{name}/requests/{request_id}/reject", openapi_extra=requires("models:approve"))
def reject(
    name: str, request_id: DbId, body: DecisionBody, ws: WorkspaceDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Reject a pending request, saying why."""
    result: dict[str, Any] = (
        _request_of(ws, name, request_id).reject(request_id, principal, comment=body.comment).as_dict()
    )
    return result


@router.post("/{name}/versions/{version}/promote", openapi_extra=requires("models:promote"))
def promote(
    name: str,
    version: ModelVersionId,
    body: PromoteBody,
    ws: WorkspaceDep,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    """Move the target's alias to an approved, gate-passing version."""
    result: dict[str, Any] = _workflow(ws).promote(name, version, body.target, principal).as_dict()
    return result


@router.post("/{name}/rollback", openapi_extra=requires("models:promote"))
def rollback(name: str, body: RollbackBody, ws: WorkspaceDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Move the target's alias back to the version it held before."""
    from aiw.mlops.registry import ALIAS_OF_TARGET

    version = _workflow(ws).rollback(name, body.target, principal, reason=body.reason)
    return {"model": name, "alias": ALIAS_OF_TARGET[body.target], "version": version}


@router.get("/{name}/versions/{version}/card", openapi_extra=requires("models:read"))
def card(name: str, version: ModelVersionId, ws: WorkspaceDep, format: Literal["md", "html"] = "md") -> Response:
    """The model card, as Markdown or HTML (built on the fly, not written)."""
    from aiw.mlops.registry import build_card

    built = build_card(ws, name, version)
    if format == "html":
        return Response(built.html, media_type="text/html; charset=utf-8")
    return Response(built.markdown, media_type="text/markdown; charset=utf-8")


@router.post("/{name}/versions/{version}/card", openapi_extra=requires("models:write"))
def write_card(name: str, version: ModelVersionId, ws: WorkspaceDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Write the card's Markdown and HTML under the workspace's artifacts (audited)."""
    from aiw.mlops.registry import write_model_card

    written = write_model_card(ws, name, version, principal)
    return {"model": name, "version": version, "markdown": str(written.markdown_path), "html": str(written.html_path)}


@router.post("/{name}/versions/{version}/export", openapi_extra=requires("models:write"))
def export(
    name: str,
    version: ModelVersionId,
    body: ExportBody,
    ws: WorkspaceDep,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    """Export a version to ONNX for the edge, checked against the original on held-out rows."""
    from aiw.mlops.serving.edge import export_onnx

    result: dict[str, Any] = export_onnx(ws, name, version, principal, tolerance=body.tolerance).as_dict()
    return result


@router.get("/{name}/traffic", openapi_extra=requires("models:read"))
def traffic(
    name: str,
    request: Request,
    version: int | None = Query(None, ge=1, le=MAX_ID),
    limit: int = Query(100, ge=1, le=10_000),
) -> list[dict[str, Any]]:
    """The newest served predictions of a model, newest first (features, prediction, score, label,
    latency, the version that answered and the request id labels are attached by)."""
    server = _server(request)
    server.traffic.flush()
    return server.traffic.recent(name, version=version, limit=limit)
