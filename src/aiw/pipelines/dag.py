"""Pipelines as data: steps, their dependencies and what a step gets when it runs.

A :class:`Pipeline` is a named DAG of :class:`Step` s. A step is a plain function
``fn(ctx: StepContext) -> dict | None``; what it returns is stored as its output and handed to
its dependants through ``ctx.upstream``. A step that has nothing to do raises :class:`SkipStep`
with a reason (recorded; its dependants still run). Any other exception fails the step: its
dependants do not run (``upstream_failed``), independent branches do, and a step with
``trigger="all_done"`` (a summary report) runs whatever happened upstream.
"""

from __future__ import annotations

import graphlib
import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from aiw.errors import InvalidInputError, TransientBackendError

if TYPE_CHECKING:
    from aiw.settings import Settings
    from aiw.workspace import Workspace

__all__ = ["DEFAULT_RETRY_ON", "Pipeline", "SkipStep", "Step", "StepContext", "Trigger"]

Trigger = Literal["all_success", "all_done"]
DEFAULT_RETRY_ON: tuple[type[BaseException], ...] = (TransientBackendError, ConnectionError, TimeoutError)
"""Errors worth retrying: a backend that is briefly away. Everything else fails at once."""

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


class SkipStep(Exception):
    """Raised by a step that has nothing to do; the reason is recorded and dependants still run."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Step:
    """One step of a pipeline.

    Attributes:
        name: Unique in its pipeline: lower case letters, digits, ``_`` and ``-``.
        fn: ``fn(ctx) -> dict | None``; the dict (JSON-ready) is the step's output.
        depends_on: Names of the steps that must finish first.
        retries: Retries after a failure of a type in ``retry_on``; ``None`` uses the settings.
        timeout_s: Longest run, retries included; ``None`` uses the settings.
        retry_on: Exception types that are retried (others fail the step at once).
        trigger: ``all_success`` runs only when every dependency succeeded or skipped;
            ``all_done`` runs once they finished, whatever their outcome.
        description: One line for people.
    """

    name: str
    fn: Callable[[StepContext], Mapping[str, Any] | None]
    depends_on: tuple[str, ...] = ()
    retries: int | None = None
    timeout_s: float | None = None
    retry_on: tuple[type[BaseException], ...] = DEFAULT_RETRY_ON
    trigger: Trigger = "all_success"
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise InvalidInputError(f"A step name must match {_NAME.pattern}. Got {self.name!r}.")
        if not callable(self.fn):
            raise InvalidInputError(f"The 'fn' of step {self.name!r} must be callable. Got {self.fn!r}.")
        if self.retries is not None and (not isinstance(self.retries, int) or self.retries < 0):
            raise InvalidInputError(f"The 'retries' of step {self.name!r} must be an int >= 0. Got {self.retries!r}.")
        if self.timeout_s is not None and not (isinstance(self.timeout_s, int | float) and self.timeout_s > 0):
            raise InvalidInputError(f"The 'timeout_s' of step {self.name!r} must be > 0. Got {self.timeout_s!r}.")
        if self.trigger not in ("all_success", "all_done"):
            raise InvalidInputError(
                f"The 'trigger' of step {self.name!r} must be all_success or all_done. Got {self.trigger!r}."
            )
        object.__setattr__(self, "depends_on", tuple(self.depends_on))


@dataclass(frozen=True)
class Pipeline:
    """A named DAG of steps.

    Raises:
        InvalidInputError: a duplicate step, an unknown dependency, or a cycle.
    """

    name: str
    steps: tuple[Step, ...]
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise InvalidInputError(f"A pipeline name must match {_NAME.pattern}. Got {self.name!r}.")
        object.__setattr__(self, "steps", tuple(self.steps))
        if not self.steps:
            raise InvalidInputError(f"The pipeline {self.name!r} has no steps.")
        names = [s.name for s in self.steps]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InvalidInputError(f"The pipeline {self.name!r} has duplicate steps {dupes}.")
        for step in self.steps:
            unknown = [d for d in step.depends_on if d not in names]
            if unknown:
                raise InvalidInputError(f"Step {step.name!r} of {self.name!r} depends on unknown steps {unknown}.")
        try:
            tuple(self.sorter().static_order())
        except graphlib.CycleError as exc:
            raise InvalidInputError(f"The pipeline {self.name!r} has a cycle: {' -> '.join(exc.args[1])}.") from exc

    def step(self, name: str) -> Step:
        """The step called ``name``."""
        for s in self.steps:
            if s.name == name:
                return s
        raise InvalidInputError(f"The pipeline {self.name!r} has no step {name!r}.")

    def sorter(self) -> graphlib.TopologicalSorter[str]:
        """A fresh topological sorter over the steps."""
        return graphlib.TopologicalSorter({s.name: set(s.depends_on) for s in self.steps})

    def order(self) -> list[str]:
        """One valid order of the steps."""
        return list(self.sorter().static_order())

    def dependants(self, name: str) -> set[str]:
        """Every step that depends on ``name``, directly or not."""
        out: set[str] = set()
        frontier = [name]
        while frontier:
            current = frontier.pop()
            for s in self.steps:
                if current in s.depends_on and s.name not in out:
                    out.add(s.name)
                    frontier.append(s.name)
        return out


@dataclass
class StepContext:
    """What a running step gets.

    Attributes:
        workspace: The workspace.
        settings: The platform settings.
        pipeline: The pipeline's name.
        run_id: The run's id.
        step: This step's name.
        params: The run's parameters (``aiw pipelines run NAME --param k=v``).
        artifacts_dir: This run's folder for artifacts (reports, exports).
        upstream: Outputs (or statuses) of the steps this one depends on, by step name: each is
            ``{"status": ..., "output": {...}, "error": "..."}``.
        actor: Who started the run.
        cancelled: Set when the step timed out or the run is stopping; long steps should check it.
    """

    workspace: Workspace
    settings: Settings
    pipeline: str
    run_id: str
    step: str
    params: dict[str, Any]
    artifacts_dir: Path
    upstream: dict[str, dict[str, Any]] = field(default_factory=dict)
    actor: str = "system"
    cancelled: threading.Event = field(default_factory=threading.Event)

    @property
    def log_path(self) -> Path:
        """This step's log file."""
        return self.artifacts_dir / "logs" / f"{self.step}.log"

    def log(self, message: str) -> None:
        """Append a line to this step's log (UTC time stamped)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a", encoding="utf-8") as fh:
            fh.write(f"{datetime.now(UTC).isoformat(timespec='milliseconds')} {message}\n")

    def write_artifact(self, name: str, content: str | bytes | Mapping[str, Any] | Sequence[Any]) -> Path:
        """Write ``content`` (text, bytes or JSON-ready data) to ``artifacts_dir / name`` atomically."""
        from aiw.workspace import safe_join

        path = safe_join(self.artifacts_dir, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        if isinstance(content, bytes):
            tmp.write_bytes(content)
        elif isinstance(content, str):
            tmp.write_text(content, encoding="utf-8")
        else:
            tmp.write_text(json.dumps(content, indent=2, default=str), encoding="utf-8")
        tmp.replace(path)
        return path
