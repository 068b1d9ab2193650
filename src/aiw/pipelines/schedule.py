"""Schedules: APScheduler runs named pipelines on cron expressions (UTC), in the foreground.

``daily-validation`` runs at ``pipelines.daily_validation_cron`` (06:00 UTC by default); more
schedules can be added per call. One run of a pipeline at a time; a missed run (the machine was
off) is run once when the scheduler comes back within an hour, never several times.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC
from typing import TYPE_CHECKING, Any

from aiw.errors import ConfigError

if TYPE_CHECKING:
    from aiw.pipelines.runner import PipelineRun
    from aiw.settings import Settings
    from aiw.workspace import Workspace

__all__ = ["build_scheduler", "default_schedules", "run_scheduled"]

log = logging.getLogger("aiw.pipelines.schedule")


def default_schedules(settings: Settings) -> dict[str, str]:
    """Pipeline name -> cron (UTC) of the schedules the platform runs by default."""
    return {"daily-validation": settings.pipelines.daily_validation_cron}


def run_scheduled(
    workspace: Workspace, settings: Settings, name: str, on_finish: Callable[[PipelineRun], None] | None = None
) -> PipelineRun:
    """Run pipeline ``name`` as the scheduler does (actor ``scheduler``, trigger ``schedule``)."""
    from aiw.pipelines.definitions import get_pipeline
    from aiw.pipelines.runner import PipelineRunner

    run = PipelineRunner(workspace, settings).run(get_pipeline(name), actor="scheduler", trigger="schedule")
    log.info("scheduled %s run %s: %s %s", name, run.id, run.status, run.error)
    if on_finish is not None:
        on_finish(run)
    return run


def build_scheduler(
    workspace: Workspace,
    settings: Settings,
    *,
    schedules: Mapping[str, str] | None = None,
    blocking: bool = True,
    on_finish: Callable[[PipelineRun], None] | None = None,
) -> Any:
    """An APScheduler scheduler with one cron job per pipeline (not started).

    Args:
        workspace: The workspace the runs use.
        settings: The platform settings.
        schedules: Pipeline name -> cron expression (UTC); default :func:`default_schedules`.
        blocking: A ``BlockingScheduler`` (foreground, ``aiw pipelines schedule``) or a
            ``BackgroundScheduler`` (tests, embedding in a server).
        on_finish: Called with each finished run (the CLI prints a line).

    Raises:
        ConfigError: a cron expression is malformed.
        NotFoundError: a schedule names an unknown pipeline.
    """
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.cron import CronTrigger

    from aiw.pipelines.definitions import get_pipeline

    chosen = dict(schedules) if schedules is not None else default_schedules(settings)
    scheduler = (BlockingScheduler if blocking else BackgroundScheduler)(timezone=UTC)
    for name, cron in chosen.items():
        get_pipeline(name)  # an unknown name fails now, not at 06:00
        try:
            trigger = CronTrigger.from_crontab(cron, timezone=UTC)
        except ValueError as exc:
            raise ConfigError(
                f"The schedule of {name!r} is not a cron expression: {cron!r} ({exc})",
                hint="use five fields, e.g. '0 6 * * *' (AIW_PIPELINES__DAILY_VALIDATION_CRON)",
            ) from exc
        scheduler.add_job(
            run_scheduled,
            trigger,
            args=[workspace, settings, name, on_finish],
            id=name,
            name=name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=3600,
            replace_existing=True,
        )
    return scheduler
