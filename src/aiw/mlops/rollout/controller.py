"""The rollout controller: applies the state machine to the rollouts this process serves.

One :meth:`RolloutController.tick` (every ``settings.rollout.tick_s`` on the router's daemon
thread, or called directly by tests):

1. every ``poll_s``, re-reads the running rollouts from the database: a rollout started by the
   CLI or another process is picked up (its models are loaded first, so no request waits for a
   load), one finished elsewhere is dropped, one moved elsewhere takes the stored state;
2. for each live rollout, checks that ``@champion`` is still the version the rollout compares
   with, computes both arms' metrics, and asks :func:`~aiw.mlops.rollout.state.decide`;
3. applies a decision: the in-memory share changes first (a rollback stops candidate traffic
   before anything is written), then the decision is stored and audited
   (compare-and-set, so with several server processes the first decision wins); a promotion
   first moves ``@champion`` through the registry's :class:`~aiw.mlops.registry.PromotionWorkflow`
   (which requires the candidate's approved production request); an automatic rollback raises a
   ``critical`` alert through :class:`~aiw.mlops.monitoring.alerts.AlertManager` (log, dashboard,
   signed webhooks via the durable outbox);
4. every ``poll_s``, publishes each live rollout's metrics to the database for the CLI and the
   dashboard, which run in other processes.

The controller acts as ``rollout-controller``. It may promote only a version that an approver
approved for production: the approval is the gate, the canary decides when.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from aiw.errors import AiwError, ConflictError
from aiw.governance.identity import Principal
from aiw.mlops.rollout.plan import format_share
from aiw.mlops.rollout.state import PROMOTED, ROLLED_BACK, Decision, decide
from aiw.mlops.rollout.store import Rollout, RolloutStore

if TYPE_CHECKING:
    from aiw.mlops.rollout.router import LiveRollout, RolloutRouter
    from aiw.workspace import Workspace

__all__ = ["CONTROLLER", "RolloutController"]

_log = logging.getLogger(__name__)

CONTROLLER = "rollout-controller"
"""The actor name of automatic decisions."""


class RolloutController:
    """Drive the live rollouts of one router.

    Args:
        workspace: The workspace.
        router: The router whose rollouts this controller drives.
        clock: Unix time source (tests pass a fake one).
    """

    def __init__(self, workspace: Workspace, router: RolloutRouter, *, clock: Callable[[], float] = time.time) -> None:
        self.workspace = workspace
        self.router = router
        self.settings = router.settings
        self.store = RolloutStore(workspace.db, workspace.audit)
        self.clock = clock
        self.principal = Principal(CONTROLLER, "admin")
        self._next_poll = 0.0
        self._next_publish = 0.0
        self.decisions: list[tuple[int, Decision]] = []  # taken by this controller, newest last (bounded)

    # -- one pass ------------------------------------------------------------------------------
    def tick(self, now: float | None = None) -> list[Decision]:
        """Refresh (when due), judge every live rollout, publish metrics (when due).

        Returns:
            The decisions recorded in this pass.
        """
        now = self.clock() if now is None else now
        if now >= self._next_poll:
            self.refresh(now)
            self._next_poll = now + self.settings.poll_s
        taken = []
        for live in self.router.live():
            try:
                decision = self.evaluate(live, now)
            except AiwError:
                _log.exception("judging rollout #%s failed", live.id)
                continue
            if decision is not None:
                taken.append(decision)
        if now >= self._next_publish:
            self.publish(now)
            self._next_publish = now + self.settings.poll_s
        return taken

    def refresh(self, now: float | None = None) -> None:
        """Bring the router in step with the running rollouts in the database."""
        now = self.clock() if now is None else now
        running = {r.model: r for r in self.store.active()}
        for live in self.router.live():
            stored = running.get(live.model)
            if stored is None or stored.id != live.id:  # finished (or replaced) elsewhere
                self.router.put(self.store.get(live.id), now=now)
            elif stored.revision != live.rollout.revision:
                self.router.put(stored, now=now)
        for model, rollout in running.items():
            served = self.router.get(model)
            if served is None or served.id != rollout.id:
                self._pick_up(rollout, now)

    def _pick_up(self, rollout: Rollout, now: float) -> None:
        """Load both versions, then start routing (a failed load of the candidate rolls back)."""
        resolver = self.router.resolver
        try:
            resolver.load(rollout.model, rollout.champion_version)
        except AiwError:
            _log.exception(
                "rollout #%s: the champion v%s cannot be loaded; not routing yet", rollout.id, rollout.champion_version
            )
            return
        try:
            resolver.load(rollout.model, rollout.candidate_version)
        except AiwError as exc:
            decision = Decision(
                "rollback",
                "load_failed",
                f"the candidate v{rollout.candidate_version} cannot be loaded: {exc.message}",
                replace(rollout.state, status=ROLLED_BACK),
            )
            self._record(rollout, decision, now, {}, alert=True)
            return
        served = self.router.put(rollout, now=now)
        _log.info(
            "rollout #%s of %s: serving %s (%s) from step %d",
            rollout.id,
            rollout.model,
            f"v{rollout.candidate_version}",
            rollout.mode,
            rollout.step_index + 1,
        )
        served.last_code = None

    # -- judging -------------------------------------------------------------------------------
    def evaluate(self, live: LiveRollout, now: float) -> Decision | None:
        """Judge one live rollout; record and apply the decision if there is one to record."""
        rollout = live.rollout
        moved = self._champion_moved(rollout)
        if moved is not None:
            return self._apply(live, moved, now, live.snapshot())
        # After a restart the step's bake window starts again: this process has no metrics of
        # the time before it took over.
        state = replace(rollout.state, step_started_at=live.step_since())
        plan, g = rollout.plan, rollout.plan.guardrails
        # Counts first (every tick, cheap): they decide while baking (errors), and a hold for
        # thin traffic; percentiles and the shift are computed only when they can decide.
        champion, candidate = live.arm_counts()
        decision = decide(plan, state, champion, candidate, now)
        champion_needed = plan.mode == "shadow" or live.share < 1.0
        judged = candidate.successes >= g.min_requests and (champion.successes >= g.min_requests or not champion_needed)
        if decision.action not in ("continue", "rollback") and judged:
            champion, candidate = live.arm_metrics()
            decision = decide(plan, state, champion, candidate, now)
        if decision.action == "continue":
            return None
        if decision.action == "hold" and decision.code == live.last_code:
            return None
        return self._apply(live, decision, now, live.snapshot())

    def _champion_moved(self, rollout: Rollout) -> Decision | None:
        try:
            current = self.router.resolver.version_of(rollout.model, "champion")
        except AiwError:
            return None
        if current == rollout.champion_version:
            return None
        if current == rollout.candidate_version:
            return Decision(
                "promote",
                "promoted_elsewhere",
                f"@champion was moved to the candidate v{current} outside the rollout",
                replace(rollout.state, status=PROMOTED),
            )
        return Decision(
            "rollback",
            "champion_moved",
            f"@champion moved from v{rollout.champion_version} to v{current} during the rollout; "
            "the comparison no longer holds",
            replace(rollout.state, status=ROLLED_BACK),
        )

    def _apply(self, live: LiveRollout, decision: Decision, now: float, metrics: dict[str, Any]) -> Decision | None:
        rollout = live.rollout
        if decision.action == "rollback":
            self.router.set_share(rollout.model, 0.0)  # traffic back to the champion before any write
        if decision.action == "promote" and decision.code != "promoted_elsewhere":
            refused = self._promote(rollout)
            if refused is not None:
                self.router.set_share(rollout.model, 0.0)
                decision = Decision(
                    "rollback",
                    "promotion_refused",
                    f"the registry refused to move @champion to v{rollout.candidate_version}: {refused}",
                    replace(rollout.state, status=ROLLED_BACK),
                    decision.checks,
                )
        automatic = decision.action == "rollback"
        return self._record(rollout, decision, now, metrics, alert=automatic, live=live)

    def _record(
        self,
        rollout: Rollout,
        decision: Decision,
        now: float,
        metrics: dict[str, Any],
        *,
        alert: bool,
        live: LiveRollout | None = None,
    ) -> Decision | None:
        try:
            stored = self.store.record(rollout, decision, actor=CONTROLLER, now=now, metrics=metrics)
        except ConflictError:  # another process (or an operator) decided first: take its state
            self.router.put(self.store.get(rollout.id), now=now)
            return None
        self.router.put(stored, now=now)
        if live is not None:
            live.last_code = decision.code
        self.decisions = [*self.decisions[-199:], (rollout.id, decision)]
        _log.info(
            "rollout #%s of %s: %s (%s) -> %s",
            rollout.id,
            rollout.model,
            decision.action,
            decision.code,
            format_share(stored.share),
        )
        if alert:
            self._alert(stored, decision)
        return decision

    def _promote(self, rollout: Rollout) -> str | None:
        """Move @champion to the candidate through the registry; the reason if it refused."""
        from aiw.mlops.registry import PromotionWorkflow

        workflow = PromotionWorkflow(self.workspace)
        try:
            if workflow.registry.aliases(rollout.model).get("champion") == rollout.candidate_version:
                return None  # moved already (a pass that died after promoting): nothing to redo
            workflow.promote(rollout.model, rollout.candidate_version, "production", self.principal)
        except AiwError as exc:
            return exc.message
        return None

    def _alert(self, rollout: Rollout, decision: Decision) -> None:
        from aiw.mlops.monitoring.alerts import AlertManager

        try:
            AlertManager(self.workspace.db, self.workspace.audit, self.workspace.settings.alerts).raise_alert(
                "rollout-rollback",
                "critical",
                f"model:{rollout.model}",
                f"Rollout #{rollout.id} of {rollout.model} v{rollout.candidate_version} was rolled back: "
                f"{decision.reason}",
                {
                    "rollout_id": rollout.id,
                    "candidate_version": rollout.candidate_version,
                    "champion_version": rollout.champion_version,
                    "code": decision.code,
                    "mode": rollout.mode,
                },
                actor=CONTROLLER,
            )
        except AiwError:  # the rollback stands; a misconfigured sink must not undo it
            _log.exception("raising the alert for the rollback of rollout #%s failed", rollout.id)

    # -- publishing ------------------------------------------------------------------------------
    def publish(self, now: float | None = None) -> None:
        """Store each live rollout's metrics for processes that do not serve it (CLI, dashboard)."""
        now = self.clock() if now is None else now
        for live in self.router.live():
            try:
                self.store.publish_metrics(live.id, live.snapshot(), now=now)
            except AiwError:
                _log.exception("publishing the metrics of rollout #%s failed", live.id)
