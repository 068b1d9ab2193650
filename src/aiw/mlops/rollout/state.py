"""The rollout state machine: pure functions from (plan, state, metrics, now) to a decision.

Nothing here reads a clock, a database or the network, so every path is unit-tested exactly and
the controller that applies decisions stays small. States::

    running(step 0) --advance--> running(step 1) ... running(last step) --promote--> promoted
        |   ^  |                                                             (canary only)
        |   +--+ hold (bake window over, too little traffic: wait for more)
        +--rollback (any guardrail fails, or the operator says so)--> rolled_back
        +--complete (a shadow whose bake window passed every guardrail)--> completed

Timing: the error rate is checked on every evaluation, so a failing candidate is rolled back as
soon as the evidence is in; latency and prediction shift are judged once the step's bake window
is over, on the whole window, because judging noisy statistics again and again would sooner or
later roll back a healthy candidate by chance.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from aiw.errors import InvalidInputError, RolloutError
from aiw.mlops.rollout.guardrails import (
    ArmMetrics,
    GuardrailCheck,
    check_error_rate,
    check_latency,
    check_shift,
)
from aiw.mlops.rollout.plan import RolloutPlan, format_share

__all__ = [
    "ACTIONS",
    "COMPLETED",
    "FINAL_STATUSES",
    "PROMOTED",
    "ROLLED_BACK",
    "RUNNING",
    "STATUSES",
    "Action",
    "Decision",
    "RolloutState",
    "decide",
    "manual_decision",
    "start_state",
]

RUNNING = "running"
PROMOTED = "promoted"
ROLLED_BACK = "rolled_back"
COMPLETED = "completed"
STATUSES: tuple[str, ...] = (RUNNING, PROMOTED, ROLLED_BACK, COMPLETED)
FINAL_STATUSES: tuple[str, ...] = (PROMOTED, ROLLED_BACK, COMPLETED)

Action = Literal["continue", "hold", "advance", "rollback", "promote", "complete"]
ACTIONS: tuple[str, ...] = ("continue", "hold", "advance", "rollback", "promote", "complete")


@dataclass(frozen=True)
class RolloutState:
    """Where a rollout is.

    Attributes:
        status: ``running``, ``promoted``, ``rolled_back`` or ``completed``.
        step_index: The current step of the plan.
        step_started_at: When the current step began (Unix seconds).
    """

    status: str = RUNNING
    step_index: int = 0
    step_started_at: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise InvalidInputError(
                f"The 'status' of RolloutState must be one of {', '.join(STATUSES)}. Got {self.status!r} instead."
            )
        if not isinstance(self.step_index, int) or self.step_index < 0:
            raise InvalidInputError(
                f"The 'step_index' of RolloutState must be an integer >= 0. Got {self.step_index!r} instead."
            )

    @property
    def final(self) -> bool:
        """Whether the rollout is over."""
        return self.status in FINAL_STATUSES

    def share(self, plan: RolloutPlan) -> float:
        """The candidate's share of *answered* traffic (a shadow answers nothing)."""
        if self.status == PROMOTED:
            return 1.0
        if self.status != RUNNING or plan.mode == "shadow":
            return 0.0
        return plan.share(self.step_index)

    def mirror(self, plan: RolloutPlan) -> float:
        """The share of requests mirrored to the candidate (shadow only)."""
        return 1.0 if self.status == RUNNING and plan.mode == "shadow" else 0.0


def start_state(now: float) -> RolloutState:
    """The state of a rollout that starts at ``now``: running, first step."""
    return RolloutState(RUNNING, 0, float(now))


@dataclass(frozen=True)
class Decision:
    """What to do now, and why.

    Attributes:
        action: ``continue`` (keep baking; nothing to record), ``hold`` (the window is over but
            the traffic is too thin to judge), ``advance``, ``rollback``, ``promote`` or
            ``complete``.
        code: A stable machine-readable reason (``baking``, ``too_little_traffic``,
            ``error_rate``, ``latency_p95``, ``prediction_shift``, ``healthy``, ``operator`` ...).
        reason: The reason in a sentence.
        state: The state after the decision.
        checks: The guardrail verdicts it rests on.
    """

    action: str
    code: str
    reason: str
    state: RolloutState
    checks: tuple[GuardrailCheck, ...] = ()

    @property
    def changes_state(self) -> bool:
        """Whether the decision moves the rollout (anything but continue and hold)."""
        return self.action not in ("continue", "hold")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {
            "action": self.action,
            "code": self.code,
            "reason": self.reason,
            "status": self.state.status,
            "step_index": self.state.step_index,
            "checks": [c.to_dict() for c in self.checks],
        }


def _rollback(state: RolloutState, code: str, reason: str, checks: tuple[GuardrailCheck, ...]) -> Decision:
    return Decision("rollback", code, reason, replace(state, status=ROLLED_BACK), checks)


def decide(plan: RolloutPlan, state: RolloutState, champion: ArmMetrics, candidate: ArmMetrics, now: float) -> Decision:
    """The decision for a running rollout.

    Args:
        plan: The rollout plan.
        state: Where it is.
        champion: The champion's metrics over the same stretch of traffic as the candidate's
            (at a canary's 100% step, where it answers nothing, over its earlier traffic).
        candidate: The candidate's metrics in the current step (mirrored answers for a shadow).
        now: The time (Unix seconds).

    Returns:
        The decision; ``decision.state`` is the state to persist when ``changes_state``.

    Raises:
        RolloutError: the rollout is not running.
    """
    if state.status != RUNNING:
        raise RolloutError(f"The rollout is {state.status}; only a running rollout takes decisions.")
    g = plan.guardrails
    share = plan.share(state.step_index) if plan.mode == "canary" else 1.0
    where = (
        f"step {state.step_index + 1}/{len(plan.steps)} ({format_share(share)})" if plan.mode == "canary" else "shadow"
    )
    errors = check_error_rate(g, candidate)
    if errors.status == "fail":
        return _rollback(state, "error_rate", f"{where}: {errors.detail}", (errors,))
    elapsed = now - state.step_started_at
    if elapsed < plan.bake_s:
        return Decision(
            "continue", "baking", f"{where}: baking, {max(elapsed, 0):.1f} of {plan.bake_s:g} s", state, (errors,)
        )
    # In a canary's 100% step the champion answers nothing: its baseline is its earlier traffic.
    champion_serves = plan.mode == "shadow" or share < 1.0
    checks = (
        errors,
        check_latency(g, champion, candidate, champion_serves=champion_serves),
        check_shift(g, champion, candidate, champion_serves=champion_serves),
    )
    failed = [c for c in checks if c.status == "fail"]
    if failed:
        return _rollback(state, failed[0].name, f"{where}: {'; '.join(c.detail for c in failed)}", checks)
    waiting = [c for c in checks if c.status == "wait"]
    if waiting:
        details = sorted({c.detail for c in waiting})
        return Decision("hold", "too_little_traffic", f"{where}: holding, {'; '.join(details)}", state, checks)
    healthy = "; ".join(c.detail for c in checks if c.status == "pass")
    if plan.mode == "shadow":
        return Decision(
            "complete", "healthy", f"shadow passed every guardrail: {healthy}", replace(state, status=COMPLETED), checks
        )
    if state.step_index >= plan.last_step:
        return Decision(
            "promote",
            "healthy",
            f"{where} passed every guardrail; promoting to @champion: {healthy}",
            replace(state, status=PROMOTED),
            checks,
        )
    nxt = state.step_index + 1
    return Decision(
        "advance",
        "healthy",
        f"{where} passed every guardrail; advancing to {format_share(plan.share(nxt))}: {healthy}",
        RolloutState(RUNNING, nxt, float(now)),
        checks,
    )


def manual_decision(plan: RolloutPlan, state: RolloutState, action: str, reason: str) -> Decision:
    """An operator's ``promote`` or ``rollback`` of a running rollout.

    Raises:
        InvalidInputError: another action.
        RolloutError: the rollout is not running, or a shadow is asked to promote.
    """
    if action not in ("promote", "rollback"):
        raise InvalidInputError(f"An operator may promote or roll back a rollout. Got {action!r} instead.")
    if state.status != RUNNING:
        raise RolloutError(f"The rollout is already {state.status}.", hint="start a new rollout")
    why = reason.strip() or "no reason given"
    if action == "rollback":
        return _rollback(state, "operator", f"rolled back by the operator: {why}", ())
    if plan.mode == "shadow":
        raise RolloutError(
            "A shadow deployment answered no live traffic and cannot be promoted.",
            hint=f"start a canary: 'aiw deploy canary {plan.model} --version {plan.candidate_version}'",
        )
    return Decision("promote", "operator", f"promoted by the operator: {why}", replace(state, status=PROMOTED), ())
