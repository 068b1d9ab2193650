"""What the CLI, the REST API and the dashboard call: start, watch, promote and roll back rollouts.

:class:`DeploymentService` checks who may do what (``deployments:write``; moving ``@champion``
by hand also needs the registry's ``models:promote``), that a canary's candidate holds an
approved production request (a shadow answers nobody, so it needs none), that the candidate's
files pass their checksums, and then writes the rollout. The serving processes pick it up within
``settings.rollout.poll_s``; in the API process the change reaches the router at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiw.errors import AiwError, ConflictError, NotFoundError, PolicyViolation
from aiw.mlops.rollout.plan import RolloutPlan
from aiw.mlops.rollout.state import manual_decision
from aiw.mlops.rollout.store import DecisionRecord, Rollout, RolloutStore

if TYPE_CHECKING:
    from aiw.governance.identity import Principal
    from aiw.mlops.rollout.router import RolloutRouter
    from aiw.workspace import Workspace

__all__ = ["DeploymentService", "DeploymentStatus"]


@dataclass(frozen=True)
class DeploymentStatus:
    """A model's newest rollout, its decisions and its live metrics.

    Attributes:
        model: The model.
        rollout: Its newest rollout (None if it never had one).
        decisions: That rollout's decisions, oldest first.
        live: Per-arm metrics of the current step (from this process's router when it serves
            the rollout, else as last published by a server), or None.
        live_age_s: Seconds since ``live`` was measured.
        champion_version: Where ``@champion`` points now.
    """

    model: str
    rollout: Rollout | None
    decisions: list[DecisionRecord] = field(default_factory=list)
    live: dict[str, Any] | None = None
    live_age_s: float | None = None
    champion_version: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {
            "model": self.model,
            "champion_version": self.champion_version,
            "rollout": self.rollout.as_dict() if self.rollout else None,
            "decisions": [d.as_dict() for d in self.decisions],
            "live": self.live,
            "live_age_s": None if self.live_age_s is None else round(self.live_age_s, 3),
        }


class DeploymentService:
    """Start, inspect and finish canary and shadow rollouts of governed models.

    Args:
        workspace: The workspace.
        router: The router of this process, when it serves traffic (the API): changes then take
            effect here at once and status shows its in-memory metrics.
        clock: Unix time source.
    """

    def __init__(
        self, workspace: Workspace, *, router: RolloutRouter | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        from aiw.mlops.registry import ModelRegistry, PromotionWorkflow

        self.workspace = workspace
        self.settings = workspace.settings.rollout
        self.router = router
        self.clock = clock
        self.store = RolloutStore(workspace.db, workspace.audit)
        self.registry = ModelRegistry(workspace)
        self.workflow = PromotionWorkflow(workspace, self.registry)

    # -- starting ------------------------------------------------------------------------------
    def canary(
        self,
        name: str,
        version: int,
        principal: Principal,
        *,
        steps: Any = None,
        bake: float | str | None = None,
        **guardrails: Any,
    ) -> Rollout:
        """Start a canary of an approved ``version`` against the current ``@champion``.

        Args:
            name: The model.
            version: The candidate version (it needs an approved request for production).
            principal: Who starts it (needs ``deployments:write``).
            steps: Shares in percent (``"5,10,25,50,100"`` or a list); default from settings.
            bake: Bake window per step (``"60s"``, seconds); default from settings.
            **guardrails: Overrides of :class:`~aiw.mlops.rollout.plan.Guardrails` fields.

        Raises:
            PolicyViolation: no permission, or the version has no approved production request.
            NotFoundError: unknown model or version.
            ConflictError: no ``@champion`` yet, or a rollout of the model is running.
            IntegrityError: the candidate's files fail their checksums.
            InvalidInputError: bad steps, bake window or guardrails.
        """
        return self._start("canary", name, version, principal, steps=steps, bake=bake, **guardrails)

    def shadow(
        self, name: str, version: int, principal: Principal, *, bake: float | str | None = None, **guardrails: Any
    ) -> Rollout:
        """Start a shadow of ``version``: it scores a mirrored copy of every request to
        ``@champion`` for one bake window; its answers are compared, never returned.

        Raises:
            PolicyViolation, NotFoundError, ConflictError, IntegrityError, InvalidInputError:
                as for :meth:`canary`, except that no approval is needed.
        """
        return self._start("shadow", name, version, principal, steps=None, bake=bake, **guardrails)

    def _start(
        self,
        mode: str,
        name: str,
        version: int,
        principal: Principal,
        *,
        steps: Any,
        bake: float | str | None,
        **guardrails: Any,
    ) -> Rollout:
        action = f"deployments.{mode}"
        resource = f"model:{name}/{version}"
        self.registry.require(principal, "deployments:write", action, resource)
        try:
            mv = self.registry.get(name, version)
            champion = self.registry.aliases(name).get("champion")
            if champion is None:
                raise ConflictError(
                    f"Model {name!r} has no @champion to compare a {mode} with",
                    hint=f"promote a first version: 'aiw models promote {name} VERSION'",
                )
            plan = RolloutPlan.from_settings(
                self.settings, name, mv.version, champion, mode=mode, steps=steps, bake_s=bake, **guardrails
            )
            if mode == "canary":
                approved = [
                    r
                    for r in self.workflow.requests(name, status="approved")
                    if r.version == mv.version and r.target == "production"
                ]
                if not approved:
                    raise PolicyViolation(
                        f"Version {mv.version} of {name!r} has no approved request for production; "
                        "a canary may only roll out an approved version",
                        hint=f"'aiw models request {name} {mv.version} --to production', then have it approved "
                        f"(or watch it first with 'aiw deploy shadow {name} --version {mv.version}')",
                    )
            self.registry.verified_folder(name, mv.version, actor=principal.name)
            rollout = self.store.create(plan, actor=principal.name, now=self.clock())
        except AiwError as exc:
            raise self.registry.deny(principal, action, resource, exc) from None
        if self.router is not None:
            self.router.controller.refresh()
        return rollout

    # -- finishing -----------------------------------------------------------------------------
    def promote(self, name: str, principal: Principal, *, reason: str = "") -> Rollout:
        """End the running canary of ``name`` now by moving ``@champion`` to its candidate.

        Raises:
            PolicyViolation: no ``deployments:write``, or the registry refuses (it needs
                ``models:promote`` and the approved request).
            NotFoundError: no running rollout.
            RolloutError: the running rollout is a shadow.
        """
        resource = f"model:{name}"
        self.registry.require(principal, "deployments:write", "deployments.promote", resource)
        rollout = self._running(name, principal, "deployments.promote")
        decision = manual_decision(rollout.plan, rollout.state, "promote", reason)
        if self.registry.aliases(name).get("champion") != rollout.candidate_version:
            self.workflow.promote(name, rollout.candidate_version, "production", principal)
        return self._record(rollout, decision, principal)

    def rollback(self, name: str, principal: Principal, *, reason: str = "") -> Rollout:
        """End the running rollout of ``name``: all traffic back to ``@champion`` (which never moved).

        Raises:
            PolicyViolation: no ``deployments:write``.
            NotFoundError: no running rollout.
        """
        resource = f"model:{name}"
        self.registry.require(principal, "deployments:write", "deployments.rollback", resource)
        rollout = self._running(name, principal, "deployments.rollback")
        if self.router is not None:
            self.router.set_share(name, 0.0)
        return self._record(rollout, manual_decision(rollout.plan, rollout.state, "rollback", reason), principal)

    def _running(self, name: str, principal: Principal, action: str) -> Rollout:
        rollout = self.store.current(name)
        if rollout is None:
            raise self.registry.deny(
                principal,
                action,
                f"model:{name}",
                NotFoundError(f"Model {name!r} has no running rollout", hint="see 'aiw deploy history'"),
            )
        return rollout

    def _record(self, rollout: Rollout, decision: Any, principal: Principal) -> Rollout:
        for _ in range(3):  # the controller may decide between our read and our write: re-read
            try:
                stored = self.store.record(rollout, decision, actor=principal.name, now=self.clock())
                break
            except ConflictError:
                rollout = self.store.get(rollout.id)
                if not rollout.running:
                    if rollout.status == decision.state.status:
                        # the controller saw our alias move (or chose the same) first: same outcome
                        stored = rollout
                        break
                    raise ConflictError(
                        f"Rollout #{rollout.id} ended meanwhile ({rollout.status}): {rollout.reason}"
                    ) from None
                decision = manual_decision(
                    rollout.plan, rollout.state, decision.action, decision.reason.split(": ", 1)[-1]
                )
        else:
            raise ConflictError(f"Rollout #{rollout.id} keeps changing; try again")
        if self.router is not None:
            self.router.put(stored, now=self.clock())
        return stored

    # -- reading -------------------------------------------------------------------------------
    def status(self, name: str) -> DeploymentStatus:
        """The newest rollout of ``name`` with its decisions and live metrics.

        Raises:
            NotFoundError: unknown model.
        """
        if not self.registry.versions(name):
            raise NotFoundError(f"No model named {name!r} is registered", hint="see 'aiw models list'")
        champion = self.registry.aliases(name).get("champion")
        rollout = self.store.latest(name)
        if rollout is None:
            return DeploymentStatus(name, None, champion_version=champion)
        live, age = None, None
        served = self.router.get(name) if self.router is not None else None
        if served is not None and served.id == rollout.id:
            live, age = served.snapshot(), 0.0
        elif rollout.live_metrics is not None:
            live = rollout.live_metrics
            if rollout.metrics_at is not None:
                age = (datetime.now(UTC) - rollout.metrics_at).total_seconds()
        return DeploymentStatus(name, rollout, self.store.decisions(rollout.id), live, age, champion)

    def history(self, name: str | None = None, *, limit: int = 50) -> list[Rollout]:
        """Rollouts, newest first (of one model, or all)."""
        return self.store.history(name, limit=limit)

    def decisions(self, rollout_id: int) -> list[DecisionRecord]:
        """Every decision of one rollout, oldest first."""
        return self.store.decisions(rollout_id)
