"""The embedded pipeline runner: a DAG on :mod:`graphlib`, steps on threads, retries with tenacity.

:class:`PipelineRunner` runs every step whose dependencies are done, up to
``pipelines.max_workers`` at once (parallel branches), retries a step that fails with a
transient error (exponential backoff from ``pipelines.retry_backoff_s``), fails a step that runs
past its timeout, and keeps a run record in the metadata database that says which step failed
and why. A failed step stops its dependants (``upstream_failed``), never independent branches.

Python cannot kill a thread: a step that times out is told to stop (``ctx.cancelled``) and its
result, should it still arrive, is ignored.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from aiw.db.schema import pipeline_runs, pipeline_step_runs
from aiw.errors import InvalidInputError, NotFoundError, PipelineError
from aiw.pipelines.dag import Pipeline, SkipStep, Step, StepContext

if TYPE_CHECKING:
    from aiw.settings import Settings
    from aiw.workspace import Workspace

__all__ = ["PipelineRun", "PipelineRunner", "RunStore", "StepRun", "execute_step", "raise_for_failure"]

_DONE_OK = ("success", "skipped")
_TRIGGERS = ("manual", "schedule", "prefect", "tour", "api")


@dataclass
class StepRun:
    """One step of one run.

    Attributes:
        step: The step's name.
        status: ``pending``, ``running``, ``success``, ``skipped`` (nothing to do, with a reason),
            ``failed`` or ``upstream_failed`` (not run because a dependency failed).
        attempts: How many times it was tried.
        started_at: When it started (UTC).
        finished_at: When it finished (UTC).
        seconds: How long it ran.
        error: Why it failed or was skipped.
        output: What the step returned (JSON-ready).
    """

    step: str
    status: str = "pending"
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    seconds: float | None = None
    error: str = ""
    output: dict[str, Any] = field(default_factory=dict)


@dataclass
class PipelineRun:
    """One run of a pipeline and its steps.

    Attributes:
        id: The run id.
        pipeline: The pipeline's name.
        status: ``running``, ``success`` or ``failed``.
        trigger: ``manual``, ``schedule``, ``prefect``, ``tour`` or ``api``.
        actor: Who started it.
        started_at: When it started (UTC).
        finished_at: When it finished (UTC).
        params: The run's parameters.
        artifacts_dir: The run's artifacts and logs folder.
        error: Which steps failed and why; empty on success.
        steps: Every step, in a valid order.
    """

    id: str
    pipeline: str
    status: str
    trigger: str
    actor: str
    started_at: datetime
    finished_at: datetime | None
    params: dict[str, Any]
    artifacts_dir: str
    error: str = ""
    steps: list[StepRun] = field(default_factory=list)

    def step(self, name: str) -> StepRun:
        """The record of step ``name``."""
        for s in self.steps:
            if s.step == name:
                return s
        raise NotFoundError(f"The run {self.id} has no step {name!r}")

    @property
    def failed_steps(self) -> list[StepRun]:
        """Steps that failed (not those that only did not run)."""
        return [s for s in self.steps if s.status == "failed"]

    @property
    def seconds(self) -> float | None:
        """Wall time of the whole run."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready record."""
        return asdict(self)


def execute_step(
    step: Step, ctx: StepContext, *, retries: int, backoff_s: float
) -> tuple[str, dict[str, Any], str, int]:
    """Run one step with its retries; never raises.

    Returns:
        ``(status, output, error, attempts)``; status is ``success``, ``skipped`` or ``failed``.
    """
    from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

    attempts = 0

    def attempt() -> Mapping[str, Any] | None:
        nonlocal attempts
        attempts += 1
        if attempts > 1:
            ctx.log(f"attempt {attempts}")
        return step.fn(ctx)

    retrying = Retrying(
        stop=stop_after_attempt(retries + 1),
        wait=wait_exponential(multiplier=backoff_s, min=backoff_s, max=max(backoff_s, 300.0)),
        retry=retry_if_exception_type(step.retry_on),
        sleep=lambda seconds: _wait(ctx, seconds),  # a cancelled run stops waiting
        reraise=True,
    )
    ctx.log(f"start {step.name}")
    try:
        output = retrying(attempt)
    except SkipStep as skip:
        ctx.log(f"skipped: {skip.reason}")
        return "skipped", {"note": skip.reason}, skip.reason, attempts
    except RetryError as exc:  # not raised with reraise=True; kept for safety
        return "failed", {}, f"gave up after {attempts} attempts: {exc}", attempts
    except Exception as exc:
        ctx.log("failed:\n" + "".join(traceback.format_exception(exc)))
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return "failed", {}, f"{type(exc).__name__}: {text}" if text else type(exc).__name__, attempts
    if output is not None and not isinstance(output, Mapping):
        return "failed", {}, f"the step returned {type(output).__name__}, not a dict or None", attempts
    data = json.loads(json.dumps(dict(output or {}), default=str))
    ctx.log(f"done {step.name}")
    return "success", data, "", attempts


class RunStore:
    """Pipeline run records in the metadata database."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def create(self, run: PipelineRun) -> None:
        """Insert the run and its pending steps."""
        with self.workspace.db.begin() as db:
            db.execute(
                pipeline_runs.insert().values(
                    id=run.id,
                    pipeline=run.pipeline,
                    status=run.status,
                    trigger=run.trigger,
                    actor=run.actor,
                    started_at=run.started_at,
                    finished_at=None,
                    params=json.dumps(run.params, default=str),
                    artifacts_dir=run.artifacts_dir,
                    error="",
                )
            )
            db.execute(
                pipeline_step_runs.insert(),
                [
                    {
                        "run_id": run.id,
                        "step": s.step,
                        "status": s.status,
                        "attempts": 0,
                        "started_at": None,
                        "finished_at": None,
                        "seconds": None,
                        "error": "",
                        "output": "{}",
                    }
                    for s in run.steps
                ],
            )

    def update_step(self, run_id: str, s: StepRun) -> None:
        """Store the step's current state."""
        with self.workspace.db.begin() as db:
            db.execute(
                pipeline_step_runs.update()
                .where(pipeline_step_runs.c.run_id == run_id, pipeline_step_runs.c.step == s.step)
                .values(
                    status=s.status,
                    attempts=s.attempts,
                    started_at=s.started_at,
                    finished_at=s.finished_at,
                    seconds=s.seconds,
                    error=s.error[:4000],
                    output=json.dumps(s.output, default=str),
                )
            )

    def finish(self, run: PipelineRun) -> None:
        """Store the run's outcome and audit it."""
        with self.workspace.db.begin() as db:
            db.execute(
                pipeline_runs.update()
                .where(pipeline_runs.c.id == run.id)
                .values(status=run.status, finished_at=run.finished_at, error=run.error[:8000])
            )
            self.workspace.audit.append(
                run.actor,
                "pipelines.run",
                f"pipeline:{run.pipeline}/{run.id}",
                "success" if run.status == "success" else "failure",
                {
                    "trigger": run.trigger,
                    "status": run.status,
                    "error": run.error[:500],
                    "steps": {s.step: s.status for s in run.steps},
                },
                conn=db,
            )

    def get(self, run_id: str) -> PipelineRun:
        """One run with its steps.

        Raises:
            NotFoundError: no run has this id (a unique prefix of 6 or more characters is accepted).
        """
        with self.workspace.db.begin() as db:
            row = db.execute(sa.select(pipeline_runs).where(pipeline_runs.c.id == run_id)).mappings().first()
            if row is None and len(run_id) >= 6:
                rows = (
                    db.execute(sa.select(pipeline_runs).where(pipeline_runs.c.id.like(f"{run_id}%")).limit(2))
                    .mappings()
                    .all()
                )
                row = rows[0] if len(rows) == 1 else None
            if row is None:
                raise NotFoundError(f"No pipeline run {run_id!r}", hint="list them with 'aiw pipelines runs'")
            steps = (
                db.execute(
                    sa.select(pipeline_step_runs)
                    .where(pipeline_step_runs.c.run_id == row["id"])
                    .order_by(pipeline_step_runs.c.id)
                )
                .mappings()
                .all()
            )
        return _run_from(row, steps)

    def list(self, pipeline: str | None = None, limit: int = 20) -> list[PipelineRun]:
        """The latest runs (newest first), optionally of one pipeline."""
        if not isinstance(limit, int) or limit < 1:
            raise InvalidInputError(f"The 'limit' parameter must be an int >= 1. Got {limit!r}.")
        query = sa.select(pipeline_runs).order_by(pipeline_runs.c.started_at.desc()).limit(limit)
        if pipeline:
            query = query.where(pipeline_runs.c.pipeline == pipeline)
        with self.workspace.db.begin() as db:
            rows = db.execute(query).mappings().all()
            ids = [r["id"] for r in rows]
            steps = (
                db.execute(
                    sa.select(pipeline_step_runs)
                    .where(pipeline_step_runs.c.run_id.in_(ids))
                    .order_by(pipeline_step_runs.c.id)
                )
                .mappings()
                .all()
                if ids
                else []
            )
        by_run: dict[str, list[Any]] = {}
        for s in steps:
            by_run.setdefault(s["run_id"], []).append(s)
        return [_run_from(r, by_run.get(r["id"], [])) for r in rows]


class PipelineRunner:
    """Runs pipelines in-process and records every run.

    Args:
        workspace: The workspace (metadata database, artifacts folder).
        settings: The platform settings; ``settings.pipelines`` gives workers, retries, backoff
            and the default step timeout, and steps read the rest.
    """

    def __init__(self, workspace: Workspace, settings: Settings) -> None:
        self.workspace = workspace
        self.settings = settings
        self.store = RunStore(workspace)

    def run(
        self,
        pipeline: Pipeline,
        *,
        params: Mapping[str, Any] | None = None,
        actor: str = "system",
        trigger: str = "manual",
    ) -> PipelineRun:
        """Run ``pipeline`` to the end and return its record (a failed run is returned, not raised).

        Args:
            pipeline: The pipeline.
            params: Parameters every step sees as ``ctx.params``.
            actor: Who started it, for the record and the audit log.
            trigger: ``manual``, ``schedule``, ``prefect``, ``tour`` or ``api``.
        """
        if trigger not in _TRIGGERS:
            raise InvalidInputError(f"The 'trigger' parameter must be one of {_TRIGGERS}. Got {trigger!r}.")
        run = self.start(pipeline, params=params, actor=actor, trigger=trigger)
        steps = {s.step: s for s in run.steps}
        cfg = self.settings.pipelines
        sorter = pipeline.sorter()
        sorter.prepare()
        results: queue.Queue[tuple[str, tuple[str, dict[str, Any], str, int]]] = queue.Queue()
        running: dict[str, tuple[float, StepContext]] = {}
        ready: deque[str] = deque()
        while sorter.is_active():
            ready.extend(sorter.get_ready())
            while ready and len(running) < cfg.max_workers:
                name = ready.popleft()
                step = pipeline.step(name)
                failed_up = [d for d in step.depends_on if steps[d].status not in _DONE_OK]
                if failed_up and step.trigger == "all_success":
                    rec = steps[name]
                    rec.status, rec.error = "upstream_failed", f"not run: {', '.join(failed_up)} did not succeed"
                    self.store.update_step(run.id, rec)
                    sorter.done(name)
                    continue
                ctx = self.context(run, pipeline, step, steps)
                rec = steps[name]
                rec.status, rec.started_at = "running", datetime.now(UTC)
                self.store.update_step(run.id, rec)
                timeout = step.timeout_s if step.timeout_s is not None else cfg.step_timeout_s
                retries = step.retries if step.retries is not None else cfg.retries
                running[name] = (time.monotonic() + timeout, ctx)
                threading.Thread(
                    target=_worker,
                    args=(step, ctx, retries, cfg.retry_backoff_s, results),
                    name=f"aiw-step-{name}",
                    daemon=True,
                ).start()
            if not running:
                continue  # only skipped steps were ready; ask the sorter again
            wait = max(0.0, min(deadline for deadline, _ in running.values()) - time.monotonic())
            try:
                name, (status, output, error, attempts) = results.get(timeout=wait)
            except queue.Empty:
                now = time.monotonic()
                for late in [n for n, (deadline, _) in running.items() if deadline <= now]:
                    _, ctx = running.pop(late)
                    ctx.cancelled.set()
                    timeout = pipeline.step(late).timeout_s or cfg.step_timeout_s
                    self._finish_step(run, steps[late], "failed", {}, f"timed out after {timeout:g} s", 1)
                    ctx.log(f"timed out after {timeout:g} s")
                    sorter.done(late)
                continue
            if name not in running:
                continue  # a step that already timed out came back late: its verdict stands
            running.pop(name)
            self._finish_step(run, steps[name], status, output, error, attempts)
            sorter.done(name)
        return self.finish(run)

    # -- building blocks shared with the Prefect flows ---------------------------------------
    def start(self, pipeline: Pipeline, *, params: Mapping[str, Any] | None, actor: str, trigger: str) -> PipelineRun:
        """Create and store a run record with every step pending."""
        run_id = uuid.uuid4().hex
        folder = self.workspace.path("artifacts") / "pipelines" / pipeline.name / run_id
        folder.mkdir(parents=True, exist_ok=True)
        run = PipelineRun(
            run_id,
            pipeline.name,
            "running",
            trigger,
            actor,
            datetime.now(UTC),
            None,
            dict(params or {}),
            str(folder),
            "",
            [StepRun(n) for n in pipeline.order()],
        )
        self.store.create(run)
        return run

    def context(self, run: PipelineRun, pipeline: Pipeline, step: Step, steps: Mapping[str, StepRun]) -> StepContext:
        """The context a step of ``run`` gets, with its dependencies' results."""
        upstream = {
            d: {"status": steps[d].status, "output": steps[d].output, "error": steps[d].error} for d in step.depends_on
        }
        return StepContext(
            self.workspace,
            self.settings,
            pipeline.name,
            run.id,
            step.name,
            dict(run.params),
            Path(run.artifacts_dir),
            upstream,
            run.actor,
        )

    def finish(self, run: PipelineRun) -> PipelineRun:
        """Settle the run's status and error, store them, and write ``run.json`` beside its artifacts."""
        run.finished_at = datetime.now(UTC)
        bad = [s for s in run.steps if s.status not in _DONE_OK]
        run.status = "failed" if bad else "success"
        failed = [f"step {s.step!r} failed: {s.error}" for s in run.steps if s.status == "failed"]
        blocked = [s.step for s in run.steps if s.status == "upstream_failed"]
        run.error = "; ".join(failed + ([f"not run: {', '.join(blocked)}"] if blocked else []))
        self.store.finish(run)
        folder = Path(run.artifacts_dir)
        tmp = folder / ".run.json.tmp"
        tmp.write_text(json.dumps(run.as_dict(), indent=2, default=str), encoding="utf-8")
        tmp.replace(folder / "run.json")
        return run

    def _finish_step(
        self, run: PipelineRun, rec: StepRun, status: str, output: dict[str, Any], error: str, attempts: int
    ) -> None:
        rec.status, rec.output, rec.error, rec.attempts = status, output, error, attempts
        rec.finished_at = datetime.now(UTC)
        rec.seconds = (rec.finished_at - rec.started_at).total_seconds() if rec.started_at else None
        self.store.update_step(run.id, rec)

    # -- history ---------------------------------------------------------------------------
    def runs(self, pipeline: str | None = None, limit: int = 20) -> list[PipelineRun]:
        """The latest runs, newest first."""
        return self.store.list(pipeline, limit)

    def get(self, run_id: str) -> PipelineRun:
        """One run by id (or a unique prefix)."""
        return self.store.get(run_id)


def _wait(ctx: StepContext, seconds: float) -> None:
    ctx.cancelled.wait(seconds)


def _worker(
    step: Step,
    ctx: StepContext,
    retries: int,
    backoff_s: float,
    results: queue.Queue[tuple[str, tuple[str, dict[str, Any], str, int]]],
) -> None:
    results.put((step.name, execute_step(step, ctx, retries=retries, backoff_s=backoff_s)))


def _run_from(row: Any, steps: Any) -> PipelineRun:
    return PipelineRun(
        id=row["id"],
        pipeline=row["pipeline"],
        status=row["status"],
        trigger=row["trigger"],
        actor=row["actor"],
        started_at=_aware(row["started_at"]) or datetime.now(UTC),
        finished_at=_aware(row["finished_at"]),
        params=json.loads(row["params"]),
        artifacts_dir=row["artifacts_dir"],
        error=row["error"],
        steps=[
            StepRun(
                s["step"],
                s["status"],
                s["attempts"],
                _aware(s["started_at"]),
                _aware(s["finished_at"]),
                s["seconds"],
                s["error"],
                json.loads(s["output"]),
            )
            for s in steps
        ],
    )


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands timestamps back naive; they were stored in UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def raise_for_failure(run: PipelineRun) -> PipelineRun:
    """Raise :class:`PipelineError` naming the failed steps when ``run`` failed; else return it."""
    if run.status != "success":
        raise PipelineError(
            f"Pipeline {run.pipeline!r} run {run.id[:12]} failed: {run.error}", hint=f"logs in {run.artifacts_dir}/logs"
        )
    return run
