"""Real-time scoring, framework-free: the REST route hands bytes in and gets bytes out.

:class:`ModelServer` resolves the model (from the in-memory caches when it can: no database or
MLflow call on the hot path), parses and checks the payload, scores it, counts it in Prometheus
and queues it for the traffic store. Small requests on the ONNX runtime are scored on the event
loop (tens of microseconds); large ones, loads and the scikit-learn runtime run in a thread pool
so that one slow request never stalls the others. Refusals (unknown model, bad payload, oversized
body, failed checksum) are audited with outcome ``denied``.

A request may name entity keys instead of carrying features (``{"entities": {"claim_id": [17]}}``):
the model's input columns are then read from the online feature store
(:mod:`aiw.features.online`, imported on the first such request only), and the response says so.
A model that raises while scoring is answered with :class:`~aiw.errors.ModelError` (HTTP 500 in
the one error shape, naming the model, version and exception type), counted as ``model_error``
and logged with its traceback; the connection stays open.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from aiw.errors import AiwError, IntegrityError, InvalidInputError, ModelError, NotFoundError
from aiw.mlops.serving.inputs import ColumnBatch, EntityRequest, parse_request, rows_to_batch
from aiw.mlops.serving.loader import LoadedModel, ModelResolver
from aiw.mlops.serving.metrics import serving_metrics
from aiw.mlops.serving.predictor import Prediction
from aiw.mlops.serving.traffic import TrafficRecorder

if TYPE_CHECKING:
    from aiw.features.online import OnlineFeatureReader
    from aiw.governance.identity import Principal
    from aiw.mlops.rollout.router import RolloutRouter
    from aiw.workspace import Workspace

__all__ = ["ModelServer", "PayloadTooLarge", "encode_response"]

_INLINE_ROWS = 64  # ONNX scores this many rows in well under a millisecond: not worth a thread hop
_INLINE_BYTES = 64 * 1024


class PayloadTooLarge(InvalidInputError):
    """A scoring request body over ``serving.max_body_bytes`` (answered with HTTP 413)."""


def encode_response(
    loaded: LoadedModel,
    alias: str | None,
    prediction: Prediction,
    *,
    features: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> bytes:
    """The JSON answer: predictions, probabilities per class, what served them, the request id
    that true labels can later be attached by (``aiw monitor labels``; row ``i > 0`` of the
    request is ``<request_id>:<i>``) and, for a request by entity keys, where its features came
    from (``"features": {"source": "online_store", ...}``)."""
    body: dict[str, Any] = {
        "model": loaded.name,
        "version": loaded.version,
        "alias": alias,
        "runtime": loaded.runtime,
        "predictions": prediction.predictions.tolist(),
    }
    if request_id is not None:
        body["request_id"] = request_id
    if prediction.probabilities is not None:
        body["classes"] = list(prediction.classes)
        body["probabilities"] = prediction.probabilities.tolist()
    if features is not None:
        body["features"] = features
    return json.dumps(body, separators=(",", ":")).encode()


class ModelServer:
    """Score requests for any governed model of a workspace.

    Args:
        workspace: The workspace.
        resolver: The model resolver (one is made from the workspace's serving settings if omitted).
        traffic: The traffic store (one is made if omitted).
        rollouts: The canary/shadow router (one is made if omitted; see :mod:`aiw.mlops.rollout`).
    """

    def __init__(
        self,
        workspace: Workspace,
        *,
        resolver: ModelResolver | None = None,
        traffic: TrafficRecorder | None = None,
        rollouts: RolloutRouter | None = None,
    ) -> None:
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
        self._online: OnlineFeatureReader | None = None
        self._online_lock = threading.Lock()

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def predict(self, name: str, ref: str | int | None, body: bytes, principal: Principal) -> bytes:
        """Score one request body for ``name`` at ``ref`` (alias or version; default ``champion``).

        The body holds the input columns in one of MLflow's formats, or entity keys whose
        features are read from the online feature store (see :mod:`aiw.mlops.serving.inputs`).

        Returns:
            The JSON response body.

        Raises:
            PayloadTooLarge: the body is over the limit.
            NotFoundError: unknown model, version or alias.
            InvalidInputError: the payload is malformed or does not match the signature; an unknown
                entity key or feature; keys without online features
                (:class:`~aiw.features.online.MissingOnlineFeatures`).
            IntegrityError: the version failed its checksums.
            ModelError: the model raised while scoring.
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
                raise PayloadTooLarge(
                    f"The request body is {len(body)} bytes; the limit is {self.max_body_bytes}",
                    hint="send fewer rows per request, or score a table with 'aiw models score'",
                )
            loaded = self.resolver.cached(name, ref)
            if loaded is None:
                loaded, version = await self._run(self.resolver.resolve, name, ref)
            version = loaded.version
            inline = loaded.runtime == "onnx" and len(body) <= _INLINE_BYTES
            if inline:
                parsed = parse_request(body, loaded.schema, max_rows=self.settings.max_rows)
            else:
                parsed = await self._run(self._parse, body, loaded)
            source: dict[str, Any] | None = None
            if isinstance(parsed, EntityRequest):
                batch, source = await self._run(self._online_batch, parsed, loaded)
            else:
                batch = parsed
            if inline and batch.rows <= _INLINE_ROWS:
                prediction = loaded.score(batch)
            else:
                prediction = await self._run(loaded.score, batch)
        except ModelError as exc:  # the model itself failed: the rollout must see it
            if route is not None:
                route.failed(exc)
            self.metrics.error(name, version, "model_error")
            raise
        except AiwError as exc:
            if route is not None:
                route.failed(exc)
            await self._refused(name, ref, version, exc, principal)
            raise
        except Exception as exc:  # a fault of the server itself: counted, and the rollout sees it
            if route is not None:
                route.failed(exc)
            self.metrics.error(name, version, "internal_error")
            raise
        elapsed = time.perf_counter() - started
        self.metrics.observe(name, loaded.version, elapsed, prediction.predictions, prediction.score)
        request_id = self.traffic.record(name, loaded.version, alias, batch, prediction, elapsed, source="rest")
        out = encode_response(loaded, alias, prediction, features=source, request_id=request_id)
        if route is not None:
            route.done(elapsed, prediction, batch)
        return out

    def _parse(self, body: bytes, loaded: LoadedModel) -> ColumnBatch | EntityRequest:
        return parse_request(body, loaded.schema, max_rows=self.settings.max_rows)

    def _online_batch(self, request: EntityRequest, loaded: LoadedModel) -> tuple[ColumnBatch, dict[str, Any]]:
        """The model's input columns for ``request``'s entity keys, read from the online store."""
        reader = self._online
        if reader is None:
            with self._online_lock:
                if self._online is None:
                    from aiw.features.online import OnlineFeatureReader  # Feast loads on its first read

                    self._online = OnlineFeatureReader(self.workspace)
                reader = self._online
        inputs = reader.read(
            loaded.schema.names, request.entities, features=request.features, feature_service=request.feature_service
        )
        try:
            batch = rows_to_batch(inputs.columns, loaded.schema)
        except InvalidInputError as exc:
            raise InvalidInputError(
                f"The online features do not fit model {loaded.name!r} version {loaded.version}: {exc.message}",
                hint=exc.hint,
            ) from exc
        return batch, inputs.describe()

    async def _refused(
        self, name: str, ref: str | int | None, version: int | None, exc: AiwError, principal: Principal
    ) -> None:
        kind = getattr(exc, "kind", None) or {
            PayloadTooLarge: "payload_too_large",
            NotFoundError: "not_found",
            IntegrityError: "integrity",
        }.get(type(exc), "invalid_input" if isinstance(exc, InvalidInputError) else type(exc).__name__.lower())
        self.metrics.error(name, version, kind)
        if isinstance(exc, IntegrityError):
            return  # the registry audited the failed check itself (once per alias_ttl_s)
        target = f"model:{name}/{version}" if version is not None else f"model:{name}@{ref or 'champion'}"
        await self._run(
            lambda: self.workspace.audit.append(
                principal.name,
                "models.predict",
                target,
                outcome="denied",
                details={"reason": exc.message[:1000], "kind": kind, "role": principal.role},
            )
        )

    def warm(self, name: str, ref: str | int | None = None) -> LoadedModel:
        """Load ``name`` at ``ref`` now (e.g. at start-up), so the first request does not wait."""
        return self.resolver.resolve(name, ref)[0]

    def close(self) -> None:
        """Write the queued traffic, stop the threads and drop the caches."""
        self.rollouts.close()
        self.traffic.close()
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.resolver.close()
