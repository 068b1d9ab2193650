"""``aiw pipelines``: run named pipelines, list runs, schedule them, deploy them to Prefect."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer

from aiw.cli._common import actor, console, fail, table, workspace

if TYPE_CHECKING:
    from aiw.pipelines.runner import PipelineRun

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True)

_STYLE = {
    "success": "green",
    "skipped": "dim",
    "failed": "red",
    "upstream_failed": "red",
    "running": "yellow",
    "pending": "dim",
}


def _styled(status: str) -> str:
    return f"[{_STYLE.get(status, 'white')}]{status}[/]"


def _params(pairs: list[str] | None) -> dict[str, str]:
    from aiw.errors import InvalidInputError

    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"--param takes key=value. Got {pair!r}.")
        out[key.strip()] = value
    return out


def _show(run: PipelineRun) -> None:
    table(
        f"{run.pipeline} run {run.id} ({run.seconds or 0:.1f} s)",
        ["step", "status", "attempts", "seconds", "note"],
        [
            (
                s.step,
                _styled(s.status),
                s.attempts,
                f"{s.seconds:.2f}" if s.seconds is not None else "",
                s.error or ", ".join(f"{k}={v}" for k, v in list(s.output.items())[:3]),
            )
            for s in run.steps
        ],
    )
    console.print(f"status [bold]{run.status}[/]; artifacts and logs in {run.artifacts_dir}")


@app.command("list")
def list_pipelines() -> None:
    """The named pipelines and their steps."""
    from aiw.pipelines.definitions import PIPELINES

    rows = []
    for name, build in sorted(PIPELINES.items()):
        p = build()
        rows.append((name, " -> ".join(p.order()), p.description))
    table("Pipelines", ["name", "steps (one valid order)", "description"], rows)


@app.command("run")
def run(
    name: str = typer.Argument(..., help="daily-validation, training or embedding-refresh."),
    param: list[str] = typer.Option(None, "--param", "-p", help="key=value handed to every step (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print the run record as JSON."),
) -> None:
    """Run a pipeline now, in this process; exit non-zero when a step fails."""
    from aiw.pipelines.definitions import get_pipeline
    from aiw.pipelines.runner import PipelineRunner

    ws = workspace()
    pipeline = get_pipeline(name)
    with console.status(f"running {name} ..."):
        record = PipelineRunner(ws, ws.settings).run(pipeline, params=_params(param), actor=actor())
    if as_json:
        console.print_json(json.dumps(record.as_dict(), default=str))
    else:
        _show(record)
    if record.status != "success":
        fail(f"pipeline {name} failed: {record.error}", 1)


@app.command("runs")
def runs(
    name: str = typer.Option(None, "--pipeline", help="Only runs of this pipeline."),
    limit: int = typer.Option(20, "--limit", min=1, max=1000, help="How many runs."),
    run_id: str = typer.Option(None, "--id", help="Show one run (id or a unique prefix) step by step."),
) -> None:
    """The latest pipeline runs, or one run in detail."""
    from aiw.pipelines.runner import PipelineRunner

    ws = workspace()
    runner = PipelineRunner(ws, ws.settings)
    if run_id:
        _show(runner.get(run_id))
        return
    table(
        "Pipeline runs",
        ["run", "pipeline", "status", "trigger", "started (UTC)", "seconds", "error"],
        [
            (
                r.id[:12],
                r.pipeline,
                _styled(r.status),
                r.trigger,
                f"{r.started_at:%Y-%m-%d %H:%M:%S}",
                f"{r.seconds:.1f}" if r.seconds is not None else "",
                r.error[:120],
            )
            for r in runner.runs(name, limit)
        ],
    )


@app.command("schedule")
def schedule(
    cron: str = typer.Option(None, "--cron", help="Cron (UTC) of daily-validation; default from the settings."),
) -> None:
    """Run the schedules in the foreground (daily-validation at 06:00 UTC by default); Ctrl-C stops."""
    from aiw.pipelines.schedule import build_scheduler, default_schedules

    ws = workspace()
    schedules = default_schedules(ws.settings)
    if cron:
        schedules["daily-validation"] = cron

    def on_finish(record: PipelineRun) -> None:
        console.print(
            f"{record.finished_at:%Y-%m-%d %H:%M:%S} UTC {record.pipeline} {record.id[:12]}: "
            f"{_styled(record.status)} {record.error}"
        )

    scheduler = build_scheduler(ws, ws.settings, schedules=schedules, on_finish=on_finish)
    now = datetime.now(UTC)
    for job in scheduler.get_jobs():
        console.print(
            f"scheduled [bold]{job.id}[/]: {schedules[job.id]} (UTC), next at "
            f"{job.trigger.get_next_fire_time(None, now):%Y-%m-%d %H:%M} UTC"
        )
    console.print("press Ctrl-C to stop")
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        scheduler.shutdown(wait=False)


@app.command("deploy")
def deploy(
    prefect: bool = typer.Option(False, "--prefect", help="Serve the pipelines as Prefect deployments."),
    name: list[str] = typer.Option(None, "--pipeline", help="Only these pipelines (repeatable)."),
) -> None:
    """Deploy the pipelines to an orchestrator (Prefect: needs PREFECT_API_URL); blocks like a worker."""
    if not prefect:
        fail("choose an orchestrator: aiw pipelines deploy --prefect", 2)
    from aiw.pipelines.prefect_flows import deploy as prefect_deploy
    from aiw.pipelines.prefect_flows import require_prefect_server
    from aiw.pipelines.schedule import default_schedules

    url = require_prefect_server()
    ws = workspace()
    ws.audit.append(actor(), "pipelines.deploy", "prefect", "success", {"pipelines": name or "all", "api": url})
    console.print(f"serving {', '.join(name or ['all pipelines'])} as Prefect deployments on {url}; Ctrl-C stops")
    prefect_deploy(str(ws.root), default_schedules(ws.settings), names=name or None)
