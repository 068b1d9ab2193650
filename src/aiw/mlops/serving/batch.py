"""Batch scoring of warehouse tables, in-process or on Ray, with identical results.

:func:`score_table` reads a table in chunks (Arrow record batches straight from DuckDB), has an
engine score each chunk with a :class:`ChunkScorer`, and writes the input columns plus
``prediction``, ``score`` (binary classifiers' positive-class probability, or ``probability_<class>``
columns for more classes) and ``model_version`` to a new table, swapped in atomically at the end.

Both engines run the same :class:`ChunkScorer` on the same chunks, in order, with the model itself
(scikit-learn, exact), so their outputs are identical. Each scorer checks the model's files
against the registered checksums before loading them, on whichever machine it runs.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from aiw.errors import AiwError, BackendError, ConfigError, IntegrityError, InvalidInputError
from aiw.mlops.registry.checksums import check_manifest
from aiw.mlops.registry.versions import ColumnSpec

if TYPE_CHECKING:
    import pyarrow as pa

    from aiw.governance.identity import Principal
    from aiw.settings import EngineSettings
    from aiw.workspace import Workspace

__all__ = ["BatchEngine", "ChunkScorer", "LocalEngine", "RayEngine", "ScoreResult", "ScorerSpec", "score_table"]

_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")
_OUTPUT_COLUMNS = ("prediction", "score", "model_version")


@dataclass(frozen=True)
class ScorerSpec:
    """Everything a worker needs to load and check one model version on its own (no database).

    Attributes:
        name: The model.
        version: The version.
        folder: The model's files (a path the worker can read).
        manifest: {relative path: SHA-256}, checked before loading.
        trusted_types: The skops allow-list recorded by the registry.
        signature: The input columns.
    """

    name: str
    version: int
    folder: str
    manifest: dict[str, str]
    trusted_types: tuple[str, ...]
    signature: tuple[ColumnSpec, ...]


class ChunkScorer:
    """Scores Arrow chunks with one model version (checked and loaded once per scorer).

    Args:
        spec: The model to load.

    Raises:
        IntegrityError: the files fail their checksums.
    """

    def __init__(self, spec: ScorerSpec) -> None:
        from aiw.mlops.serving.inputs import InputSchema
        from aiw.mlops.serving.loader import read_sklearn_model
        from aiw.mlops.serving.predictor import SklearnPredictor

        folder = Path(spec.folder)
        result = check_manifest(folder, spec.manifest)
        if not result.ok:
            raise IntegrityError(
                f"Model {spec.name!r} version {spec.version} failed its checksum check "
                f"({result.describe()}); it will not be loaded"
            )
        model = read_sklearn_model(folder, spec.trusted_types)
        self.spec = spec
        self.schema = InputSchema(spec.signature)
        self.predictor = SklearnPredictor(model, self.schema)

    def __call__(self, chunk: pa.Table) -> pa.Table:
        """The chunk with the output columns appended."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        from aiw.mlops.serving.inputs import ColumnBatch

        cols: dict[str, np.ndarray] = {}
        for spec in self.schema.columns:
            column = chunk.column(spec.name)
            if spec.type == "string":
                cols[spec.name] = column.to_numpy(zero_copy_only=False).astype(object)
            elif spec.type in ("double", "float"):
                cols[spec.name] = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
            elif spec.type in ("long", "integer"):
                cols[spec.name] = pc.cast(column, pa.int64()).to_numpy(zero_copy_only=False)
            else:
                cols[spec.name] = column.to_numpy(zero_copy_only=False)
        try:
            prediction = self.predictor.predict(ColumnBatch(cols, chunk.num_rows))
        except AiwError:
            raise
        except Exception as exc:
            from aiw.mlops.serving.loader import model_failure

            note = "; the output table was not changed"
            raise model_failure(self.spec.name, self.spec.version, "sklearn", chunk.num_rows, exc, note=note) from exc
        out = chunk.append_column("prediction", pa.array(prediction.predictions))
        if prediction.probabilities is not None:
            if prediction.score is not None:
                out = out.append_column("score", pa.array(prediction.score, pa.float64()))
            else:
                for j, cls in enumerate(prediction.classes):
                    out = out.append_column(f"probability_{cls}", pa.array(prediction.probabilities[:, j]))
        return out.append_column("model_version", pa.array(np.full(chunk.num_rows, self.spec.version, np.int32)))


@runtime_checkable
class BatchEngine(Protocol):
    """Where chunks are scored.

    Contract: an engine is built from its settings section (``EngineSettings``); ``map`` loads the
    model once per worker with a :class:`ChunkScorer`, scores every chunk and yields the results
    in the order of the input chunks (so engines are interchangeable and give identical output);
    ``close`` releases whatever the engine started (idempotent).
    """

    name: str

    def map(self, spec: ScorerSpec, chunks: Iterable[pa.Table]) -> Iterator[pa.Table]:
        """Score every chunk, yielding results in the order of ``chunks``."""
        ...

    def close(self) -> None:
        """Release what the engine started."""
        ...


class LocalEngine:
    """In this process, one chunk after another.

    Args:
        settings: The engine settings (unused beyond the chunk size, kept for a uniform constructor).
    """

    name = "local"

    def __init__(self, settings: EngineSettings | None = None) -> None:
        self.settings = settings

    def map(self, spec: ScorerSpec, chunks: Iterable[pa.Table]) -> Iterator[pa.Table]:
        """Score every chunk in order, in this process."""
        scorer = ChunkScorer(spec)
        for chunk in chunks:
            yield scorer(chunk)

    def close(self) -> None:
        """Nothing to release in-process."""
        return None


class RayEngine:
    """On Ray: one scorer actor per worker, a bounded window of chunks in flight, results in order.

    Connects to ``settings.ray_address`` when set, else starts a local Ray with two CPUs (and shuts
    it down on :meth:`close`).

    Args:
        settings: The engine settings.
        actors: Scorer actors (default 2).
    """

    name = "ray"

    def __init__(self, settings: EngineSettings | None = None, *, actors: int = 2) -> None:
        if not 1 <= actors <= 256:
            raise InvalidInputError(f"The 'actors' parameter of RayEngine must be in [1, 256]. Got {actors}.")
        self.settings = settings
        self.actors = actors
        self._started = False

    def _init(self) -> Any:
        try:
            import ray
        except ImportError as exc:
            raise ConfigError("The ray engine needs the 'ray' package", hint="pip install 'ray[data]'") from exc
        if not ray.is_initialized():
            address = self.settings.ray_address if self.settings else ""
            try:
                if address:
                    ray.init(address=address, log_to_driver=False)
                else:
                    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
                    self._started = True
            except Exception as exc:
                raise BackendError(
                    f"Cannot start or reach Ray{f' at {address}' if address else ''}: {exc}",
                    hint="check AIW_ENGINE__RAY_ADDRESS, or leave it empty for a local Ray",
                ) from exc
        return ray

    def map(self, spec: ScorerSpec, chunks: Iterable[pa.Table]) -> Iterator[pa.Table]:
        """Score every chunk on Ray actors, yielding results in input order."""
        ray = self._init()
        actor_cls = ray.remote(num_cpus=1)(_RayScorer)
        actors = [actor_cls.remote(spec) for _ in range(self.actors)]
        pending: deque[Any] = deque()
        try:
            for i, chunk in enumerate(chunks):
                pending.append(actors[i % len(actors)].score.remote(chunk))
                if len(pending) >= 2 * len(actors):
                    yield _get(ray, pending.popleft())
            while pending:
                yield _get(ray, pending.popleft())
        finally:
            for actor in actors:
                ray.kill(actor)

    def close(self) -> None:
        """Shut down the local Ray this engine started (a cluster is left alone)."""
        if self._started:
            import ray

            ray.shutdown()
            self._started = False


class _RayScorer:
    """The Ray actor around :class:`ChunkScorer` (a class of its own: Ray wraps it)."""

    def __init__(self, spec: ScorerSpec) -> None:
        self.scorer = ChunkScorer(spec)

    def score(self, chunk: pa.Table) -> pa.Table:
        return self.scorer(chunk)


def _get(ray: Any, ref: Any) -> Any:
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, AiwError):  # the worker's own typed error, as raised there
            raise exc.cause from None
        raise BackendError(f"A Ray scoring task failed: {exc.as_instanceof_cause()}") from exc
    except ray.exceptions.RayActorError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, IntegrityError):
            raise cause from None
        raise BackendError(f"A Ray scoring actor died: {exc}") from exc


@dataclass(frozen=True)
class ScoreResult:
    """What :func:`score_table` did."""

    model: str
    version: int
    table: str
    out: str
    rows: int
    chunks: int
    engine: str
    seconds: float

    @property
    def rows_per_s(self) -> float:
        """Throughput."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def _check_table(name: str, what: str) -> str:
    if not isinstance(name, str) or not _TABLE.match(name):
        raise InvalidInputError(
            f"The {what} table name must be an identifier such as claims or main.claims. Got {name!r}."
        )
    return name


def _engine(engine: str | BatchEngine | None, settings: EngineSettings) -> tuple[BatchEngine, bool]:
    if isinstance(engine, BatchEngine):
        return engine, False
    from aiw._registry import resolve

    cls = resolve("engine", engine or settings.batch)
    return cls(settings), True


def score_table(
    workspace: Workspace,
    name: str,
    table: str,
    out: str,
    principal: Principal,
    *,
    ref: str | int | None = None,
    engine: str | BatchEngine | None = None,
    chunk_rows: int | None = None,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ScoreResult:
    """Score every row of ``table`` with ``name`` at ``ref`` and write the result to ``out``.

    Args:
        workspace: The workspace whose warehouse holds the table.
        name: The model.
        table: The input table; it must hold every input column of the model.
        out: The output table (replaced atomically when the job succeeds).
        principal: Who scores (needs ``models:predict``; the write is audited).
        ref: Alias or version (default ``champion``).
        engine: ``local``, ``ray``, an engine instance, or None for ``settings.engine.batch``.
        chunk_rows: Rows per chunk (default ``settings.engine.chunk_rows``).
        limit: Score only the first ``limit`` rows (in table order).
        progress: Called with (rows done, rows in all) after each chunk.

    Raises:
        InvalidInputError: bad table names, missing input columns, or wrongly typed ones.
        NotFoundError: unknown model, version, alias or table.
        IntegrityError: the model's files fail their checksums.
    """
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from aiw.mlops.registry.versions import ModelRegistry

    _check_table(table, "input")
    _check_table(out, "output")
    if table.lower() == out.lower():
        raise InvalidInputError("The output table must differ from the input table.")
    rows_per_chunk = chunk_rows or workspace.settings.engine.chunk_rows
    if rows_per_chunk < 1:
        raise InvalidInputError(f"The 'chunk_rows' parameter must be a positive integer. Got {chunk_rows}.")
    registry = ModelRegistry(workspace)
    resource = f"model:{name}"
    registry.require(principal, "models:predict", "models.score", resource)
    from aiw.mlops.serving.loader import ModelResolver

    version = ModelResolver.normalise_ref(ref)
    version = version if isinstance(version, int) else registry.resolve(name, version)
    folder, mv = registry.verified_folder(name, version, actor=principal.name)
    spec = ScorerSpec(name, mv.version, str(folder), mv.manifest, mv.trusted_types, mv.signature)
    runner, owned = _engine(engine, workspace.settings.engine)
    started = time.perf_counter()
    conn = workspace.connect_warehouse(ai_functions=False)
    # Scored chunks go to Parquet files first and into the warehouse in one statement at the end:
    # writing to DuckDB while a streaming read of the same database is open can stall it.
    staging = Path(tempfile.mkdtemp(prefix=f".score-{out}-", dir=workspace.path("cache")))
    done = n_chunks = 0
    reader_conn: duckdb.DuckDBPyConnection | None = None
    reader: pa.RecordBatchReader | None = None
    try:
        try:
            available = {c[0] for c in conn.execute(f"SELECT * FROM {table} LIMIT 0").description}
        except duckdb.CatalogException as exc:
            from aiw.errors import NotFoundError

            raise NotFoundError(f"The warehouse has no table {table!r}", hint="see 'aiw sql tables'") from exc
        missing = [c.name for c in mv.signature if c.name not in available]
        clashes = [c for c in _OUTPUT_COLUMNS if c in available]
        if missing or clashes:
            problem = (
                f"lacks the model's input columns {', '.join(missing)}"
                if missing
                else f"already has columns named {', '.join(clashes)}"
            )
            raise InvalidInputError(
                f"The table {table!r} {problem}", hint=f"the model takes {', '.join(c.name for c in mv.signature)}"
            )
        total = int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
        if limit is not None:
            total = min(total, limit)
        suffix = f" LIMIT {int(limit)}" if limit is not None else ""
        reader_conn = conn.cursor()
        reader = reader_conn.execute(f"SELECT * FROM {table}{suffix}").fetch_record_batch(rows_per_chunk)
        chunks = (pa.Table.from_batches([b]) for b in reader)
        for result in runner.map(spec, chunks):
            pq.write_table(result, staging / f"{n_chunks:08d}.parquet")
            done += result.num_rows
            n_chunks += 1
            if progress:
                progress(done, total)
        reader.close()
        reader_conn.close()
        reader = reader_conn = None
        conn.execute("BEGIN TRANSACTION")
        conn.execute(f"DROP TABLE IF EXISTS {out}")
        if n_chunks:
            files = ", ".join(f"'{p}'" for p in sorted(staging.glob("*.parquet")))
            conn.execute(f"CREATE TABLE {out} AS SELECT * FROM read_parquet([{files}])")
        else:  # an empty table: an empty output with the right columns
            conn.execute(
                f"CREATE TABLE {out} AS SELECT *, NULL::BIGINT AS prediction, NULL::DOUBLE AS score, "
                f"NULL::INTEGER AS model_version FROM {table} LIMIT 0"
            )
        conn.execute("COMMIT")
    except duckdb.Error as exc:
        with contextlib.suppress(duckdb.Error):
            conn.execute("ROLLBACK")
        _audit_failure(workspace, principal, name, mv.version, table, out, exc)
        raise BackendError(f"Batch scoring of {table!r} failed in the warehouse: {exc}") from exc
    except AiwError as exc:
        _audit_failure(workspace, principal, name, mv.version, table, out, exc)
        raise
    finally:
        # A job stopped mid-read: an open Arrow reader over DuckDB (which the traceback keeps alive)
        # makes the next connection to this warehouse in this process wait forever.
        if reader is not None:
            reader.close()
        if reader_conn is not None:
            reader_conn.close()
        conn.close()
        shutil.rmtree(staging, ignore_errors=True)
        if owned:
            runner.close()
    result = ScoreResult(name, mv.version, table, out, done, n_chunks, runner.name, time.perf_counter() - started)
    workspace.audit.append(
        principal.name,
        "models.score",
        f"model:{name}/{mv.version}",
        details={"table": table, "out": out, "rows": done, "engine": runner.name, "seconds": round(result.seconds, 3)},
    )
    return result


def _audit_failure(
    workspace: Workspace, principal: Principal, name: str, version: int, table: str, out: str, exc: Exception
) -> None:
    """Audit a scoring job that failed (and left ``out`` as it was)."""
    details: dict[str, Any] = {"table": table, "out": out, "error": type(exc).__name__}
    if isinstance(exc, AiwError):
        details.update(exc.fields())
    workspace.audit.append(
        principal.name, "models.score", f"model:{name}/{version}", outcome="failure", details=details
    )
