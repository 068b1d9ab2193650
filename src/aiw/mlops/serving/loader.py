"""Loading governed model versions, and resolving ``name@alias`` to a loaded model, with caches.

:meth:`ModelResolver.resolve` is the one entry point every scorer uses (REST, batch, streaming,
and the rollout router built on top): ``resolve(name, "champion")`` or ``resolve(name, 3)`` gives
``(LoadedModel, version)``.

* Loading checks every file of the version against its registered SHA-256 first; a version that
  fails is refused with :class:`~aiw.errors.IntegrityError` (audited) and never reaches memory.
  The model is deserialised with skops using the allow-list recorded *in the registry*.
* Loaded models are cached by ``(name, version)``: a version's files never change, so a cached
  model stays right for as long as the process lives (bounded LRU).
* Aliases are cached for ``serving.alias_ttl_s`` seconds; an alias moved by this process (the
  registry's listener) is seen at once and the new version is loaded in the background. Requests
  in flight keep the model object they started with, so moving an alias never fails them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiw.errors import AiwError, IntegrityError, InvalidInputError, ModelError
from aiw.mlops.registry.versions import ModelRegistry, ModelVersion, add_alias_listener, remove_alias_listener
from aiw.mlops.serving.inputs import ColumnBatch, InputSchema, rows_to_batch
from aiw.mlops.serving.predictor import (
    OnnxPredictor,
    Prediction,
    Predictor,
    SklearnPredictor,
    VerificationReport,
    convert_to_onnx,
    verify_runtime,
)

if TYPE_CHECKING:
    from aiw.settings import ServingSettings
    from aiw.workspace import Workspace

__all__ = [
    "LoadedModel",
    "ModelResolver",
    "freeze_heap",
    "load_model_version",
    "model_failure",
    "read_sklearn_model",
    "verification_batch",
]

DEFAULT_ALIAS = "champion"
_log = logging.getLogger(__name__)
_TRACEBACK_EVERY_S = 60.0
_tracebacks: dict[tuple[str, int, str], tuple[float, int]] = {}
_tracebacks_lock = threading.Lock()


def model_failure(
    name: str, version: int, runtime: str, rows: int, exc: BaseException, *, note: str = ""
) -> ModelError:
    """Log a model's failure on ``rows`` rows and return the :class:`ModelError` to raise for it.

    The error names the model, the version and the exception's type, never its text (which may
    carry data). The log has the traceback at most once a minute per (model, version, exception
    type), with how many failures were not logged since: a canary failing 10% of requests must
    not flood the log. ``note`` is appended to the message (what became of the caller's work).
    """
    kind = type(exc).__name__
    key, now = (name, version, kind), time.monotonic()
    with _tracebacks_lock:
        last, quiet = _tracebacks.get(key, (float("-inf"), 0))
        loud = now - last >= _TRACEBACK_EVERY_S
        _tracebacks[key] = (now, 0) if loud else (last, quiet + 1)
    if loud:
        _log.error(
            "model %s version %s (%s) failed on %d rows%s",
            name,
            version,
            runtime,
            rows,
            f" ({quiet} more failures of this kind since the last traceback)" if quiet else "",
            exc_info=exc,
        )
    else:
        _log.debug("model %s version %s failed again (%s)", name, version, kind)
    return ModelError(
        f"Model {name!r} version {version} failed while scoring {rows} row{'s' if rows != 1 else ''}: {kind}{note}",
        model=name,
        version=version,
        error_type=kind,
        hint="the input passed the model's signature checks; the log has the traceback",
    )


def freeze_heap() -> None:
    """Collect garbage, then move every object left to the garbage collector's permanent generation.

    A serving process holds a million or more long-lived objects (scikit-learn, ONNX Runtime,
    pandas, MLflow), and every full collection walked all of them: 100 to 300 ms with the GIL
    held, every several seconds under load, which set the p99 latency (96 ms at one client against
    a p50 of 0.5 ms; 7 ms once frozen, benchmarks/bench_serving.py). Frozen objects are still freed
    by reference counting; only cycles among them are no longer collected. The collection before
    freezing keeps today's garbage from being frozen with them. Called after each model load, when
    the heap has just grown by its imports and the model itself.
    """
    import gc

    gc.collect()
    gc.freeze()


@dataclass
class LoadedModel:
    """A verified model version in memory, ready to score.

    Attributes:
        name: The model's name.
        version: Its version.
        predictor: What serves requests (ONNX when it reproduces the model, else the model).
        reference: The scikit-learn model itself (exact; batch scoring uses it).
        schema: The input columns.
        runtime: ``onnx`` or ``sklearn``.
        verification: How the serving runtime compared with the model on held-out rows.
        manifest_sha256: Identifies the exact files loaded.
        load_seconds: Time to verify, load and compile.
        record: The registry's record of the version.
    """

    name: str
    version: int
    predictor: Predictor
    reference: SklearnPredictor
    schema: InputSchema
    runtime: str
    verification: VerificationReport | None
    manifest_sha256: str
    load_seconds: float
    record: ModelVersion
    notes: list[str] = field(default_factory=list)

    def score(self, batch: ColumnBatch) -> Prediction:
        """The serving runtime's prediction for ``batch``.

        Raises:
            ModelError: the model itself raised (named with its version and the exception's type,
                never its text, which may carry data; the log has the traceback).
        """
        try:
            return self.predictor.predict(batch)
        except AiwError:
            raise
        except Exception as exc:
            raise model_failure(self.name, self.version, self.runtime, batch.rows, exc) from exc


def verification_batch(folder: Path, manifest: dict[str, str], schema: InputSchema) -> ColumnBatch | None:
    """The held-out rows logged with the model (``verification.json``), as a batch, if present."""
    from aiw.mlops.tracking import read_held_out_rows

    held_out = read_held_out_rows(folder, manifest)
    if held_out is None or set(held_out[0]) != set(schema.names):
        return None
    names, rows = held_out
    cols = {n: [r[j] for r in rows] for j, n in enumerate(names)}
    try:
        return rows_to_batch(cols, schema)
    except InvalidInputError:
        return None


def read_sklearn_model(folder: Path, trusted_types: Sequence[str]) -> Any:
    """The scikit-learn model of an MLflow model folder (saved with skops), trusting exactly
    ``trusted_types``: pass the registry's list, never the one in the (checksummed) folder.

    Raises:
        skops.io.exceptions.UntrustedTypesFoundException: the file holds a type not in the list.
    """
    import skops.io
    import yaml  # type: ignore[import-untyped,unused-ignore]

    flavor = (yaml.safe_load((folder / "MLmodel").read_text()) or {}).get("flavors", {}).get("sklearn", {})
    return skops.io.load(folder / str(flavor.get("pickled_model", "model.skops")), trusted=list(trusted_types))


def load_model_version(
    registry: ModelRegistry,
    name: str,
    version: int,
    *,
    runtime: str = "auto",
    tolerance: float = 1e-4,
    actor: str = "system:serving",
) -> LoadedModel:
    """Verify, load and (when it reproduces the model) compile one version.

    Args:
        registry: The governed registry.
        name: The model's name.
        version: The version.
        runtime: ``auto`` (ONNX if verified, else scikit-learn), ``sklearn`` or ``onnx`` (refuse
            to load unless ONNX reproduces the model).
        tolerance: Largest probability difference ONNX may show on the verification rows.
        actor: Who is loading, for the audit record of a refusal.

    Raises:
        NotFoundError: unknown model or version.
        IntegrityError: a file fails its checksum, or skops finds a type the registry did not trust.
        InvalidInputError: ``runtime='onnx'`` and ONNX does not reproduce the model.
    """
    import skops.io

    started = time.perf_counter()
    folder, mv = registry.verified_folder(name, version, actor=actor)
    try:
        model = read_sklearn_model(folder, mv.trusted_types)
    except skops.io.exceptions.UntrustedTypesFoundException as exc:
        raise registry.deny(
            actor,
            "models.load",
            mv.resource,
            IntegrityError(
                f"Model {name!r} version {version} holds types the registry does not trust: {exc}",
                hint="re-register it with the types it needs",
            ),
        ) from None
    schema = InputSchema(mv.signature)
    reference = SklearnPredictor(model, schema)
    predictor: Predictor = reference
    report: VerificationReport | None = None
    notes: list[str] = []
    if runtime in ("auto", "onnx"):
        batch = verification_batch(folder, mv.manifest, schema)
        try:
            if batch is None:
                raise InvalidInputError("the model carries no verification rows")
            onnx = OnnxPredictor(convert_to_onnx(model, schema), schema, reference.classes)
            report = verify_runtime(onnx, reference, batch, tolerance=tolerance)
            if report.passed:
                predictor = onnx
            else:
                raise InvalidInputError(f"ONNX does not reproduce the model: {report.reason}")
        except (InvalidInputError, ImportError) as exc:
            if runtime == "onnx":
                raise InvalidInputError(
                    f"Model {name!r} version {version} cannot be served with ONNX: {exc}",
                    hint="set AIW_SERVING__RUNTIME=auto to serve it with scikit-learn",
                ) from exc
            notes.append(f"serving with scikit-learn: {exc}")
    return LoadedModel(
        name=name,
        version=mv.version,
        predictor=predictor,
        reference=reference,
        schema=schema,
        runtime=predictor.runtime,
        verification=report,
        manifest_sha256=mv.manifest_sha256,
        load_seconds=time.perf_counter() - started,
        record=mv,
        notes=notes,
    )


class ModelResolver:
    """Resolve ``(name, alias or version)`` to a loaded, verified model, through two caches.

    Args:
        workspace: The workspace.
        settings: The serving settings (default: the workspace's).
        registry: The registry to read (one is made when omitted).
        max_models: Loaded versions kept in memory (least recently used are dropped).
    """

    def __init__(
        self,
        workspace: Workspace,
        settings: ServingSettings | None = None,
        *,
        registry: ModelRegistry | None = None,
        max_models: int = 8,
    ) -> None:
        if max_models < 1:
            raise InvalidInputError(f"The 'max_models' parameter of ModelResolver must be >= 1. Got {max_models}.")
        self.workspace = workspace
        self.settings = settings or workspace.settings.serving
        self.registry = registry or ModelRegistry(workspace)
        self.max_models = max_models
        self._lock = threading.Lock()
        self._models: OrderedDict[tuple[str, int], LoadedModel] = OrderedDict()
        self._aliases: dict[tuple[str, str], tuple[int, float]] = {}
        self._failures: dict[tuple[str, int], tuple[AiwError, float]] = {}
        self._load_locks: dict[tuple[str, int], threading.Lock] = {}
        self._root = str(workspace.root)
        add_alias_listener(self._on_alias_moved)

    # -- resolution ----------------------------------------------------------------------------
    @staticmethod
    def normalise_ref(ref: str | int | None) -> str | int:
        """``None``/empty -> ``champion``; digit strings -> int; anything else stays an alias."""
        if ref is None or ref == "":
            return DEFAULT_ALIAS
        if isinstance(ref, int):
            return ref
        return int(ref) if ref.isdigit() else ref

    def version_of(self, name: str, ref: str | int | None = None) -> int:
        """The version ``ref`` names now (aliases cached for ``alias_ttl_s``)."""
        ref = self.normalise_ref(ref)
        if isinstance(ref, int):
            return ref
        now = time.monotonic()
        with self._lock:
            hit = self._aliases.get((name, ref))
        if hit is not None and hit[1] > now:
            return hit[0]
        version = self.registry.resolve(name, ref)
        with self._lock:
            self._aliases[(name, ref)] = (version, now + self.settings.alias_ttl_s)
        return version

    def cached(self, name: str, ref: str | int | None = None) -> LoadedModel | None:
        """The loaded model ``ref`` names if both caches answer without I/O, else None."""
        ref = self.normalise_ref(ref)
        with self._lock:
            if isinstance(ref, int):
                version = ref
            else:
                hit = self._aliases.get((name, ref))
                if hit is None or hit[1] <= time.monotonic():
                    return None
                version = hit[0]
            loaded = self._models.get((name, version))
            if loaded is not None:
                self._models.move_to_end((name, version))
            return loaded

    def resolve(self, name: str, ref: str | int | None = None) -> tuple[LoadedModel, int]:
        """The loaded model and version that ``ref`` (alias, version; default ``champion``) names.

        Raises:
            NotFoundError: unknown model, version or alias.
            IntegrityError: the version fails its checksums (refused for ``alias_ttl_s`` without
                re-checking, so a flood of requests does not flood the audit log).
        """
        version = self.version_of(name, ref)
        return self.load(name, version), version

    def load(self, name: str, version: int) -> LoadedModel:
        """The loaded model of ``version`` (verified and loaded once, then cached)."""
        key = (name, int(version))
        with self._lock:
            loaded = self._models.get(key)
            if loaded is not None:
                self._models.move_to_end(key)
                return loaded
            failure = self._failures.get(key)
            if failure is not None and failure[1] > time.monotonic():
                raise failure[0]
            lock = self._load_locks.setdefault(key, threading.Lock())
        with lock:  # one load per version, however many requests ask at once
            with self._lock:
                loaded = self._models.get(key)
            if loaded is not None:
                return loaded
            try:
                loaded = load_model_version(
                    self.registry, name, key[1], runtime=self.settings.runtime, tolerance=self.settings.onnx_tolerance
                )
            except IntegrityError as exc:
                with self._lock:
                    self._failures[key] = (exc, time.monotonic() + self.settings.alias_ttl_s)
                raise
            with self._lock:
                self._models[key] = loaded
                self._failures.pop(key, None)
                while len(self._models) > self.max_models:
                    self._models.popitem(last=False)
            if self.settings.gc_freeze:
                freeze_heap()
            return loaded

    def loaded(self) -> list[LoadedModel]:
        """The models in memory now."""
        with self._lock:
            return list(self._models.values())

    # -- invalidation --------------------------------------------------------------------------
    def invalidate(self, name: str | None = None) -> None:
        """Forget cached aliases (of ``name``, or all): the next request asks the registry."""
        with self._lock:
            for key in [k for k in self._aliases if name is None or k[0] == name]:
                del self._aliases[key]

    def _on_alias_moved(self, root: str, name: str, alias: str, version: int) -> None:
        if root != self._root:
            return
        with self._lock:
            self._aliases[(name, alias)] = (version, time.monotonic() + self.settings.alias_ttl_s)
            present = (name, version) in self._models
        if not present:  # warm it now, so the first request after the move does not wait
            threading.Thread(
                target=self._warm, args=(name, version), daemon=True, name=f"aiw-warm-{name}-{version}"
            ).start()

    def _warm(self, name: str, version: int) -> None:
        try:
            self.load(name, version)
        except Exception:  # the next request will try again and report the error to its caller
            import logging

            logging.getLogger(__name__).warning("preloading %s v%s failed", name, version, exc_info=True)

    def close(self) -> None:
        """Stop listening to alias moves and drop every cached model."""
        remove_alias_listener(self._on_alias_moved)
        with self._lock:
            self._models.clear()
            self._aliases.clear()

    def __enter__(self) -> ModelResolver:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
