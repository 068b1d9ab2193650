"""Run the platform's dbt project against a workspace, in-process, through dbt's own runner.

The project ships inside the package (``aiw/data/dbt_project``; the repository's ``dbt/`` points
at it), so it is found the same way from a source checkout and from an installed wheel. Every run
points dbt at the workspace: the warehouse through ``AIW_DBT_DUCKDB_PATH`` (read by the project's
``profiles.yml``), ``target/`` under ``<home>/artifacts/dbt`` and logs under ``<home>/logs/dbt``,
so the project folder itself is never written to.

dbt keeps process-wide state (its flags, its adapter registry, the environment it renders), so
runs in one process are serialised by a lock.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from aiw.errors import BackendError, InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from aiw.workspace import Workspace

__all__ = [
    "BuildEvent",
    "BuildResult",
    "DbtRunner",
    "NodeResult",
    "ProgressCallback",
    "project_dir",
]

PROJECT_DIR = Path(__file__).with_name("dbt_project")
_LOCK = threading.Lock()
_OK = frozenset({"success", "pass", "no-op"})
_WARN = frozenset({"warn"})

Phase = Literal["start", "finish"]


@dataclass(frozen=True)
class BuildEvent:
    """One progress event of a dbt run, as handed to a progress callback.

    Attributes:
        phase: ``start`` when dbt begins a node, ``finish`` when it is done with it.
        name: The node's name (``claims_daily``, ``unique_stg_claims_claim_id`` ...).
        kind: ``model``, ``test``, ``source`` (freshness), ``seed`` or ``snapshot``.
        index: The node's position (1-based) in the run, when dbt says it.
        total: How many nodes the run has, when dbt says it.
        status: The node's status once finished (``success``, ``pass``, ``fail``, ``error`` ...).
    """

    phase: Phase
    name: str
    kind: str
    index: int | None = None
    total: int | None = None
    status: str = ""


ProgressCallback = Callable[[BuildEvent], None]


@dataclass(frozen=True)
class NodeResult:
    """What dbt did with one model, test or source.

    Attributes:
        name: The node's name.
        kind: ``model``, ``test``, ``source`` (freshness), ``seed`` or ``snapshot``.
        status: dbt's status: ``success``/``pass``/``no-op`` are fine, ``warn`` is a warning,
            ``fail``/``error``/``runtime error`` failed and ``skipped`` did not run because
            something it depends on failed.
        seconds: How long it ran.
        message: dbt's message (``OK``, ``Got 3 results, configured to fail if != 0`` ...).
        unique_id: dbt's id of the node (``model.aiw.claims_daily``).
        failures: Failing rows of a test, when dbt counted them.
    """

    name: str
    kind: str
    status: str
    seconds: float
    message: str
    unique_id: str
    failures: int | None = None

    @property
    def ok(self) -> bool:
        """Whether the node passed (a warning passes)."""
        return self.status in _OK or self.status in _WARN


@dataclass
class BuildResult:
    """The outcome of one dbt command.

    Attributes:
        command: What ran (``build``, ``source freshness``, ``docs generate``).
        success: Whether every node passed (warnings pass) and dbt raised nothing.
        nodes: Every model, test and source dbt reported on, in the order they finished.
        seconds: Wall time of the whole command.
        target_path: Where dbt wrote its artifacts (manifest, run_results, docs).
        log_path: Where dbt wrote its log.
        error: dbt's own error when the command could not run at all (a bad project, no warehouse).
    """

    command: str
    success: bool
    nodes: list[NodeResult] = field(default_factory=list)
    seconds: float = 0.0
    target_path: str = ""
    log_path: str = ""
    error: str = ""

    @property
    def failures(self) -> list[NodeResult]:
        """The nodes that failed, errored or were skipped."""
        return [n for n in self.nodes if not n.ok]

    def counts(self) -> dict[str, int]:
        """How many nodes ended in each status."""
        out: dict[str, int] = {}
        for node in self.nodes:
            out[node.status] = out.get(node.status, 0) + 1
        return out

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data."""
        data = asdict(self)
        data["counts"] = self.counts()
        return data


def project_dir() -> Path:
    """The dbt project shipped with the package.

    Raises:
        NotFoundError: the package was installed without its dbt project files.
    """
    if not (PROJECT_DIR / "dbt_project.yml").is_file():
        raise NotFoundError(
            f"The dbt project is missing from {PROJECT_DIR}",
            hint="reinstall enterprise-ai-workflows; its package data holds the project",
        )
    return PROJECT_DIR


class DbtRunner:
    """Runs the platform's dbt project against one workspace.

    Args:
        workspace: The workspace whose warehouse dbt builds in.
        threads: dbt threads (models built at once); ``None`` for the project default (2).
        project: Another dbt project folder (tests and custom projects); default the shipped one.
    """

    def __init__(self, workspace: Workspace, *, threads: int | None = None, project: Path | None = None) -> None:
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
            raise InvalidInputError(f"The 'threads' parameter of DbtRunner must be an int >= 1. Got {threads!r}.")
        self.workspace = workspace
        self.threads = threads
        self.project = Path(project) if project is not None else project_dir()

    # -- paths -----------------------------------------------------------------------------
    @property
    def target_path(self) -> Path:
        """Where dbt writes manifest.json, run_results.json, catalog.json and the docs site."""
        return self.workspace.path("artifacts") / "dbt"

    @property
    def log_path(self) -> Path:
        """Where dbt writes dbt.log."""
        return self.workspace.path("logs") / "dbt"

    @property
    def docs_path(self) -> Path:
        """The single-file documentation site written by :meth:`docs`."""
        return self.target_path / "static_index.html"

    # -- commands --------------------------------------------------------------------------
    def build(
        self,
        *,
        select: Sequence[str] | None = None,
        freshness: bool = True,
        vars: dict[str, Any] | None = None,
        progress: ProgressCallback | None = None,
        actor: str = "system",
    ) -> BuildResult:
        """``dbt build``: models and their tests in dependency order, after source freshness.

        Args:
            select: dbt selectors (``marts``, ``+claim_features``); all nodes when empty.
            freshness: Check source freshness first (``dbt source freshness``); its results come
                first in :attr:`BuildResult.nodes` with kind ``source``.
            vars: Project variables, e.g. ``{"freshness_error_hours": 24}``.
            progress: Called with a :class:`BuildEvent` as each node starts and finishes.
            actor: Who asked, for the audit record (the build changes the marts).

        Returns:
            Every node's result; ``success`` is False when any node failed or dbt could not run.
        """
        started = time.perf_counter()
        nodes: list[NodeResult] = []
        errors: list[str] = []
        if freshness:
            fresh = self._invoke(["source", "freshness"], select=None, vars=vars, progress=progress)
            nodes.extend(fresh.nodes)
            if fresh.error:
                errors.append(fresh.error)
        built = self._invoke(["build"], select=select, vars=vars, progress=progress)
        nodes.extend(built.nodes)
        if built.error:
            errors.append(built.error)
        ok = not errors and all(n.ok for n in nodes)
        result = BuildResult(
            "build",
            ok,
            nodes,
            time.perf_counter() - started,
            str(self.target_path),
            str(self.log_path),
            "; ".join(errors),
        )
        self.workspace.audit.append(
            actor,
            "data.build",
            "dbt:" + ",".join(select or ["all"]),
            "success" if ok else "failure",
            {
                "counts": result.counts(),
                "seconds": round(result.seconds, 2),
                "error": result.error[:500],
                "failed": [f"{n.kind}:{n.name}" for n in result.failures][:50],
            },
        )
        return result

    def freshness(self, *, vars: dict[str, Any] | None = None, progress: ProgressCallback | None = None) -> BuildResult:
        """``dbt source freshness``: each source's newest ``loaded_at_field`` against its limits."""
        return self._invoke(["source", "freshness"], select=None, vars=vars, progress=progress)

    def docs(self) -> Path:
        """``dbt docs generate --static``: the catalog, lineage and a self-contained HTML site.

        Returns:
            The path of ``static_index.html``, which opens in a browser without a server.

        Raises:
            BackendError: dbt could not generate the docs (for example, no warehouse yet).
        """
        result = self._invoke(["docs", "generate", "--static"], select=None, vars=None, progress=None)
        if not result.success or not self.docs_path.exists():
            raise BackendError(
                f"dbt docs generate failed: {result.error or 'no static_index.html written'}",
                hint=f"see {self.log_path / 'dbt.log'}; run 'aiw data build' first",
            )
        return self.docs_path

    # -- internals -------------------------------------------------------------------------
    def _invoke(
        self,
        command: list[str],
        *,
        select: Sequence[str] | None,
        vars: dict[str, Any] | None,
        progress: ProgressCallback | None,
    ) -> BuildResult:
        from dbt.cli.main import dbtRunner

        if not self.workspace.warehouse_path.exists():
            raise NotFoundError(
                f"The warehouse {self.workspace.warehouse_path} does not exist yet",
                hint="run 'aiw data generate' first",
            )
        self.target_path.mkdir(parents=True, exist_ok=True)
        self.log_path.mkdir(parents=True, exist_ok=True)
        args = [
            *command,
            "--project-dir",
            str(self.project),
            "--profiles-dir",
            str(self.project),
            "--target-path",
            str(self.target_path),
            "--log-path",
            str(self.log_path),
            "--log-level",
            "none",
            "--log-level-file",
            "info",
            "--no-use-colors",
            "--no-send-anonymous-usage-stats",
            "--no-version-check",
        ]
        if self.threads is not None and command[0] != "docs":
            args += ["--threads", str(self.threads)]
        if select:
            args += ["--select", *select]
        if vars:
            import json

            args += ["--vars", json.dumps(vars)]
        callbacks = [_EventBridge(progress)] if progress is not None else []
        name = " ".join(c for c in command if not c.startswith("--"))
        started = time.perf_counter()
        with (
            _LOCK,
            _environment(
                AIW_DBT_DUCKDB_PATH=str(self.workspace.warehouse_path), DBT_SEND_ANONYMOUS_USAGE_STATS="False"
            ),
        ):
            try:
                outcome = dbtRunner(callbacks=callbacks).invoke(args)  # type: ignore[arg-type]
            finally:
                _release_warehouse()
        seconds = time.perf_counter() - started
        nodes = _nodes(outcome.result)
        error = ""
        if outcome.exception is not None:
            error = _first_line(str(outcome.exception))
        elif not outcome.success and not nodes:
            error = f"dbt {name} failed before running any node"
        ok = outcome.success and not error and all(n.ok for n in nodes)
        # dbt marks a freshness warning as success=False only on error; keep its verdict for nodes.
        return BuildResult(name, ok, nodes, seconds, str(self.target_path), str(self.log_path), error)


class _EventBridge:
    """Turns dbt's structured events into :class:`BuildEvent` for a progress callback."""

    def __init__(self, progress: ProgressCallback) -> None:
        self.progress = progress

    def __call__(self, event: Any) -> None:
        kind = event.info.name
        try:
            if kind == "LogStartLine":
                info = event.data.node_info
                self.progress(
                    BuildEvent(
                        "start",
                        info.node_name,
                        _kind(info.resource_type),
                        int(event.data.index) or None,
                        int(event.data.total) or None,
                    )
                )
            elif kind == "NodeFinished":
                info = event.data.node_info
                status = event.data.run_result.status or info.node_status
                self.progress(BuildEvent("finish", info.node_name, _kind(info.resource_type), status=status))
        except Exception:  # a broken progress display must never fail the build; dbt would swallow it anyway
            return


def _release_warehouse() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in-process after a run.

    Left open, it holds the file's write lock (other processes cannot open it) and makes every
    later in-process connection with other options (read-only) fail.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # another adapter: nothing of ours to release
        return
    env = DuckDBConnectionManager._ENV
    if env is not None and hasattr(env, "close"):
        env.close()
    DuckDBConnectionManager.close_all_connections()


def _kind(resource_type: str) -> str:
    return {"data_test": "test", "unit_test": "test"}.get(resource_type, resource_type or "node")


def _nodes(result: Any) -> list[NodeResult]:
    out: list[NodeResult] = []
    for item in getattr(result, "results", None) or []:
        node = getattr(item, "node", None)
        if node is None:
            continue
        status = str(getattr(item.status, "value", item.status))
        message = item.message or ""
        if getattr(node, "resource_type", "") == "source" and hasattr(item, "age"):
            message = message or f"newest row {item.age / 3600:.1f} h old"
        failures = getattr(item, "failures", None)
        out.append(
            NodeResult(
                name=node.name if getattr(node, "resource_type", "") != "source" else f"{node.source_name}.{node.name}",
                kind=_kind(str(getattr(node.resource_type, "value", node.resource_type))),
                status=status,
                seconds=float(getattr(item, "execution_time", 0.0) or 0.0),
                message=_first_line(str(message)),
                unique_id=node.unique_id,
                failures=int(failures) if failures is not None else None,
            )
        )
    return out


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Set environment variables for the length of a dbt run, then restore them."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
