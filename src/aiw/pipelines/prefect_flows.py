"""The same pipelines as Prefect flows, for teams with a Prefect server and workers.

Each named pipeline is a flow (``aiw-daily-validation``, ``aiw-training``,
``aiw-embedding-refresh``) whose tasks are the pipeline's steps, submitted with their
dependencies, so Prefect shows the DAG, runs independent branches concurrently and enforces each
step's timeout. The steps themselves are the very functions the embedded runner calls, with the
same retries (tenacity, inside the task) and the same run record in the metadata database
(trigger ``prefect``): a run looks the same whichever runner ran it.

Importing this module imports Prefect (a few seconds): only ``aiw pipelines deploy --prefect``
and the tests do.
"""

from __future__ import annotations

import os
from typing import Any

from prefect import allow_failure, flow, task
from prefect.cache_policies import NO_CACHE

from aiw.errors import ConfigError, PipelineError
from aiw.pipelines.dag import Pipeline, Step
from aiw.pipelines.runner import PipelineRun, PipelineRunner, StepRun, execute_step, raise_for_failure

__all__ = [
    "FLOWS",
    "daily_validation_flow",
    "deploy",
    "embedding_refresh_flow",
    "require_prefect_server",
    "run_flow",
    "training_flow",
]


def _runner(home: str | None) -> PipelineRunner:
    from aiw.settings import build_settings
    from aiw.workspace import Workspace

    settings = build_settings(**({"home": home} if home else {}))
    return PipelineRunner(Workspace(settings).ensure(), settings)


def run_flow(
    pipeline_name: str, home: str | None = None, params: dict[str, Any] | None = None, actor: str = "prefect"
) -> PipelineRun:
    """The body of every flow: the pipeline's steps as Prefect tasks, recorded like embedded runs.

    Must be called inside a Prefect flow run.

    Raises:
        PipelineError: a step failed (the flow run then ends Failed; the record says why).
    """
    from aiw.pipelines.definitions import get_pipeline

    pipeline: Pipeline = get_pipeline(pipeline_name)
    runner = _runner(home)
    cfg = runner.settings.pipelines
    run = runner.start(pipeline, params=params, actor=actor, trigger="prefect")
    steps = {s.step: s for s in run.steps}
    futures: dict[str, Any] = {}
    for name in pipeline.order():
        step = pipeline.step(name)
        body = task(
            name=name,
            retries=0,
            cache_policy=NO_CACHE,
            persist_result=False,
            timeout_seconds=step.timeout_s if step.timeout_s is not None else cfg.step_timeout_s,
            description=step.description or None,
        )(_step_body)
        futures[name] = body.submit(
            runner,
            run,
            pipeline,
            step,
            steps,  # type: ignore[call-overload]
            wait_for=[allow_failure(futures[d]) for d in step.depends_on],
        )
    for name, future in futures.items():
        state = future.wait() or future.state
        if state is not None and state.is_failed() and steps[name].status in ("pending", "running"):
            # Prefect stopped the task itself (its timeout): record it as the embedded runner would
            rec = steps[name]
            rec.status, rec.error = "failed", f"Prefect ended the task: {state.message or state.name}"
            runner.store.update_step(run.id, rec)
    return raise_for_failure(runner.finish(run))


def _step_body(
    runner: PipelineRunner, run: PipelineRun, pipeline: Pipeline, step: Step, steps: dict[str, StepRun]
) -> dict[str, Any]:
    from datetime import UTC, datetime

    rec = steps[step.name]
    failed_up = [d for d in step.depends_on if steps[d].status not in ("success", "skipped")]
    if failed_up and step.trigger == "all_success":
        rec.status, rec.error = "upstream_failed", f"not run: {', '.join(failed_up)} did not succeed"
        runner.store.update_step(run.id, rec)
        return {}
    rec.status, rec.started_at = "running", datetime.now(UTC)
    runner.store.update_step(run.id, rec)
    cfg = runner.settings.pipelines
    status, output, error, attempts = execute_step(
        step,
        runner.context(run, pipeline, step, steps),
        retries=step.retries if step.retries is not None else cfg.retries,
        backoff_s=cfg.retry_backoff_s,
    )
    rec.status, rec.output, rec.error, rec.attempts = status, output, error, attempts
    rec.finished_at = datetime.now(UTC)
    rec.seconds = (rec.finished_at - rec.started_at).total_seconds()
    runner.store.update_step(run.id, rec)
    if status == "failed":
        raise PipelineError(f"step {step.name!r} failed: {error}")
    return output


@flow(name="aiw-daily-validation", description="dbt build, quality gates, embedding refresh, serving drift, report.")
def daily_validation_flow(home: str | None = None, params: dict[str, Any] | None = None) -> str:
    """The ``daily-validation`` pipeline as a Prefect flow; returns the run id."""
    return run_flow("daily-validation", home, params).id


@flow(name="aiw-training", description="Features, train, evaluate, register, request approval.")
def training_flow(home: str | None = None, params: dict[str, Any] | None = None) -> str:
    """The ``training`` pipeline as a Prefect flow; returns the run id."""
    return run_flow("training", home, params).id


@flow(name="aiw-embedding-refresh", description="Rebuild the document index and refresh its embeddings.")
def embedding_refresh_flow(home: str | None = None, params: dict[str, Any] | None = None) -> str:
    """The ``embedding-refresh`` pipeline as a Prefect flow; returns the run id."""
    return run_flow("embedding-refresh", home, params).id


FLOWS = {
    "daily-validation": daily_validation_flow,
    "training": training_flow,
    "embedding-refresh": embedding_refresh_flow,
}
"""Pipeline name -> its Prefect flow."""


def require_prefect_server() -> str:
    """The Prefect server's API URL.

    Raises:
        ConfigError: ``PREFECT_API_URL`` is not set: deployments need a Prefect server.
    """
    url = os.environ.get("PREFECT_API_URL", "")
    if not url:
        raise ConfigError(
            "Deploying to Prefect needs a Prefect server: PREFECT_API_URL is not set",
            hint="start one with 'prefect server start' and export PREFECT_API_URL=http://127.0.0.1:4200/api",
        )
    return url


def deploy(home: str, schedules: dict[str, str], *, names: list[str] | None = None) -> None:
    """Serve the pipelines as Prefect deployments (blocks, like a worker, until interrupted).

    Args:
        home: The workspace every flow run opens.
        schedules: Pipeline name -> cron (UTC); pipelines without one are run on demand.
        names: The pipelines to deploy; default all.

    Raises:
        ConfigError: ``PREFECT_API_URL`` is not set: deployments need a Prefect server.
    """
    from prefect import serve

    require_prefect_server()
    chosen = names or list(FLOWS)
    deployments = []
    for name in chosen:
        if name not in FLOWS:
            raise ConfigError(f"No pipeline {name!r}; known: {', '.join(FLOWS)}")
        deployments.append(FLOWS[name].to_deployment(name=name, cron=schedules.get(name), parameters={"home": home}))
    serve(*deployments)  # type: ignore[arg-type]
