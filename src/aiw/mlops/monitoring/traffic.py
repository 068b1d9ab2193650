"""Served traffic: what the serving layer records, and drift over windows of it.

``served_predictions`` is the one store of served traffic. The serving layer (REST and stream,
through :class:`aiw.mlops.serving.TrafficRecorder`) writes it with :func:`record_predictions`, one
row per prediction (a retried request with the same ``request_id`` is not recorded twice), and
keeps it bounded per model with :func:`trim_traffic`; whoever learns the truth later calls
:func:`attach_labels` with the request ids the server answered with.

* :func:`prediction_drift` - data drift of the predictions (and scores) between two windows;
* :func:`performance_drift` - accuracy and ROC AUC per window over the labelled rows, and how
  much they dropped;
* :func:`traffic_frame` - one window (or the newest rows) as a DataFrame (features, prediction,
  score, label) for feature drift; :func:`recent_predictions` - the newest rows as records.

Recording predictions is telemetry, not a change of platform state, so it is not audited row
by row; attaching labels is (one audit record per call).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from aiw.db import MetadataDB
from aiw.db.schema import served_predictions
from aiw.errors import InvalidInputError, NotFoundError
from aiw.governance.audit import AuditLog

if TYPE_CHECKING:
    import pandas as pd

    from aiw.mlops.monitoring.drift import DriftReport

__all__ = [
    "PerformanceReport",
    "TrafficRecord",
    "Window",
    "attach_labels",
    "load_labels",
    "performance_drift",
    "prediction_drift",
    "recent_predictions",
    "record_predictions",
    "traffic_frame",
    "traffic_windows",
    "trim_traffic",
]


_SOURCES = ("rest", "stream", "batch")


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
        alias: The alias the caller asked for (``champion``), when it asked for one.
        source: Where it was served: ``rest``, ``stream`` or ``batch``.
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
    alias: str | None = None
    source: str = "rest"


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
    if r.source not in _SOURCES:
        raise InvalidInputError(f"A traffic record's source must be one of {', '.join(_SOURCES)}. Got {r.source!r}.")
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
        "alias": r.alias,
        "source": r.source,
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
    for rid, lbl in labels.items():
        if not isinstance(lbl, str | int | float | bool) or (isinstance(lbl, float) and not math.isfinite(lbl)):
            raise InvalidInputError(
                f"The label of request {rid!r} must be a string, number or boolean. Got {lbl!r}.",
                hint="send one class label (or target value) per request id",
            )
    params = [{"m": model, "rid": str(rid), "lbl": _json(lbl, "label"), "at": now} for rid, lbl in labels.items()]
    ids = [p["rid"] for p in params]
    with db.begin() as conn:
        known: set[str] = set()
        for i in range(0, len(ids), 5_000):  # stay under the databases' bound-parameter limits
            known.update(
                conn.execute(
                    sa.select(served_predictions.c.request_id).where(
                        served_predictions.c.model == model, served_predictions.c.request_id.in_(ids[i : i + 5_000])
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


def load_labels(path: str | Path) -> dict[str, Any]:
    """Read true labels from a file: CSV with ``request_id`` and ``label`` columns, JSON (an object
    ``{request_id: label}`` or a list of ``{"request_id", "label"}`` records) or JSON Lines.

    Raises:
        NotFoundError: the file does not exist.
        InvalidInputError: the format is unknown, or a record lacks ``request_id`` or ``label``.
    """
    import csv

    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"No labels file at {p}", hint="give a .csv, .json or .jsonl file")
    suffix = p.suffix.lower()
    where = f"{p.name}"
    try:
        if suffix == ".csv":
            with p.open(newline="", encoding="utf-8") as fh:
                records: list[Any] = list(csv.DictReader(fh))
        elif suffix == ".json":
            data = json.loads(p.read_text(encoding="utf-8"))
            if isinstance(data, dict):
                return {str(k): v for k, v in data.items()}
            records = data if isinstance(data, list) else []
        elif suffix == ".jsonl":
            records = [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
        else:
            raise InvalidInputError(f"{where}: unknown labels format {suffix!r}", hint="use .csv, .json or .jsonl")
    except (UnicodeDecodeError, json.JSONDecodeError, csv.Error) as exc:
        raise InvalidInputError(f"{where} is not valid {suffix[1:].upper()}: {exc}") from exc
    labels: dict[str, Any] = {}
    for i, rec in enumerate(records):
        if not isinstance(rec, Mapping) or rec.get("request_id") in (None, "") or "label" not in rec:
            raise InvalidInputError(
                f"{where}: record {i} needs 'request_id' and 'label'. Got {rec!r:.200}",
                hint="a CSV header 'request_id,label', or JSON records with those keys",
            )
        labels[str(rec["request_id"])] = rec["label"]
    if not labels:
        raise InvalidInputError(f"{where} holds no labels")
    return labels


def trim_traffic(conn: sa.Connection, model: str, keep: int) -> int:
    """Delete all but the newest ``keep`` served rows of ``model`` (inside the caller's transaction).

    Returns:
        How many rows were deleted.
    """
    if keep < 0:
        raise InvalidInputError(f"The 'keep' parameter must be >= 0. Got {keep}.")
    t = served_predictions
    cutoff = conn.execute(
        sa.select(t.c.id).where(t.c.model == model).order_by(t.c.id.desc()).offset(keep).limit(1)
    ).scalar()
    if cutoff is None:
        return 0
    return int(conn.execute(t.delete().where(t.c.model == model, t.c.id <= cutoff)).rowcount or 0)


def _rows(db: MetadataDB, model: str, window: Window | None, version: str | None, limit: int | None) -> Sequence[Any]:
    """Rows of ``model`` in ``window``, oldest first; without a window, the newest ``limit`` rows."""
    t = served_predictions
    q = sa.select(t).where(t.c.model == model)
    if version is not None:
        q = q.where(t.c.version == str(version))
    if window is None:
        if not limit or not 1 <= limit <= 10_000_000:
            raise InvalidInputError(f"Reading the newest traffic needs a limit in [1, 10000000]. Got {limit!r}.")
        with db.engine.connect() as conn:
            return list(reversed(conn.execute(q.order_by(t.c.id.desc()).limit(limit)).all()))
    q = q.where(t.c.ts >= window.start, t.c.ts < window.end).order_by(t.c.ts, t.c.id)
    if limit:
        q = q.limit(limit)
    with db.engine.connect() as conn:
        return conn.execute(q).all()


def recent_predictions(
    db: MetadataDB, model: str, *, version: str | int | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The newest served predictions of ``model`` (optionally one version), newest first, as
    JSON-ready records: ts, version, alias, source, request_id, features, prediction, score,
    label, latency_ms."""
    rows = _rows(db, model, None, None if version is None else str(version), limit)
    return [
        {
            "ts": _utc(r.ts).isoformat(),
            "version": r.version,
            "alias": r.alias,
            "source": r.source,
            "request_id": r.request_id,
            "features": json.loads(r.features),
            "prediction": json.loads(r.prediction),
            "score": r.score,
            "label": None if r.label is None else json.loads(r.label),
            "latency_ms": r.latency_ms,
        }
        for r in reversed(rows)
    ]


def _utc(ts: datetime) -> datetime:
    """SQLite gives naive datetimes back: they were stored in UTC."""
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _scalar(value: Any) -> Any:
    """A JSON value as a drift-checkable scalar (containers become their JSON text)."""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value


def traffic_frame(
    db: MetadataDB, model: str, window: Window | None, *, version: str | None = None, limit: int | None = None
) -> pd.DataFrame:
    """One window of served traffic (``window=None``: the newest ``limit`` rows), oldest first: a
    column per feature, then prediction, score, label, version, request_id and ts."""
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
