"""``aiw deploy``: canary and shadow rollouts of governed models, their status and history.

The CLI writes the rollout; the serving processes (``aiw serve``) pick it up within
``settings.rollout.poll_s``, route the traffic and decide. ``--wait`` follows the decisions until
the rollout ends. The CLI acts as ``$AIW_ACTOR`` with the role ``$AIW_ROLE`` (see ``aiw models``).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import typer

from aiw.cli._common import console, fail, table, workspace

if TYPE_CHECKING:
    from aiw.mlops.rollout.service import DeploymentService, DeploymentStatus
    from aiw.mlops.rollout.store import DecisionRecord, Rollout

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True)

_BAKE = typer.Option(None, "--bake", help="Bake window per step: 60s, 500ms, 2m (default: settings.rollout.bake_s).")
_MAX_ERR = typer.Option(None, "--max-error-rate", min=0.0, max=0.999, help="Candidate error rate that rolls back.")
_MAX_P95 = typer.Option(None, "--max-p95-ratio", min=1.0, help="Candidate/champion p95 latency that rolls back.")
_MAX_PSI = typer.Option(None, "--max-psi", min=0.0001, help="PSI between the arms' predictions that rolls back.")
_MIN_REQ = typer.Option(None, "--min-requests", min=1, help="Requests per arm before a step is judged.")
_WAIT = typer.Option(False, "--wait", help="Follow the decisions until the rollout ends (needs a running server).")
_TIMEOUT = typer.Option(3600.0, "--timeout", min=1.0, help="Seconds --wait waits at most.")


def _service() -> DeploymentService:
    from aiw.mlops.rollout.service import DeploymentService

    return DeploymentService(workspace())


def _pct(share: float) -> str:
    from aiw.mlops.rollout.plan import format_share

    return format_share(share)


def _when(record: DecisionRecord) -> str:
    return record.at.isoformat(timespec="seconds").replace("+00:00", "Z")


def _show_decisions(decisions: list[DecisionRecord]) -> None:
    table(
        "Decisions",
        ["time (UTC)", "action", "share", "reason", "by"],
        [(_when(d), d.action, f"{_pct(d.from_share)} -> {_pct(d.to_share)}", d.reason, d.actor) for d in decisions],
    )


def _show_live(live: dict[str, Any], age: float | None) -> None:
    rows = []
    for arm in ("champion", "candidate"):
        m = live.get(arm) or {}
        shares = m.get("prediction_shares")
        prediction = (
            f"mean {m['prediction_mean']:.4f}"
            if m.get("prediction_mean") is not None
            else ", ".join(f"{k} {v:.0%}" for k, v in (shares or {}).items()) or "-"
        )
        rows.append(
            (
                arm,
                f"v{m.get('version', '?')}",
                m.get("requests", 0),
                m.get("errors", 0),
                f"{m.get('error_rate', 0):.2%}",
                _ms(m.get("p50_ms")),
                _ms(m.get("p95_ms")),
                prediction,
            )
        )
    title = "Live metrics (current step)" + (f", {age:.0f} s old" if age and age >= 2 else "")
    table(title, ["arm", "version", "requests", "errors", "error rate", "p50", "p95", "predictions"], rows)
    shadow = live.get("shadow")
    if shadow:
        agreement = shadow.get("agreement")
        console.print(
            f"shadow: {shadow['mirrored']} mirrored, {shadow['dropped']} dropped, agreement "
            f"{'-' if agreement is None else f'{agreement:.1%}'} over {shadow['compared_rows']} rows"
        )


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def _headline(r: Rollout) -> str:
    split = (
        "shadow: every request mirrored"
        if r.mode == "shadow"
        else f"step {r.step_index + 1}/{len(r.plan.steps)}, candidate share {_pct(r.share)}"
    )
    return (
        f"rollout #{r.id} of [bold]{r.model}[/]: {r.mode} of v{r.candidate_version} against "
        f"v{r.champion_version}, [bold]{r.status}[/] ({split}); {r.plan.describe()}"
    )


def _show_status(status: DeploymentStatus) -> None:
    if status.rollout is None:
        console.print(f"{status.model} has no rollout; @champion is v{status.champion_version or '-'}")
        return
    console.print(_headline(status.rollout))
    console.print(f"last: {status.rollout.reason}")
    if status.live and status.rollout.running:
        _show_live(status.live, status.live_age_s)
    _show_decisions(status.decisions)


def _follow(service: DeploymentService, name: str, rollout_id: int, timeout: float) -> None:
    seen = 0
    deadline = time.monotonic() + timeout
    while True:
        rollout = service.store.get(rollout_id)
        decisions = service.decisions(rollout_id)
        for d in decisions[seen:]:
            console.print(f"{_when(d)}  {d.action:<9} {_pct(d.from_share):>5} -> {_pct(d.to_share):<5} {d.reason}")
        seen = len(decisions)
        if not rollout.running:
            console.print(
                f"rollout #{rollout.id} {rollout.status}; @champion is "
                f"v{service.registry.aliases(name).get('champion')}"
            )
            if rollout.status == "rolled_back":
                raise typer.Exit(1)
            return
        if time.monotonic() > deadline:
            fail(f"rollout #{rollout_id} still running after {timeout:g} s (step {rollout.step_index + 1})", 1)
        time.sleep(1.0)


def _guardrails(
    max_error_rate: float | None, max_p95_ratio: float | None, max_psi: float | None, min_requests: int | None
) -> dict[str, Any]:
    return {
        "max_error_rate": max_error_rate,
        "max_p95_ratio": max_p95_ratio,
        "max_prediction_psi": max_psi,
        "min_requests": min_requests,
    }


@app.command()
def canary(
    name: str = typer.Argument(..., help="The model."),
    version: int = typer.Option(..., "--version", min=1, help="The approved candidate version."),
    steps: str = typer.Option(None, "--steps", help="Candidate shares in percent, e.g. 5,10,25,50,100."),
    bake: str = _BAKE,
    max_error_rate: float = _MAX_ERR,
    max_p95_ratio: float = _MAX_P95,
    max_psi: float = _MAX_PSI,
    min_requests: int = _MIN_REQ,
    wait: bool = _WAIT,
    timeout: float = _TIMEOUT,
) -> None:
    """Roll an approved version out to a growing share of live traffic; roll back on a breach."""
    from aiw.cli.models import principal

    service = _service()
    rollout = service.canary(
        name,
        version,
        principal(),
        steps=steps,
        bake=bake,
        **_guardrails(max_error_rate, max_p95_ratio, max_psi, min_requests),
    )
    console.print(_headline(rollout))
    if wait:
        _follow(service, name, rollout.id, timeout)
    else:
        console.print(f"served by 'aiw serve'; follow it with 'aiw deploy status {name}'")


@app.command()
def shadow(
    name: str = typer.Argument(..., help="The model."),
    version: int = typer.Option(..., "--version", min=1, help="The candidate version."),
    bake: str = _BAKE,
    max_error_rate: float = _MAX_ERR,
    max_p95_ratio: float = _MAX_P95,
    max_psi: float = _MAX_PSI,
    min_requests: int = _MIN_REQ,
    wait: bool = _WAIT,
    timeout: float = _TIMEOUT,
) -> None:
    """Mirror live traffic to a version for one bake window: compared, never returned."""
    from aiw.cli.models import principal

    service = _service()
    rollout = service.shadow(
        name, version, principal(), bake=bake, **_guardrails(max_error_rate, max_p95_ratio, max_psi, min_requests)
    )
    console.print(_headline(rollout))
    if wait:
        _follow(service, name, rollout.id, timeout)


@app.command()
def status(
    name: str = typer.Argument(..., help="The model."),
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
) -> None:
    """The newest rollout: split, each arm's live metrics and every decision with its reason."""
    from aiw.cli.models import principal

    principal().require("deployments:read")
    result = _service().status(name)
    if as_json:
        print(json.dumps(result.as_dict(), indent=1, default=str))
        return
    _show_status(result)


@app.command()
def promote(
    name: str = typer.Argument(..., help="The model."),
    reason: str = typer.Option("", "--reason", help="Why (kept in the audit log)."),
) -> None:
    """End the running canary now: @champion moves to the candidate (needs models:promote)."""
    from aiw.cli.models import principal

    rollout = _service().promote(name, principal(), reason=reason)
    console.print(f"rollout #{rollout.id} promoted: {name}@champion -> v{rollout.candidate_version}")


@app.command()
def rollback(
    name: str = typer.Argument(..., help="The model."),
    reason: str = typer.Option("", "--reason", help="Why (kept in the audit log)."),
) -> None:
    """End the running rollout now: all traffic back to @champion."""
    from aiw.cli.models import principal

    rollout = _service().rollback(name, principal(), reason=reason)
    console.print(f"rollout #{rollout.id} rolled back: {name}@champion stays v{rollout.champion_version}")


@app.command()
def history(
    name: str = typer.Argument(None, help="One model (default: all)."),
    limit: int = typer.Option(20, "--limit", min=1, max=1000, help="Most rollouts shown."),
    as_json: bool = typer.Option(False, "--json", help="Print rollouts and their decisions as JSON."),
) -> None:
    """Past and running rollouts, newest first."""
    from aiw.cli.models import principal

    principal().require("deployments:read")
    service = _service()
    rollouts = service.history(name, limit=limit)
    if as_json:
        print(
            json.dumps(
                [{**r.as_dict(), "decisions": [d.as_dict() for d in service.decisions(r.id)]} for r in rollouts],
                indent=1,
                default=str,
            )
        )
        return
    table(
        "Rollouts",
        ["id", "model", "mode", "candidate", "champion", "status", "share", "started (UTC)", "last reason"],
        [
            (
                r.id,
                r.model,
                r.mode,
                f"v{r.candidate_version}",
                f"v{r.champion_version}",
                r.status,
                _pct(r.share),
                r.started_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
                r.reason,
            )
            for r in rollouts
        ],
    )
