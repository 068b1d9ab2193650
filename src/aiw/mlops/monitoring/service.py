"""Drift checks end to end: what ``aiw monitor``, ``/v1/monitor`` and the dashboard call.

A check reads the data (warehouse tables, or windows of a model's served traffic), scores it
with :class:`~aiw.mlops.monitoring.drift.DataDriftDetector`, and then, in one transaction,
stores the report (``drift_reports``), raises the alerts its figures call for (log, dashboard,
webhook outbox) and audits it. The report is also written as JSON and as self-contained HTML
(with the reference profile) under ``<home>/artifacts/<settings.monitoring.reports_dir>/``,
and its figures are set on Prometheus gauges in the default registry (what ``/metrics``
exposes).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from aiw.db.schema import drift_reports
from aiw.errors import InvalidInputError, NotFoundError
from aiw.mlops.monitoring.alerts import Alert, AlertManager, new_id

if TYPE_CHECKING:
    from aiw.mlops.monitoring.drift import DriftReport
    from aiw.mlops.monitoring.embedding import EmbeddingDriftReport
    from aiw.mlops.monitoring.traffic import PerformanceReport
    from aiw.workspace import Workspace

__all__ = ["DriftCheck", "MonitoringService", "StoredReport", "set_gauges"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}$")
_GAUGES: dict[str, Any] = {}
_GAUGE_LOCK = threading.Lock()


def _gauges() -> dict[str, Any]:
    """The drift gauges, registered once per process in prometheus_client's default REGISTRY."""
    with _GAUGE_LOCK:
        if not _GAUGES:
            from prometheus_client import Gauge

            _GAUGES["score"] = Gauge(
                "aiw_drift_score", "Drift score of a column (p-value or distance)", ["subject", "column", "method"]
            )
            _GAUGES["detected"] = Gauge("aiw_drift_detected", "1 when the column drifted", ["subject", "column"])
            _GAUGES["share"] = Gauge("aiw_dataset_drift_share", "Share of drifted columns", ["subject"])
            _GAUGES["dataset"] = Gauge("aiw_dataset_drift", "1 when the dataset drifted", ["subject"])
            _GAUGES["embedding"] = Gauge("aiw_embedding_drift", "Embedding drift measure", ["subject", "measure"])
        return _GAUGES


def set_gauges(report: DriftReport | EmbeddingDriftReport) -> None:
    """Expose a report's figures as Prometheus gauges (labels: subject, column, method)."""
    g = _gauges()
    if report.kind == "embedding":
        for m in report.metrics:  # type: ignore[union-attr]
            if m.value is not None:
                g["embedding"].labels(report.subject, m.name).set(m.value)
        return
    for c in report.columns:  # type: ignore[union-attr]
        if c.score is not None:
            g["score"].labels(report.subject, c.column, c.method).set(c.score)
        g["detected"].labels(report.subject, c.column).set(1 if c.drifted else 0)
    g["share"].labels(report.subject).set(report.share_drifted)  # type: ignore[union-attr]
    g["dataset"].labels(report.subject).set(1 if report.dataset_drift else 0)  # type: ignore[union-attr]


@dataclass
class DriftCheck:
    """The outcome of one check: the stored report, where its files are, the alerts raised."""

    id: int
    subject: str
    report: DriftReport
    json_path: Path
    html_path: Path
    profile_path: Path | None
    alerts: list[Alert] = field(default_factory=list)
    performance: PerformanceReport | None = None
    reference_source: str = ""
    current_source: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (the whole report included)."""
        return {
            "id": self.id,
            "subject": self.subject,
            "reference": self.reference_source,
            "current": self.current_source,
            "json_path": str(self.json_path),
            "html_path": str(self.html_path),
            "profile_path": None if self.profile_path is None else str(self.profile_path),
            "alerts": [a.to_dict() for a in self.alerts],
            "performance": None if self.performance is None else self.performance.to_dict(),
            "report": json.loads(self.report.to_json()),
        }


@dataclass
class StoredReport:
    """A row of ``drift_reports``: the headline figures and the report itself."""

    id: int
    created_at: str
    subject: str
    kind: str
    dataset_drift: bool
    share_drifted: float
    n_drifted: int
    n_columns: int
    html_path: str | None
    actor: str
    report: dict[str, Any]

    @property
    def drifted_columns(self) -> list[str]:
        """Names of the drifted columns (data reports)."""
        return list(self.report.get("drifted_columns", []))

    def to_dict(self, *, with_report: bool = True) -> dict[str, Any]:
        """Plain JSON-ready data."""
        out = {
            "id": self.id,
            "created_at": self.created_at,
            "subject": self.subject,
            "kind": self.kind,
            "dataset_drift": self.dataset_drift,
            "share_drifted": self.share_drifted,
            "n_drifted": self.n_drifted,
            "n_columns": self.n_columns,
            "html_path": self.html_path,
            "actor": self.actor,
            "drifted_columns": self.drifted_columns,
        }
        if with_report:
            out["report"] = self.report
        return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:120] or "report"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


class MonitoringService:
    """Runs drift checks for a workspace and stores their reports and alerts.

    Args:
        workspace: The workspace (warehouse, metadata DB, audit log, artifacts folder).
        alert_manager: Use this instead of one built from ``workspace.settings.alerts``.
    """

    def __init__(self, workspace: Workspace, *, alert_manager: AlertManager | None = None) -> None:
        self.workspace = workspace
        self.settings = workspace.settings.monitoring
        self.alerts = alert_manager or AlertManager(workspace.db, workspace.audit, workspace.settings.alerts)

    @property
    def reports_dir(self) -> Path:
        """Where report files are written."""
        from aiw.workspace import safe_join

        return safe_join(self.workspace.path("artifacts"), self.settings.reports_dir)

    # -- data ------------------------------------------------------------------------------
    def read_table(self, name: str, columns: Sequence[str] | None = None) -> Any:
        """A warehouse table (or view) as a pyarrow Table.

        Raises:
            InvalidInputError: the name is not a plain (schema-qualified) identifier.
            NotFoundError: the table does not exist.
        """
        if not _IDENT.match(name or ""):
            raise InvalidInputError(f"{name!r} is not a table name (letters, digits, _ and dots).")
        quoted = ".".join(f'"{part}"' for part in name.split("."))
        cols = "*" if not columns else ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
        import duckdb

        conn = self.workspace.connect_warehouse(read_only=True, ai_functions=False)
        try:
            return conn.execute(f"SELECT {cols} FROM {quoted}").fetch_arrow_table()
        except duckdb.CatalogException as exc:
            raise NotFoundError(
                f"No table {name!r} in the warehouse", hint="check the name ('aiw sql' can list tables)"
            ) from exc
        except duckdb.BinderException as exc:
            raise InvalidInputError(f"Cannot read {name!r}: {str(exc).splitlines()[0]}") from exc
        finally:
            conn.close()

    def _training_table(self, model: str) -> str | None:
        """The training table recorded for the model's champion (else newest) version, if any."""
        from aiw.db import schema

        versions = getattr(schema, "mlops_model_versions", None)
        aliases = getattr(schema, "mlops_aliases", None)
        if versions is None:
            return None
        with self.workspace.db.engine.connect() as conn:
            try:
                version = None
                if aliases is not None:
                    version = conn.execute(
                        sa.select(aliases.c.version).where(aliases.c.model_name == model, aliases.c.alias == "champion")
                    ).scalar()
                q = sa.select(versions.c.data_fingerprint).where(versions.c.model_name == model)
                q = (
                    q.where(versions.c.version == version)
                    if version is not None
                    else q.order_by(versions.c.version.desc())
                )
                fp = conn.execute(q.limit(1)).scalar()
            except sa.exc.OperationalError:  # the registry's tables are not migrated here
                return None
        if not fp:
            return None
        table = str(json.loads(fp).get("table") or "")
        return table if _IDENT.match(table) else None

    def _held_out_rows(self, model: str, version: str | None, actor: str) -> tuple[Any, str] | None:
        """The held-out rows logged with the model (``verification.json``, up to 500 rows of its
        training distribution) of ``version`` or the champion, after checking the file's SHA-256
        against the registry; None when there are none."""
        import pandas as pd

        from aiw.mlops.registry import ModelRegistry
        from aiw.mlops.tracking import read_held_out_rows

        registry = ModelRegistry(self.workspace)
        try:
            number = registry.resolve(model, version)
            folder, mv = registry.verified_folder(model, number, actor=actor)
        except NotFoundError:
            return None
        held_out = read_held_out_rows(folder, mv.manifest)
        if held_out is None:
            return None
        frame = pd.DataFrame(held_out[1], columns=held_out[0])
        return frame, f"model:{model}/{number}:held-out rows ({len(frame)})"

    # -- checks ----------------------------------------------------------------------------
    def _detector(
        self,
        *,
        columns: Sequence[str] | None,
        methods: Mapping[str, str] | None,
        drift_share: float | None,
        column_types: Mapping[str, str] | None = None,
    ) -> Any:
        from aiw.mlops.monitoring.drift import DataDriftDetector

        return DataDriftDetector(
            columns=columns,
            methods=methods,
            column_types=column_types,
            drift_share=drift_share if drift_share is not None else self.settings.drift_share,
            max_points=self.settings.max_points,
        )

    def check_tables(
        self,
        reference: str,
        current: str,
        *,
        actor: str,
        columns: Sequence[str] | None = None,
        methods: Mapping[str, str] | None = None,
        drift_share: float | None = None,
    ) -> DriftCheck:
        """Drift of warehouse table ``current`` against table ``reference``."""
        ref = self.read_table(reference, columns)
        cur = self.read_table(current, columns)
        det = self._detector(columns=columns, methods=methods, drift_share=drift_share).fit(ref)
        report = det.score(cur)
        report.subject = f"table:{current}"
        return self._store(
            report,
            actor=actor,
            profile=det.profile_.to_json(),
            reference=f"table:{reference}",
            current=f"table:{current}",
        )

    def check_model(
        self,
        model: str,
        *,
        actor: str,
        hours: float | None = None,
        reference_table: str | None = None,
        version: str | None = None,
        now: datetime | None = None,
        methods: Mapping[str, str] | None = None,
        drift_share: float | None = None,
    ) -> DriftCheck:
        """Drift of a model's recent served traffic (features and prediction).

        The current data is the last ``hours`` of traffic. The reference is ``reference_table``
        when given, else the model's recorded training table when it is in the warehouse, else
        the held-out rows logged with the model (checksummed with its files), else the window of
        traffic before the current one. Performance drift (accuracy, AUC) between
        the two traffic windows is added when labels have arrived.
        """
        from aiw.mlops.monitoring import traffic

        ref_w, cur_w = traffic.traffic_windows(hours or self.settings.window_hours, now=now)
        db = self.workspace.db
        cur = traffic.traffic_frame(db, model, cur_w, version=version)
        if cur.empty:
            raise InvalidInputError(
                f"No served traffic of {model!r} in {cur_w.label()}.",
                hint="serve some requests first, or widen --hours",
            )
        feature_cols = [c for c in cur.columns if c not in ("score", "label", "version", "request_id", "ts")]
        table = reference_table or self._training_table(model)
        ref_source = ""
        ref = None
        if table:
            try:
                ref_tbl = self.read_table(table)
            except NotFoundError:
                if reference_table:
                    raise
                ref_tbl = None  # the recorded training table is gone: fall back to traffic
            if ref_tbl is not None:
                shared = [c for c in feature_cols if c in ref_tbl.column_names]
                if not shared:
                    raise InvalidInputError(f"Table {table!r} shares no column with {model!r}'s features.")
                ref, feature_cols, ref_source = ref_tbl.select(shared).to_pandas(), shared, f"table:{table}"
        if ref is None:
            held_out = self._held_out_rows(model, version, actor)
            if held_out is not None:
                shared = [c for c in feature_cols if c in held_out[0].columns]
                if shared:
                    ref, feature_cols, ref_source = held_out[0][shared], shared, held_out[1]
        if ref is None:
            ref = traffic.traffic_frame(db, model, ref_w, version=version)
            if ref.empty:
                raise InvalidInputError(
                    f"No reference for {model!r}: its training data is not one warehouse table, no held-out "
                    f"rows were logged with it, and there was no traffic in {ref_w.label()}.",
                    hint="name a reference table (--reference TABLE, or 'reference' in the API)",
                )
            ref_source = f"traffic:{ref_w.label()}"
        det = self._detector(columns=feature_cols, methods=methods, drift_share=drift_share).fit(ref[feature_cols])
        report = det.score(cur[feature_cols])
        report.subject = f"model:{model}"
        perf: PerformanceReport | None = traffic.performance_drift(db, model, ref_w, cur_w, version=version)
        if perf is not None and perf.current.labelled == 0:
            perf = None
        return self._store(
            report,
            actor=actor,
            profile=det.profile_.to_json(),
            performance=perf,
            reference=ref_source,
            current=f"traffic:{cur_w.label()}",
        )

    def check_embeddings(
        self, subject: str, reference: Any, current: Any, *, actor: str
    ) -> tuple[EmbeddingDriftReport, list[Alert]]:
        """Embedding drift of two sets of vectors; stored, gauged and alerted like data drift."""
        from aiw.mlops.monitoring.embedding import EmbeddingDriftDetector

        report = EmbeddingDriftDetector().fit(reference).score(current)
        report.subject = subject
        body = report.to_dict()
        with self.workspace.db.begin() as conn:
            rid = new_id(
                conn.execute(
                    drift_reports.insert().values(
                        created_at=datetime.now(UTC),
                        subject=subject,
                        kind="embedding",
                        dataset_drift=report.drifted,
                        share_drifted=1.0 if report.drifted else 0.0,
                        n_drifted=sum(m.level != "ok" for m in report.metrics),
                        n_columns=len(report.metrics),
                        report=json.dumps(body),
                        html_path=None,
                        actor=actor,
                    )
                )
            )
            raised = self.alerts.check(
                subject, "embedding", report.summary(), actor=actor, details={"report_id": int(rid)}, conn=conn
            )
            self.workspace.audit.append(
                actor,
                "monitor.drift",
                subject,
                details={"report_id": int(rid), "kind": "embedding", "severity": report.severity},
                conn=conn,
            )
        set_gauges(report)
        return report, raised

    def _store(
        self,
        report: DriftReport,
        *,
        actor: str,
        profile: str | None,
        performance: PerformanceReport | None = None,
        reference: str = "",
        current: str = "",
    ) -> DriftCheck:
        from aiw.mlops.monitoring.html import render_html

        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        folder = self.reports_dir / _slug(report.subject)
        json_path = folder / f"{stamp}.json"
        html_path = folder / f"{stamp}.html"
        profile_path = folder / f"{stamp}.profile.json" if profile else None
        body = report.to_json(indent=1)
        _write_atomic(json_path, body)
        _write_atomic(html_path, render_html(json.loads(body)))
        if profile_path is not None and profile is not None:
            _write_atomic(profile_path, profile)
        with self.workspace.db.begin() as conn:
            rid = new_id(
                conn.execute(
                    drift_reports.insert().values(
                        created_at=datetime.now(UTC),
                        subject=report.subject,
                        kind=report.kind,
                        dataset_drift=report.dataset_drift,
                        share_drifted=report.share_drifted,
                        n_drifted=report.n_drifted,
                        n_columns=report.n_columns,
                        report=body,
                        html_path=str(html_path),
                        actor=actor,
                    )
                )
            )
            details = {
                "report_id": rid,
                "drifted_columns": report.drifted_columns[:50],
                "reference": reference,
                "current": current,
            }
            raised = self.alerts.check(
                report.subject, "data", report.summary(), actor=actor, details=details, conn=conn
            )
            if performance is not None:
                raised += self.alerts.check(
                    report.subject,
                    "performance",
                    performance.summary(),
                    actor=actor,
                    details={"report_id": rid},
                    conn=conn,
                )
            self.workspace.audit.append(
                actor,
                "monitor.drift",
                report.subject,
                details={
                    "report_id": rid,
                    "dataset_drift": report.dataset_drift,
                    "n_drifted": report.n_drifted,
                    "n_columns": report.n_columns,
                    "alerts": len(raised),
                    "reference": reference,
                    "current": current,
                },
                conn=conn,
            )
        set_gauges(report)
        return DriftCheck(
            rid, report.subject, report, json_path, html_path, profile_path, raised, performance, reference, current
        )

    # -- reading ---------------------------------------------------------------------------
    def reports(self, *, subject: str | None = None, limit: int = 50) -> list[StoredReport]:
        """Stored reports, newest first."""
        q = sa.select(drift_reports).order_by(drift_reports.c.id.desc()).limit(max(1, min(limit, 1000)))
        if subject:
            q = q.where(drift_reports.c.subject == subject)
        with self.workspace.db.engine.connect() as conn:
            return [_to_stored(r) for r in conn.execute(q)]

    def latest_reports(self) -> list[StoredReport]:
        """The newest report of each subject and kind, newest first."""
        newest = (
            sa.select(sa.func.max(drift_reports.c.id))
            .group_by(drift_reports.c.subject, drift_reports.c.kind)
            .scalar_subquery()
        )
        q = sa.select(drift_reports).where(drift_reports.c.id.in_(newest)).order_by(drift_reports.c.id.desc())
        with self.workspace.db.engine.connect() as conn:
            return [_to_stored(r) for r in conn.execute(q)]

    def get_report(self, report_id: int) -> StoredReport:
        """One stored report by id."""
        with self.workspace.db.engine.connect() as conn:
            row = conn.execute(sa.select(drift_reports).where(drift_reports.c.id == report_id)).first()
        if row is None:
            raise NotFoundError(f"No drift report with id {report_id}", hint="see 'aiw monitor reports'")
        return _to_stored(row)


def _to_stored(row: Any) -> StoredReport:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return StoredReport(
        int(row.id),
        created.isoformat(),
        row.subject,
        row.kind,
        bool(row.dataset_drift),
        float(row.share_drifted),
        int(row.n_drifted),
        int(row.n_columns),
        row.html_path,
        row.actor,
        json.loads(row.report),
    )
