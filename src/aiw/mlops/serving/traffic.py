"""The serving side of the served-traffic store: what each model version was asked and answered.

Scorers call :meth:`TrafficRecorder.record` (an append to an in-memory queue, microseconds); a
background thread writes the queue in batches to ``served_predictions``, the one traffic store
that drift monitoring reads (:mod:`aiw.mlops.monitoring.traffic`), and trims it to the newest
``serving.traffic_rows`` rows per model. Each request keeps up to ``serving.traffic_sample_rows``
input rows, one stored row each with its prediction, positive-class score, latency, the version
that answered and a request id (``<id>`` for the first row, ``<id>:<i>`` for the others) under
which labels can be attached later. If writing falls behind, the oldest queued requests are
dropped (and counted) rather than slowing requests down.
"""

from __future__ import annotations

import logging
import math
import threading
import uuid
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiw.errors import InvalidInputError
from aiw.mlops.monitoring.traffic import (
    TrafficRecord,
    recent_predictions,
    record_predictions,
    traffic_frame,
    trim_traffic,
)

if TYPE_CHECKING:
    import pandas as pd

    from aiw.db import MetadataDB
    from aiw.mlops.serving.inputs import ColumnBatch
    from aiw.mlops.serving.predictor import Prediction
    from aiw.settings import ServingSettings

__all__ = ["TrafficRecorder", "row_request_id"]

_log = logging.getLogger(__name__)
_QUEUE = 50_000


def _finite(value: Any) -> Any:
    """NaN and infinities (a model may be served missing values) are stored as JSON null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def row_request_id(request_id: str, row: int) -> str:
    """The stored request id of row ``row`` of a served request (labels are attached by it)."""
    return request_id if row == 0 else f"{request_id}:{row}"


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

    def record(
        self,
        model: str,
        version: int,
        alias: str | None,
        batch: ColumnBatch,
        prediction: Prediction,
        latency_s: float,
        *,
        source: str = "rest",
        request_id: str | None = None,
        row_ids: Sequence[str] | None = None,
    ) -> str | None:
        """Queue one served request (cheap: the JSON is built later, off the request path).

        Args:
            request_id: The request's id (a new one when omitted); its rows are stored as
                :func:`row_request_id` of it, up to ``serving.traffic_sample_rows`` of them.
            row_ids: Instead, one id per row, for rows that are requests of their own (streamed
                records): every row is kept under its own id, so that labels can be attached to it
                and a redelivered record is not stored twice.

        Returns:
            The request id it is stored under, or None when nothing is kept (or ``row_ids`` is given).
        """
        if not self.enabled:
            return None
        if row_ids is not None and len(row_ids) != batch.rows:
            raise InvalidInputError(f"record() needs one row id per row: {len(row_ids)} ids for {batch.rows} rows.")
        rid: str | list[str] = list(row_ids) if row_ids is not None else request_id or uuid.uuid4().hex
        n = batch.rows if row_ids is not None else self.settings.traffic_sample_rows
        cols = {k: v[:n] for k, v in batch.columns.items()}
        score = prediction.score
        entry = (
            datetime.now(UTC),
            model,
            int(version),
            alias,
            rid,
            latency_s * 1000.0,
            cols,
            prediction.predictions[:n],
            None if score is None else score[:n],
            source,
        )
        with self._lock:
            if len(self._queue) >= _QUEUE:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(entry)
        if self._thread is None:
            self._start()
        return rid if isinstance(rid, str) else None

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
        """Write everything queued now and trim the store; returns the requests written."""
        with self._flush_lock:
            with self._lock:
                entries = list(self._queue)
                self._queue.clear()
            if not entries:
                return 0
            records = []
            for ts, model, version, alias, rid, latency_ms, cols, preds, scores, source in entries:
                names = list(cols)
                lists = [cols[k].tolist() for k in names]
                pred_list = preds.tolist()
                score_list = None if scores is None else scores.tolist()
                for i, values in enumerate(zip(*lists, strict=True)):
                    records.append(
                        TrafficRecord(
                            model=model,
                            version=str(version),
                            request_id=rid[i] if isinstance(rid, list) else row_request_id(rid, i),
                            features={k: _finite(v) for k, v in zip(names, values, strict=True)},
                            prediction=_finite(pred_list[i]) if i < len(pred_list) else None,
                            ts=ts,
                            score=None if score_list is None or i >= len(score_list) else _finite(score_list[i]),
                            latency_ms=latency_ms,
                            alias=alias,
                            source=source,
                        )
                    )
            with self.db.begin() as conn:
                record_predictions(self.db, records, conn=conn)
                for model in {e[1] for e in entries}:
                    trim_traffic(conn, model, self.settings.traffic_rows)
            return len(entries)

    def close(self) -> None:
        """Stop the writer and write what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()

    # -- reading -------------------------------------------------------------------------------
    def recent(self, model: str, *, version: int | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """The newest stored rows of ``model`` (optionally one version), newest first."""
        if not 1 <= limit <= 1_000_000:
            raise InvalidInputError(f"The 'limit' parameter must be in [1, 1000000]. Got {limit}.")
        return recent_predictions(self.db, model, version=version, limit=limit)

    def frame(self, model: str, *, version: int | None = None, limit: int = 1000) -> pd.DataFrame:
        """The newest ``limit`` stored rows of ``model`` as a DataFrame, oldest first: one column per
        feature, then prediction, score, label, version, request_id and ts (a drift check's data)."""
        if not 1 <= limit <= 1_000_000:
            raise InvalidInputError(f"The 'limit' parameter must be in [1, 1000000]. Got {limit}.")
        return traffic_frame(self.db, model, None, version=None if version is None else str(version), limit=limit)

    def __repr__(self) -> str:
        return f"TrafficRecorder(queued={len(self._queue)}, dropped={self.dropped})"
