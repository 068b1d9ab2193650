"""Streaming scoring over NATS JetStream: subject in, subject out, at least once, idempotent.

:class:`StreamScorer` pulls JSON records from a durable JetStream consumer on the input subject,
scores them in micro-batches and publishes one result per record to the output subject. Delivery
is at least once: an input message is acknowledged only after its result was published and
JetStream confirmed it; a crash before that makes JetStream redeliver it (after ``ack_wait_s``).
Results are idempotent: each is published with the header ``Nats-Msg-Id`` set to the input's id,
so JetStream drops a re-published result within the output stream's duplicate window. A restart
therefore loses nothing and duplicates nothing.

Input records are JSON objects: the model's input columns plus an optional ``id`` (else the
message's ``Nats-Msg-Id`` header, else its stream and sequence). Results read::

    {"id": "c-17", "model": "claims-fraud", "version": 3, "prediction": 0, "score": 0.04,
     "probabilities": [0.96, 0.04]}

A record that cannot be scored (not JSON, a missing or mistyped column) gets a result with an
``error`` field instead, and is acknowledged: redelivering it would fail the same way.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiw.errors import AiwError, BackendError, InvalidInputError, ModelError, TransientBackendError

if TYPE_CHECKING:
    from aiw.governance.identity import Principal
    from aiw.mlops.serving.loader import ModelResolver
    from aiw.mlops.serving.traffic import TrafficRecorder
    from aiw.workspace import Workspace

__all__ = ["StreamScorer", "StreamStats", "stream_name_for"]

_SUBJECT = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")


def stream_name_for(subject: str) -> str:
    """The JetStream stream name this module creates for ``subject`` when none captures it."""
    return "AIW_" + re.sub(r"[^A-Za-z0-9_]", "_", subject).upper()


@dataclass
class StreamStats:
    """What one :meth:`StreamScorer.run` did."""

    received: int = 0
    scored: int = 0
    errors: int = 0
    duplicates: int = 0
    batches: int = 0
    seconds: float = 0.0

    @property
    def per_second(self) -> float:
        """Records handled per second."""
        return self.received / self.seconds if self.seconds > 0 else 0.0


class StreamScorer:
    """Score a JetStream subject into another, at least once and idempotently.

    Args:
        workspace: The workspace (its ``engine.nats_url`` is the server).
        name: The model.
        in_subject: Where records arrive.
        out_subject: Where results go.
        principal: Who runs the scorer (needs ``models:predict``).
        ref: Alias or version (default ``champion``); aliases are re-resolved as they move.
        batch: Most records scored together.
        ack_wait_s: Seconds before JetStream redelivers a record that was not acknowledged.
        durable: The consumer's durable name (default derived from model and subject): a restart
            with the same name continues where the last run stopped.
        resolver: A model resolver to share (one is made when omitted).
    """

    def __init__(
        self,
        workspace: Workspace,
        name: str,
        in_subject: str,
        out_subject: str,
        principal: Principal,
        *,
        ref: str | int | None = None,
        batch: int = 100,
        ack_wait_s: float = 30.0,
        durable: str | None = None,
        resolver: ModelResolver | None = None,
    ) -> None:
        for label, subject in (("input", in_subject), ("output", out_subject)):
            if not _SUBJECT.match(subject or ""):
                raise InvalidInputError(
                    f"The {label} subject must be dot-separated tokens of letters, digits, "
                    f"'_' or '-' (no wildcards). Got {subject!r}."
                )
        if in_subject == out_subject:
            raise InvalidInputError("The output subject must differ from the input subject.")
        if not 1 <= batch <= 10_000:
            raise InvalidInputError(f"The 'batch' parameter must be in [1, 10000]. Got {batch}.")
        if not 0.5 <= ack_wait_s <= 3600:
            raise InvalidInputError(f"The 'ack_wait_s' parameter must be in [0.5, 3600]. Got {ack_wait_s}.")
        principal.require("models:predict")
        self.workspace = workspace
        self.name = name
        self.in_subject = in_subject
        self.out_subject = out_subject
        self.principal = principal
        self.ref = ref
        self.batch = batch
        self.ack_wait_s = ack_wait_s
        self.durable = durable or re.sub(r"[^A-Za-z0-9_\-]", "_", f"aiw-{name}-{in_subject}")
        self._resolver = resolver
        self._traffic: TrafficRecorder | None = None

    def _model(self) -> Any:
        if self._resolver is None:
            from aiw.mlops.serving.loader import ModelResolver

            self._resolver = ModelResolver(self.workspace)
        return self._resolver.resolve(self.name, self.ref)[0]

    async def _ensure_stream(self, js: Any, subject: str) -> str:
        from nats.js.errors import NotFoundError as JsNotFound

        try:
            found: str = await js.find_stream_name_by_subject(subject)
            return found
        except JsNotFound:
            name = stream_name_for(subject)
            await js.add_stream(name=name, subjects=[subject], duplicate_window=120.0)
            return name

    async def run(
        self, *, max_messages: int | None = None, idle_timeout_s: float | None = None, stop: asyncio.Event | None = None
    ) -> StreamStats:
        """Consume and score until ``max_messages`` were handled, the stream was idle for
        ``idle_timeout_s`` seconds, or ``stop`` is set (whichever comes first; none: forever).

        Raises:
            TransientBackendError: NATS does not answer.
            NotFoundError, IntegrityError: the model cannot be resolved or loaded.
        """
        import nats
        from nats.js.api import AckPolicy, ConsumerConfig

        # Load first: a model that cannot be served must not consume anything.
        loaded = await asyncio.to_thread(self._model)
        url = self.workspace.settings.engine.nats_url
        try:
            nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=3)
        except Exception as exc:
            raise TransientBackendError(
                f"Cannot reach NATS at {url}: {exc}", hint="start nats-server with -js, or set AIW_ENGINE__NATS_URL"
            ) from exc
        stats = StreamStats()
        started = time.perf_counter()
        idle_since = time.monotonic()
        try:
            js = nc.jetstream()
            stream_in = await self._ensure_stream(js, self.in_subject)
            await self._ensure_stream(js, self.out_subject)
            config = ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT, ack_wait=self.ack_wait_s, max_ack_pending=max(1000, 4 * self.batch)
            )
            sub = await js.pull_subscribe(self.in_subject, durable=self.durable, stream=stream_in, config=config)
            while not (stop and stop.is_set()):
                want = self.batch if max_messages is None else min(self.batch, max_messages - stats.received)
                if want <= 0:
                    break
                try:
                    msgs = await sub.fetch(want, timeout=0.5)
                except (TimeoutError, nats.errors.TimeoutError):
                    msgs = []
                if not msgs:
                    if idle_timeout_s is not None and time.monotonic() - idle_since >= idle_timeout_s:
                        break
                    continue
                idle_since = time.monotonic()
                loaded = await asyncio.to_thread(self._model)  # picks up a moved alias (cached, cheap)
                await self._handle(js, msgs, loaded, stats)
        finally:
            stats.seconds = time.perf_counter() - started
            await nc.close()
        return stats

    async def _handle(self, js: Any, msgs: list[Any], loaded: Any, stats: StreamStats) -> None:
        import numpy as np

        from aiw.mlops.serving.inputs import ColumnBatch, parse_payload
        from aiw.mlops.serving.metrics import serving_metrics
        from aiw.mlops.serving.predictor import Prediction

        t0 = time.perf_counter()
        ids: list[str] = []
        results: list[dict[str, Any] | None] = []
        good: list[tuple[int, ColumnBatch]] = []
        for i, msg in enumerate(msgs):
            record: Any = None
            try:
                record = json.loads(msg.data)
                if not isinstance(record, dict):
                    raise InvalidInputError("a record must be a JSON object of column: value")
            except ValueError as exc:
                record = None
                results.append({"error": f"not a JSON object: {exc}"})
            rid = self._id(msg, record)
            ids.append(rid)
            if record is None:
                continue
            features = {k: v for k, v in record.items() if k != "id"}
            try:
                good.append((i, parse_payload({"dataframe_records": [features]}, loaded.schema, max_rows=1)))
                results.append(None)
            except AiwError as exc:
                results.append({"error": exc.message})
        stats.received += len(msgs)
        stats.batches += 1
        kinds: dict[int, str] = {}
        prediction: Any = None
        if good:
            names = loaded.schema.names

            def merge(parts: list[tuple[int, ColumnBatch]]) -> ColumnBatch:
                return ColumnBatch({n: np.concatenate([b.columns[n] for _, b in parts]) for n in names}, len(parts))

            merged = merge(good)
            try:
                prediction = loaded.score(merged)
            except ModelError:  # one record the model chokes on must not stop the stream: find it
                fine, alone = [], []
                for i, b in good:
                    try:
                        alone.append(loaded.score(b))
                        fine.append((i, b))
                    except ModelError as exc:
                        results[i], kinds[i] = {"error": exc.message, "error_type": exc.error_type}, "model_error"
                good, prediction = fine, None
                if good:  # the records scored one by one, put together (no third pass)
                    merged = merge(good)
                    prediction = Prediction(
                        np.concatenate([a.predictions for a in alone]),
                        None if alone[0].probabilities is None else np.concatenate([a.probabilities for a in alone]),
                        alone[0].classes,
                    )
        if good and prediction is not None:
            labels = prediction.predictions.tolist()
            proba = prediction.probabilities.tolist() if prediction.probabilities is not None else None
            score = prediction.score.tolist() if prediction.score is not None else None
            for j, (i, _) in enumerate(good):
                result: dict[str, Any] = {"prediction": labels[j]}
                if score is not None:
                    result["score"] = score[j]
                if proba is not None:
                    result["probabilities"] = proba[j]
                results[i] = result
            elapsed = time.perf_counter() - t0
            serving_metrics().observe(self.name, loaded.version, elapsed, prediction.predictions, prediction.score)
            if self._traffic is None:
                from aiw.mlops.serving.traffic import TrafficRecorder

                self._traffic = TrafficRecorder(self.workspace.db, self.workspace.settings.serving)
            self._traffic.record(
                self.name,
                loaded.version,
                self.ref if isinstance(self.ref, str) else None,
                merged,
                prediction,
                elapsed,
                source="stream",
                row_ids=[ids[i] for i, _ in good],  # each record under its own id: labels attach to it
            )
        publishes = []
        for i, (rid, outcome) in enumerate(zip(ids, results, strict=True)):
            body = {"id": rid, "model": self.name, "version": loaded.version, **(outcome or {})}
            if "error" in body:
                stats.errors += 1
                serving_metrics().error(self.name, loaded.version, kinds.get(i, "invalid_input"))
            else:
                stats.scored += 1
            publishes.append(
                js.publish(
                    self.out_subject,
                    json.dumps(body, separators=(",", ":")).encode(),
                    headers={"Nats-Msg-Id": rid},
                    timeout=10,
                )
            )
        try:
            acks = await asyncio.gather(*publishes)
        except Exception as exc:  # nothing is acknowledged: JetStream will redeliver the whole batch
            raise BackendError(
                f"Publishing results to {self.out_subject!r} failed: {exc}",
                hint="the inputs stay unacknowledged and will be redelivered",
            ) from exc
        stats.duplicates += sum(1 for a in acks if getattr(a, "duplicate", False))
        # Only now, with every result stored by JetStream, are the inputs acknowledged.
        await asyncio.gather(*(msg.ack() for msg in msgs))

    @staticmethod
    def _id(msg: Any, record: Any) -> str:
        if isinstance(record, dict) and record.get("id") not in (None, ""):
            return str(record["id"])
        header = (msg.headers or {}).get("Nats-Msg-Id")
        if header:
            return str(header)
        meta = msg.metadata
        return f"{meta.stream}:{meta.sequence.stream}"

    def close(self) -> None:
        """Write queued traffic and drop the model cache."""
        if self._traffic is not None:
            self._traffic.close()
        if self._resolver is not None:
            self._resolver.close()
