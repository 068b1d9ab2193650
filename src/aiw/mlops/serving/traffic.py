"""The served-traffic store: what each model version was asked and answered, bounded, for drift.

Scorers call :meth:`TrafficRecorder.record` (an append to an in-memory queue, microseconds); a
background thread writes the queue to ``mlops_prediction_log`` in batches and trims the table to
the newest ``serving.traffic_rows`` requests per model. Each record keeps up to
``serving.traffic_sample_rows`` input rows, their predictions and positive-class scores, the
latency and the version that answered. If writing falls behind, the oldest queued records are
dropped (and counted) rather than slowing requests down.

Drift monitoring reads it back with :meth:`TrafficRecorder.frame` (one row per logged input row).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from aiw.db.schema import mlops_prediction_log
from aiw.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

    from aiw.db import MetadataDB
    from aiw.mlops.serving.inputs import ColumnBatch
    from aiw.mlops.serving.predictor import Prediction
    from aiw.settings import ServingSettings

__all__ = ["TrafficRecord", "TrafficRecorder"]

_log = logging.getLogger(__name__)
_QUEUE = 50_000


@dataclass(frozen=True)
class TrafficRecord:
    """One logged request."""

    id: int
    ts: str
    model: str
    version: int
    alias: str | None
    rows: int
    latency_ms: float
    inputs: list[dict[str, Any]]
    predictions: list[Any]
    scores: list[float] | None
    source: str


class TrafficRecorder:
    """Queue served requests and write them, bounded per model, to the metadata database.

    Args:
        db: The metadata database.
        settings: The serving settings (``traffic_rows``, ``traffic_sample_rows``).
        flush_interval_s: Seconds between background writes (short: many small writes pause
            requests less than a few large ones).
    """

    def __init__(self, db: MetadataDB, settings: ServingSettings, *, flush_interval_s: float = 0.25) -> None:
        if flush_interval_s <= 0:
            raise InvalidInputError(f"The 'flush_interval_s' parameter must be > 0. Got {flush_interval_s}.")
        self.db = db
        self.settings = settings
        self.flush_interval_s = flush_interval_s
        self.dropped = 0
        self._queue: deque[tuple[Any, ...]] = deque()
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        """Whether anything is kept (``serving.traffic_rows`` > 0)."""
        return self.settings.traffic_rows > 0

    def record(self, model: str, version: int, alias: str | None, batch: ColumnBatch, prediction: Prediction,
               latency_s: float, *, source: str = "rest") -> None:
        """Queue one served request (cheap: the JSON is built later, off the request path)."""
        if not self.enabled:
            return
        n = self.settings.traffic_sample_rows
        cols = {k: v[:n] for k, v in batch.columns.items()}
        score = prediction.score
        entry = (datetime.now(UTC).isoformat(timespec="microseconds"), model, int(version), alias, batch.rows,
                 latency_s * 1000.0, cols, prediction.predictions[:n], None if score is None else score[:n], source)
        with self._lock:
            if len(self._queue) >= _QUEUE:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(entry)
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="aiw-traffic", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            try:
                self.flush()
            except Exception:  # keep serving; the next flush retries what is still queued
                _log.exception("writing served traffic failed")

    def flush(self) -> int:
        """Write everything queued now and trim the table; returns the records written."""
        with self._flush_lock:
            with self._lock:
                entries = list(self._queue)
                self._queue.clear()
            if not entries:
                return 0
            rows = []
            for ts, model, version, alias, n_rows, latency_ms, cols, preds, scores, source in entries:
                names = list(cols)
                lists = [cols[k].tolist() for k in names]
                sample = [dict(zip(names, values, strict=True)) for values in zip(*lists, strict=True)]
                outputs = {"predictions": preds.tolist(), "scores": None if scores is None else scores.tolist()}
                rows.append({"ts": ts, "model_name": model, "version": version, "alias": alias, "rows": n_rows,
                             "latency_ms": latency_ms, "inputs": json.dumps(sample, default=str),
                             "outputs": json.dumps(outputs, default=str), "source": source})
            t = mlops_prediction_log
            with self.db.begin() as conn:
                conn.execute(t.insert(), rows)
                for model in {r["model_name"] for r in rows}:
                    cutoff = conn.execute(sa.select(t.c.id).where(t.c.model_name == model).order_by(t.c.id.desc())
                                          .offset(self.settings.traffic_rows).limit(1)).scalar()
                    if cutoff is not None:
                        conn.execute(t.delete().where((t.c.model_name == model) & (t.c.id <= cutoff)))
            return len(rows)

    def close(self) -> None:
        """Stop the writer and write what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()

    # -- reading -------------------------------------------------------------------------------
    def recent(self, model: str, *, version: int | None = None, limit: int = 1000) -> list[TrafficRecord]:
        """The newest logged requests of ``model`` (optionally one version), newest first."""
        if not 1 <= limit <= 1_000_000:
            raise InvalidInputError(f"The 'limit' parameter must be in [1, 1000000]. Got {limit}.")
        t = mlops_prediction_log
        query = sa.select(t).where(t.c.model_name == model)
        if version is not None:
            query = query.where(t.c.version == int(version))
        with self.db.engine.connect() as conn:
            rows = conn.execute(query.order_by(t.c.id.desc()).limit(limit)).all()
        out = []
        for r in rows:
            outputs = json.loads(r.outputs)
            out.append(TrafficRecord(int(r.id), r.ts, r.model_name, int(r.version), r.alias, int(r.rows),
                                     float(r.latency_ms), json.loads(r.inputs), outputs.get("predictions") or [],
                                     outputs.get("scores"), r.source))
        return out

    def frame(self, model: str, *, version: int | None = None, limit: int = 1000) -> pd.DataFrame:
        """Logged input rows of ``model`` as a DataFrame (oldest first), with ``_prediction``,
        ``_score``, ``_version`` and ``_ts`` columns: the "current" data of a drift check."""
        import pandas as pd

        records = []
        for rec in reversed(self.recent(model, version=version, limit=limit)):
            for i, row in enumerate(rec.inputs):
                records.append({**row, "_prediction": rec.predictions[i] if i < len(rec.predictions) else None,
                                "_score": rec.scores[i] if rec.scores and i < len(rec.scores) else None,
                                "_version": rec.version, "_ts": rec.ts})
        return pd.DataFrame.from_records(records)

    def __repr__(self) -> str:
        return f"TrafficRecorder(queued={len(self._queue)}, dropped={self.dropped})"
