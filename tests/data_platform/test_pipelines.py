"""The embedded pipeline runner: DAG order, parallel branches, retries, timeouts, skips, records,
schedules; and the daily-validation pipeline end to end."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aiw.errors import ConfigError, InvalidInputError, NotFoundError, TransientBackendError
from aiw.pipelines.dag import Pipeline, SkipStep, Step
from aiw.pipelines.runner import PipelineRunner

pytestmark = pytest.mark.unit


@pytest.fixture
def runner(workspace):  # type: ignore[no-untyped-def]
    fast = workspace.settings.model_copy(
        update={
            "pipelines": workspace.settings.pipelines.model_copy(
                update={"retry_backoff_s": 0.01, "retries": 2, "max_workers": 2}
            )
        }
    )
    return PipelineRunner(workspace, fast)


def ok(ctx):  # type: ignore[no-untyped-def]
    ctx.log("working")
    return {"step": ctx.step, "saw": sorted(ctx.upstream)}


def boom(ctx):  # type: ignore[no-untyped-def]
    raise ValueError("the input file is malformed")


def test_dag_validation() -> None:
    with pytest.raises(InvalidInputError, match="cycle"):
        Pipeline("p", (Step("a", ok, ("b",)), Step("b", ok, ("a",))))
    with pytest.raises(InvalidInputError, match="unknown steps"):
        Pipeline("p", (Step("a", ok, ("nope",)),))
    with pytest.raises(InvalidInputError, match="duplicate"):
        Pipeline("p", (Step("a", ok), Step("a", ok)))
    with pytest.raises(InvalidInputError, match="step name"):
        Step("Bad Name", ok)
    with pytest.raises(InvalidInputError, match="timeout_s"):
        Step("a", ok, timeout_s=0)
    p = Pipeline("p", (Step("a", ok), Step("b", ok, ("a",)), Step("c", ok, ("b",)), Step("d", ok, ("a",))))
    assert p.dependants("a") == {"b", "c", "d"} and p.order()[0] == "a"


def test_a_failure_stops_its_dependants_not_independent_branches(runner) -> None:  # type: ignore[no-untyped-def]
    pipeline = Pipeline(
        "toy",
        (
            Step("extract", ok),
            Step("transform", boom, ("extract",)),
            Step("load", ok, ("transform",)),
            Step("side", ok, ("extract",)),
            Step("report", ok, ("load", "side"), trigger="all_done"),
        ),
    )
    run = runner.run(pipeline, actor="tests", params={"day": "2026-01-01"})
    status = {s.step: s.status for s in run.steps}
    assert status == {
        "extract": "success",
        "transform": "failed",
        "load": "upstream_failed",
        "side": "success",
        "report": "success",
    }
    assert run.status == "failed"
    assert "step 'transform' failed: ValueError: the input file is malformed" in run.error
    assert "not run: load" in run.error
    assert run.step("transform").attempts == 1  # a ValueError is not worth retrying
    assert run.step("report").output["saw"] == ["load", "side"]
    stored = runner.get(run.id)  # the record in the metadata database says the same
    assert stored.status == "failed" and stored.error == run.error
    assert {s.step: s.status for s in stored.steps} == status
    assert runner.get(run.id[:8]).id == run.id
    folder = Path(run.artifacts_dir)
    assert json.loads((folder / "run.json").read_text())["status"] == "failed"
    assert "malformed" in (folder / "logs" / "transform.log").read_text()
    audit = runner.workspace.audit.records(limit=1)[0]
    assert audit.action == "pipelines.run" and audit.outcome == "failure"


def test_independent_branches_run_in_parallel(runner) -> None:  # type: ignore[no-untyped-def]
    barrier = threading.Barrier(2, timeout=10)

    def meet(ctx):  # type: ignore[no-untyped-def]
        barrier.wait()  # only returns when both branches are running at the same time
        return {"met": True}

    run = runner.run(Pipeline("par", (Step("left", meet), Step("right", meet))), actor="tests")
    assert run.status == "success", run.error


def test_transient_errors_are_retried_with_backoff(runner) -> None:  # type: ignore[no-untyped-def]
    calls: list[float] = []

    def flaky(ctx):  # type: ignore[no-untyped-def]
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise TransientBackendError("the warehouse is locked by another process")
        return {"calls": len(calls)}

    run = runner.run(Pipeline("retry", (Step("flaky", flaky),)), actor="tests")
    assert run.status == "success" and run.step("flaky").attempts == 3
    assert calls[2] - calls[1] >= calls[1] - calls[0] > 0  # exponential backoff
    gave_up = runner.run(Pipeline("retry2", (Step("flaky", flaky, retries=0),)), actor="tests")
    assert gave_up.status == "success"  # third call of the shared counter succeeds at once
    calls.clear()
    never = runner.run(Pipeline("retry3", (Step("flaky", flaky, retries=1),)), actor="tests")
    assert never.status == "failed" and never.step("flaky").attempts == 2 and "locked" in never.error


def test_a_step_past_its_timeout_fails_and_stops_its_dependants(runner) -> None:  # type: ignore[no-untyped-def]
    def slow(ctx):  # type: ignore[no-untyped-def]
        ctx.cancelled.wait(5)
        return {}

    started = time.monotonic()
    run = runner.run(
        Pipeline("slow", (Step("slow", slow, timeout_s=0.3), Step("after", ok, ("slow",)), Step("other", ok))),
        actor="tests",
    )
    assert time.monotonic() - started < 3
    assert run.step("slow").status == "failed" and "timed out after 0.3 s" in run.step("slow").error
    assert run.step("after").status == "upstream_failed" and run.step("other").status == "success"


def test_skips_are_recorded_and_do_not_stop_dependants(runner) -> None:  # type: ignore[no-untyped-def]
    def nothing(ctx):  # type: ignore[no-untyped-def]
        raise SkipStep("no served traffic yet")

    run = runner.run(Pipeline("skip", (Step("drift", nothing), Step("report", ok, ("drift",)))), actor="tests")
    assert run.status == "success"
    assert run.step("drift").status == "skipped" and run.step("drift").error == "no served traffic yet"
    assert run.step("report").status == "success"
    assert [r.id for r in runner.runs("skip")] == [run.id]
    with pytest.raises(NotFoundError):
        runner.get("no-such-run")
    with pytest.raises(InvalidInputError, match="trigger"):
        runner.run(Pipeline("x", (Step("a", ok),)), trigger="cron")


def test_scheduler_runs_daily_validation_at_six_utc_and_fires_jobs(workspace, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from aiw.pipelines import definitions
    from aiw.pipelines.schedule import build_scheduler

    sched = build_scheduler(workspace, workspace.settings, blocking=False)
    [job] = sched.get_jobs()
    fire = job.trigger.get_next_fire_time(None, datetime(2026, 3, 1, 7, 0, tzinfo=UTC))
    assert job.id == "daily-validation" and (fire.hour, fire.minute, fire.day) == (6, 0, 2)
    with pytest.raises(ConfigError, match="cron"):
        build_scheduler(workspace, workspace.settings, schedules={"daily-validation": "every day"}, blocking=False)
    with pytest.raises(NotFoundError):
        build_scheduler(workspace, workspace.settings, schedules={"nope": "0 6 * * *"}, blocking=False)
    # a registered pipeline fires through the scheduler and is recorded as a scheduled run
    monkeypatch.setitem(definitions.PIPELINES, "toy", lambda: Pipeline("toy", (Step("a", ok),)))
    done = threading.Event()
    sched = build_scheduler(
        workspace, workspace.settings, schedules={"toy": "0 6 * * *"}, blocking=False, on_finish=lambda run: done.set()
    )
    sched.start()
    try:
        sched.get_job("toy").modify(next_run_time=datetime.now(UTC) + timedelta(milliseconds=100))
        assert done.wait(20)
    finally:
        sched.shutdown(wait=True)
    [run] = PipelineRunner(workspace, workspace.settings).runs("toy")
    assert run.trigger == "schedule" and run.actor == "scheduler" and run.status == "success"


@pytest.mark.integration
def test_daily_validation_end_to_end(docs_copy) -> None:  # type: ignore[no-untyped-def]
    """A stale table fails the gates; the embedding refresh (an independent branch) still runs,
    drift is skipped with a note, and the summary report says what failed."""
    from aiw.data._warehouse import warehouse
    from aiw.pipelines.definitions import get_pipeline

    ws = docs_copy
    with warehouse(ws, read_only=False) as conn:
        conn.execute("UPDATE main.customers SET updated_at = updated_at - INTERVAL 30 DAY")
    run = PipelineRunner(ws, ws.settings).run(
        get_pipeline("daily-validation"), actor="tests", params={"freshness": "false"}
    )
    status = {s.step: s.status for s in run.steps}
    assert status == {
        "dbt_build": "success",
        "quality_gates": "failed",
        "embedding_refresh": "success",
        "serving_drift": "skipped",
        "summary_report": "success",
    }
    assert "main.customers freshness" in run.step("quality_gates").error
    assert run.step("embedding_refresh").output["outcome"] == "unchanged"
    assert run.step("serving_drift").error  # the note says why
    report = Path(run.step("summary_report").output["report"])
    assert report.is_file() and "FAILED: quality_gates" in report.read_text()
    assert run.status == "failed" and "quality_gates" in run.error
