"""Monitoring: run drift checks, read stored reports and alerts."""

from __future__ import annotations

import threading
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field, model_validator

from aiw.api.deps import CurrentPrincipal, DbId, WorkspaceDep, requires

__all__ = ["router"]

router = APIRouter(prefix="/v1/monitor", tags=["monitoring"])
_WORKER_LOCK = threading.Lock()


class DriftRequest(BaseModel):
    """A drift check: two warehouse tables, or a model's served traffic."""

    reference: str | None = Field(None, description="Reference table (with model: its training table).")
    current: str | None = Field(None, description="Current table.")
    model: str | None = Field(None, description="Model whose recent served traffic is checked.")
    hours: float | None = Field(None, gt=0, le=24 * 365, description="Traffic window length (model).")
    columns: list[str] | None = Field(None, description="Columns to monitor (tables).")
    methods: dict[str, str] | None = Field(None, description="Per-column method override.")
    drift_share: float | None = Field(None, gt=0, le=1, description="Share of drifted columns that is dataset drift.")

    @model_validator(mode="after")
    def _one_target(self) -> DriftRequest:
        if bool(self.model) == bool(self.current):
            raise ValueError("give either model, or reference and current")
        if self.current and not self.reference:
            raise ValueError("current needs reference")
        return self


def _ensure_outbox_worker(request: Request) -> None:
    """Start this app's webhook outbox worker once (stopped at shutdown)."""
    ws = request.app.state.workspace
    if not ws.settings.alerts.webhooks:
        return
    with _WORKER_LOCK:
        if getattr(request.app.state, "alert_outbox_worker", None) is not None:
            return
        from aiw.mlops.monitoring.alerts import OutboxWorker

        worker = OutboxWorker(ws.db, ws.settings.alerts, audit=ws.audit).start()
        request.app.state.alert_outbox_worker = worker
        request.app.state.shutdown_hooks.append(worker.stop)


@router.post("/drift", status_code=201, openapi_extra=requires("monitor:write"))
def run_drift(body: DriftRequest, request: Request, ws: WorkspaceDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Score drift, store the report, set the Prometheus gauges and raise alerts."""
    from aiw.mlops.monitoring.service import MonitoringService

    service = MonitoringService(ws)
    if body.model:
        check = service.check_model(
            body.model,
            actor=principal.name,
            hours=body.hours,
            reference_table=body.reference,
            methods=body.methods,
            drift_share=body.drift_share,
        )
    else:
        assert body.reference is not None and body.current is not None  # the validator ensures it
        check = service.check_tables(
            body.reference,
            body.current,
            actor=principal.name,
            columns=body.columns,
            methods=body.methods,
            drift_share=body.drift_share,
        )
    _ensure_outbox_worker(request)
    return check.to_dict()


class LabelsBody(BaseModel):
    """True labels of served predictions, by the request id the prediction was answered with."""

    model: str = Field(..., min_length=1, max_length=200, description="Registered model name.")
    labels: dict[str, Any] = Field(
        ..., min_length=1, max_length=100_000, description="request_id -> true label (a JSON scalar)."
    )


@router.post("/labels", openapi_extra=requires("monitor:write"))
def attach_labels(body: LabelsBody, ws: WorkspaceDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Attach true labels to served predictions: performance drift (accuracy, AUC) reads them."""
    from aiw.mlops.monitoring.traffic import attach_labels as attach

    attached = attach(ws.db, ws.audit, body.model, body.labels, actor=principal.name)
    return {
        "model": body.model,
        "given": len(body.labels),
        "attached": attached,
        "unknown": len(body.labels) - attached,
    }


@router.get("/reports", openapi_extra=requires("monitor:read"))
def list_reports(
    ws: WorkspaceDep, subject: str | None = None, limit: int = Query(50, ge=1, le=1000)
) -> list[dict[str, Any]]:
    """Stored drift reports, newest first (headline figures only)."""
    from aiw.mlops.monitoring.service import MonitoringService

    return [r.to_dict(with_report=False) for r in MonitoringService(ws).reports(subject=subject, limit=limit)]


@router.get("/reports/{report_id}", openapi_extra=requires("monitor:read"))
def get_report(report_id: DbId, ws: WorkspaceDep) -> dict[str, Any]:
    """One stored drift report, whole."""
    from aiw.mlops.monitoring.service import MonitoringService

    return MonitoringService(ws).get_report(report_id).to_dict()


@router.get("/alerts", openapi_extra=requires("monitor:read"))
def list_alerts(
    ws: WorkspaceDep,
    limit: int = Query(100, ge=1, le=10_000),
    severity: Literal["info", "warning", "critical"] | None = None,
    subject: str | None = None,
    unacknowledged: bool = False,
) -> list[dict[str, Any]]:
    """Raised alerts, newest first."""
    from aiw.mlops.monitoring.alerts import AlertManager

    manager = AlertManager(ws.db, ws.audit, ws.settings.alerts)
    return [
        a.to_dict()
        for a in manager.list_alerts(limit=limit, severity=severity, subject=subject, unacknowledged=unacknowledged)
    ]
