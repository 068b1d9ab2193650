"""Real-time scoring, framework-free: the REST route hands bytes in and gets bytes out.

:class:`ModelServer` resolves the model (from the in-memory caches when it can: no database or
MLflow call on the hot path), parses and checks the payload, scores it, counts it in Prometheus
and queues it for the traffic store. Small requests on the ONNX runtime are scored on the event
loop (tens of microseconds); large ones, loads and the scikit-learn runtime run in a thread pool
so that one slow request never stalls the others. Refusals (unknown model, bad payload, oversized
body, failed checksum) are audited with outcome ``denied``.
"""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from aiw.errors import AiwError, IntegrityError, InvalidInputError, NotFoundError
from aiw.mlops.serving.inputs import ColumnBatch, parse_payload
from aiw.mlops.serving.loader import LoadedModel, ModelResolver
from aiw.mlops.serving.metrics import serving_metrics
from aiw.mlops.serving.predictor import Prediction
from aiw.mlops.serving.traffic import TrafficRecorder

if TYPE_CHECKING:
    from aiw.governance.identity import Principal
    from aiw.mlops.rollout.router import RolloutRouter
    from aiw.workspace import Workspace

__all__ = ["ModelServer", "PayloadTooLarge", "encode_response"]

_INLINE_ROWS = 64  # ONNX scores this many rows in well under a millisecond: not worth a thread hop
_INLINE_BYTES = 64 * 1024


class PayloadTooLarge(InvalidInputError):
    """A scoring request body over ``serving.max_body_bytes`` (answered with HTTP 413)."""


def encode_response(loaded: LoadedModel, alias: str | None, prediction: Prediction) -> bytes:
    """The JSON answer: predictions, probabilities per class, and what served them."""
    body: dict[str, Any] = {"model": loaded.name, "version": loaded.version, "alias": alias,
                            "runtime": loaded.runtime, "predictions": prediction.predictions.tolist()}
    if prediction.probabilities is not None:
        body["classes"] = list(prediction.classes)
        body["probabilities"] = prediction.probabilities.tolist()
    return json.dumps(body, separators=(",", ":")).encode()


class ModelServer:
    """Score requests for any governed model of a workspace.

    Args:
        workspace: The workspace.
        resolver: The model resolver (one is made from the workspace's serving settings if omitted).
        traffic: The traffic store (one is made if omitted).
        rollouts: The canary/shadow router (one is made if omitted; see :mod:`aiw.mlops.rollout`).
    """

    def __init__(self, workspace: Workspace, *, resolver: ModelResolver | None = None,
                 traffic: TrafficRecorder | None = None, rollouts: RolloutRouter | None = None) -> None:
        self.workspace = workspace
        self.settings = workspace.settings.serving
        self.resolver = resolver or ModelResolver(workspace, self.settings)
        self.traffic = traffic or TrafficRecorder(workspace.db, self.settings)
        self.metrics = serving_metrics()
        self.executor = ThreadPoolExecutor(max_workers=self.settings.threads, thread_name_prefix="aiw-score")
        self.max_body_bytes = min(self.settings.max_body_bytes, workspace.settings.api.max_body_bytes)
        if rollouts is None:
            from aiw.mlops.rollout.router import RolloutRouter

            rollouts = RolloutRouter(workspace, self.resolver)
        self.rollouts = rollouts

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def predict(self, name: str, ref: str | int | None, body: bytes, principal: Principal) -> bytes:
        """Score one request body for ``name`` at ``ref`` (alias or version; default ``champion``).

        Returns:
            The JSON response body.

        Raises:
            PayloadTooLarge: the body is over the limit.
            NotFoundError: unknown model, version or alias.
            InvalidInputError: the payload is malformed or does not match the signature.
            IntegrityError: the version failed its checksums.
        """
        started = time.perf_counter()
        alias = ref if isinstance(ref, str) and ref and not ref.isdigit() else None
        if alias is None and ref in (None, ""):
            alias = "champion"
        version: int | None = None
        route = self.rollouts.route(name, ref)  # None unless a canary/shadow of `name` is live
        if route is not None:
            ref = route.ref
        try:
            if len(body) > self.max_body_bytes:
                raise PayloadTooLarge(f"The request body is {len(body)} bytes; the limit is {self.max_body_bytes}",
                                      hint="send fewer rows per request, or score a table with 'aiw models score'")
            loaded = self.resolver.cached(name, ref)
            if loaded is None:
                loaded, version = await self._run(self.resolver.resolve, name, ref)
            version = loaded.version
            inline = loaded.runtime == "onnx" and len(body) <= _INLINE_BYTES
            if inline:
                batch = parse_payload(body, loaded.schema, max_rows=self.settings.max_rows)
            else:
                batch = await self._run(self._parse, body, loaded)
            if inline and batch.rows <= _INLINE_ROWS:
                prediction = loaded.predictor.predict(batch)
            else:
                prediction = await self._run(loaded.predictor.predict, batch)
        except AiwError as exc:
            if route is not None:
                route.failed(exc)
            await self._refused(name, ref, version, exc, principal)
            raise
        except Exception as exc:  # the model itself failed: the rollout must see it
            if route is not None:
                route.failed(exc)
            raise
        out = encode_response(loaded, alias, prediction)
        elapsed = time.perf_counter() - started
        self.metrics.observe(name, loaded.version, elapsed, prediction.predictions, prediction.score)
        self.traffic.record(name, loaded.version, alias, batch, prediction, elapsed, source="rest")
        if route is not None:
            route.done(elapsed, prediction, batch)
        return out

    def _parse(self, body: bytes, loaded: LoadedModel) -> ColumnBatch:
        return parse_payload(body, loaded.schema, max_rows=self.settings.max_rows)

    async def _refused(self, name: str, ref: str | int | None, version: int | None, exc: AiwError,
                       principal: Principal) -> None:
        kind = {PayloadTooLarge: "payload_too_large", NotFoundError: "not_found", IntegrityError: "integrity"}.get(
            type(exc), "invalid_input" if isinstance(exc, InvalidInputError) else type(exc).__name__.lower())
        self.metrics.error(name, version, kind)
        if isinstance(exc, IntegrityError):
            return  # the registry audited the failed check itself (once per alias_ttl_s)
        target = f"model:{name}/{version}" if version is not None else f"model:{name}@{ref or 'champion'}"
        await self._run(lambda: self.workspace.audit.append(
            principal.name, "models.predict", target, outcome="denied",
            details={"reason": exc.message[:1000], "kind": kind, "role": principal.role}))

    def warm(self, name: str, ref: str | int | None = None) -> LoadedModel:
        """Load ``name`` at ``ref`` now (e.g. at start-up), so the first request does not wait."""
        return self.resolver.resolve(name, ref)[0]

    def close(self) -> None:
        """Write the queued traffic, stop the threads and drop the caches."""
        self.rollouts.close()
        self.traffic.close()
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.resolver.close()
