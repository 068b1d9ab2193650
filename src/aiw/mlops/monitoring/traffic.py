"""Served traffic: what the serving layer records, and drift over windows of it.

The serving layer calls :func:`record_predictions` for the requests it answers (one row per
prediction, ``served_predictions`` table; a retried request with the same ``request_id`` is
not recorded twice), and whoever learns the truth later calls :func:`attach_labels`.

* :func:`prediction_drift` - data drift of the predictions (and scores) between two windows;
* :func:`performance_drift` - accuracy and ROC AUC per window over the labelled rows, and how
  much they dropped;
* :func:`traffic_frame` - one window as a DataFrame (features, prediction, score, label) for
  feature drift.

Recording predictions is telemetry, not a change of platform state, so it is not audited row
by row; attaching labels is (one audit record per call).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from aiw.db import MetadataDB
from aiw.db.schema import served_predictions
from aiw.errors import InvalidInputError
from aiw.governance.audit import AuditLog

if TYPE_CHECKING:
    import pandas as pd

    from aiw.mlops.monitoring.drift import DriftReport

__all__ = [
    "PerformanceReport",
    "TrafficRecord",
    "Window",
    "attach_labels",
    "performance_drift",
    "prediction_drift",
    "record_predictions",
    "traffic_frame",
    "traffic_windows",
]


@dataclass(frozen=True)
class TrafficRecord:
    """One served prediction.

    Attributes:
        model: Registered model name.
        version: The version that answered.
        request_id: Unique per model (an idempotency key: a retry is recorded once).
        features: The input features (a JSON object).
        prediction: The prediction (any JSON value; scalars are what drift checks read).
        ts: When it was served (default: now, UTC).
        score: Probability of the positive class, when the model gives one (for AUC).
        label: The true label, when already known.
        latency_ms: Time taken to answer.
    """

    model: str
    version: str
    request_id: str
    features: Mapping[str, Any]
    prediction: Any
    ts: datetime | None = None
    score: float | None = None
    label: Any = None
    latency_ms: float | None = None


@dataclass(frozen=True)
class Window:
    """A half-open time window ``[start, end)`` in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise InvalidInputError("Window bounds must be timezone-aware (UTC).")
        if self.end <= self.start:
            raise InvalidInputError(f"A window must end after it starts; got {self.start} .. {self.end}.")

    def label(self) -> str:
        """``start .. end`` in ISO-8601."""
        return f"{self.start.isoformat()} .. {self.end.isoformat()}"


def traffic_windows(hours: float, *, now: datetime | None = None) -> tuple[Window, Window]:
    """The window before last and the last window of ``hours`` hours: (reference, current)."""
    if not hours > 0:
        raise InvalidInputError(f"The window length must be positive hours. Got {hours!r} instead.")
    end = now or datetime.now(UTC)
    size = timedelta(hours=hours)
    return Window(end - 2 * size, end - size), Window(end - size, end)


def _json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), default=str, allow_nan=False)
    except ValueError as exc:
        raise InvalidInputError(f"The {what} of a traffic record must be JSON (no NaN): {exc}") from exc


def _row(rec: TrafficRecord | Mapping[str, Any], now: datetime) -> dict[str, Any]:
    r = rec if isinstance(rec, TrafficRecord) else TrafficRecord(**dict(rec))
    if not r.model or not r.request_id or r.version in (None, ""):
        raise InvalidInputError("A traffic record needs model, version and request_id.")
    if not isinstance(r.features, Mapping):
        raise InvalidInputError(f"The features of a traffic record must be an object. Got {type(r.features).__name__}.")
    ts = r.ts or now
    if ts.tzinfo is None:
        raise InvalidInputError("A traffic record's ts must be timezone-aware (UTC).")
    return {
        "ts": ts.astimezone(UTC),
        "model": r.model,
        "version": str(r.version),
        "request_id": str(r.request_id),
        "features": _json(dict(r.features), "features"),
        "prediction": _json(r.prediction, "prediction"),
        "score": None if r.score is None else float(r.score),
        "label": None if r.label is None else _json(r.label, "label"),
        "labeled_at": None if r.label is None else now,
        "latency_ms": r.latency_ms,
    }


def record_predictions(
    db: MetadataDB, records: Iterable[TrafficRecord | Mapping[str, Any]], *, conn: sa.Connection | None = None
) -> int:
    """Store served predictions; records whose (model, request_id) exists are skipped.

    Args:
        db: The metadata database.
        records: :class:`TrafficRecord` objects or dicts with the same fields.
        conn: Insert inside the caller's transaction.

    Returns:
        The number of records given (duplicates included; they are ignored, not errors).
    """
    now = datetime.now(UTC)
    rows = [_row(r, now) for r in records]
    if not rows:
        return 0
    if db.dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    stmt = dialect_insert(served_predictions).on_conflict_do_nothing(index_elements=["model", "request_id"])
    if conn is not None:
        conn.execute(stmt, rows)
    else:
        with db.begin() as own:
            own.execute(stmt, rows)
    return len(rows)


def attach_labels(db: MetadataDB, audit: AuditLog, model: str, labels: Mapping[str, Any], *, actor: str) -> int:
    """Attach true labels to served predictions by request id (audited once per call).

    Returns:
        How many recorded predictions received a label.
    """
    if not labels:
        return 0
    now = datetime.now(UTC)
    stmt = (
        served_predictions.update()
        .where(served_predictions.c.model == sa.bindparam("m"), served_predictions.c.request_id == sa.bindparam("rid"))
        .values(label=sa.bindparam("lbl"), labeled_at=sa.bindparam("at"))
    )
    params = [{"m": model, "rid": str(rid), "lbl": _json(lbl, "label"), "at": now} for rid, lbl in labels.items()]
    with db.begin() as conn:
        known = set(
            conn.execute(
                sa.select(served_predictions.c.request_id).where(
                    served_predictions.c.model == model, served_predictions.c.request_id.in_([p["rid"] for p in params])
                )
            ).scalars()
        )
        todo = [p for p in params if p["rid"] in known]
        if todo:
            conn.execute(stmt, todo)
        audit.append(
            actor,
            "monitor.labels.attach",
            f"model:{model}",
            details={"given": len(params), "attached": len(todo)},
            conn=conn,
        )
    return len(todo)


def _rows(db: MetadataDB, model: str, window: Window, version: str | None, limit: int | None) -> Sequence[Any]:
    q = (
        sa.select(served_predictions)
        .where(
            served_predictions.c.model == model,
            served_predictions.c.ts >= window.start,
            served_predictions.c.ts < window.end,
        )
        .order_by(served_predictions.c.ts)
    )
    if version is not None:
        q = q.where(served_predictions.c.version == str(version))
    if limit:
        q = q.limit(limit)
    with db.engine.connect() as conn:
        return conn.execute(q).all()


def _scalar(value: Any) -> Any:
    """A JSON value as a drift-checkable scalar (containers become their JSON text)."""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value


def traffic_frame(
    db: MetadataDB, model: str, window: Window, *, version: str | None = None, limit: int | None = None
) -> pd.DataFrame:
    """One window of served traffic: a column per feature, then prediction, score, label,
    version, request_id and ts."""
    import pandas as pd

    rows = _rows(db, model, window, version, limit)
    records = []
    for r in rows:
        rec = {k: _scalar(v) for k, v in json.loads(r.features).items()}
        rec["prediction"] = _scalar(json.loads(r.prediction))
        rec["score"] = r.score
        rec["label"] = None if r.label is None else _scalar(json.loads(r.label))
        rec["version"] = r.version
        rec["request_id"] = r.request_id
        rec["ts"] = r.ts
        records.append(rec)
    return pd.DataFrame.from_records(records)


def prediction_drift(
    db: MetadataDB,
    model: str,
    reference: Window,
    current: Window,
    *,
    version: str | None = None,
    drift_share: float = 0.5,
) -> DriftReport:
    """Drift of the model's predictions (and scores, when recorded) between two windows.

    Raises:
        InvalidInputError: a window holds no traffic of the model.
    """
    from aiw.mlops.monitoring.drift import DataDriftDetector

    ref = traffic_frame(db, model, reference, version=version)
    cur = traffic_frame(db, model, current, version=version)
    for name, frame, w in (("reference", ref, reference), ("current", cur, current)):
        if frame.empty:
            raise InvalidInputError(
                f"No served traffic of {model!r} in the {name} window {w.label()}.",
                hint="pick windows with traffic, or record predictions first",
            )
    cols = ["prediction"] + (["score"] if ref["score"].notna().any() and cur["score"].notna().any() else [])
    det = DataDriftDetector(columns=cols, drift_share=drift_share).fit(ref[cols])
    report = det.score(cur[cols])
    report.subject = f"model:{model}:predictions"
    return report


@dataclass
class WindowPerformance:
    """Quality over one window's labelled predictions."""

    window: str
    served: int
    labelled: int
    accuracy: float | None
    auc: float | None


@dataclass
class PerformanceReport:
    """Accuracy and AUC in the reference and current windows, and their drop."""

    model: str
    reference: WindowPerformance
    current: WindowPerformance
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    kind: str = "performance"

    @property
    def subject(self) -> str:
        """``model:NAME``."""
        return f"model:{self.model}"

    @property
    def accuracy_drop(self) -> float | None:
        """Reference accuracy minus current accuracy (positive: worse now)."""
        if self.reference.accuracy is None or self.current.accuracy is None:
            return None
        return self.reference.accuracy - self.current.accuracy

    @property
    def auc_drop(self) -> float | None:
        """Reference AUC minus current AUC (positive: worse now)."""
        if self.reference.auc is None or self.current.auc is None:
            return None
        return self.reference.auc - self.current.auc

    def summary(self) -> dict[str, Any]:
        """Figures for alert rules."""
        return {
            "subject": self.subject,
            "kind": self.kind,
            "accuracy": self.current.accuracy,
            "auc": self.current.auc,
            "accuracy_drop": self.accuracy_drop,
            "auc_drop": self.auc_drop,
            "labelled": self.current.labelled,
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {
            "kind": self.kind,
            "subject": self.subject,
            "model": self.model,
            "created_at": self.created_at,
            "reference": asdict(self.reference),
            "current": asdict(self.current),
            "accuracy_drop": self.accuracy_drop,
            "auc_drop": self.auc_drop,
        }


def _norm_label(value: Any) -> str:
    """Labels and predictions compared by value: True == 1 == 1.0 == "1"."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value)


def _window_performance(rows: Sequence[Any], window: Window) -> WindowPerformance:
    labelled = [r for r in rows if r.label is not None]
    if not labelled:
        return WindowPerformance(window.label(), len(rows), 0, None, None)
    truth = [_norm_label(json.loads(r.label)) for r in labelled]
    preds = [_norm_label(json.loads(r.prediction)) for r in labelled]
    accuracy = sum(t == p for t, p in zip(truth, preds, strict=True)) / len(labelled)
    auc = None
    scored = [(t, r.score) for t, r in zip(truth, labelled, strict=True) if r.score is not None]
    classes = sorted({t for t, _ in scored})
    if len(classes) == 2:
        from sklearn.metrics import roc_auc_score

        positive = "1" if "1" in classes else classes[-1]
        auc = float(roc_auc_score([t == positive for t, _ in scored], [s for _, s in scored]))
    return WindowPerformance(window.label(), len(rows), len(labelled), accuracy, auc)


def performance_drift(
    db: MetadataDB, model: str, reference: Window, current: Window, *, version: str | None = None
) -> PerformanceReport:
    """Accuracy (prediction == label) and ROC AUC (score vs a binary label) per window.

    Windows without labels report None for both; the drops are None unless both sides have them.
    """
    ref_rows = _rows(db, model, reference, version, None)
    cur_rows = _rows(db, model, current, version, None)
    return PerformanceReport(model, _window_performance(ref_rows, reference), _window_performance(cur_rows, current))
