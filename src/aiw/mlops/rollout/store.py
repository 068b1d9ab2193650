"""Rollouts and their decisions in the metadata database: durable, audited, resumable.

A rollout row holds the plan and the state machine's state (status, step, when the step began),
so any server process can pick it up where another left it. Every decision that is taken (start,
advance, hold, rollback, promote, complete) is one ``rollout_decisions`` row with the metrics it
rested on, and one audit record, in the same transaction as the state change.

Concurrency: one running rollout per model (a unique ``active_model`` column, NULL once the
rollout is over), and a ``revision`` counter that every state change compares and bumps, so
when several server processes judge the same rollout the first decision wins and the others
find themselves stale (:class:`~aiw.errors.ConflictError`) and re-read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from aiw.db.schema import rollout_decisions, rollouts
from aiw.errors import ConflictError, InvalidInputError, NotFoundError
from aiw.mlops.rollout.plan import RolloutPlan
from aiw.mlops.rollout.state import RUNNING, Decision, RolloutState, start_state

if TYPE_CHECKING:
    from aiw.db import MetadataDB
    from aiw.governance.audit import AuditLog

__all__ = ["DecisionRecord", "Rollout", "RolloutStore"]


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:  # SQLite returns naive datetimes
        return value.replace(tzinfo=UTC)
    return value


def _ts(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass(frozen=True)
class Rollout:
    """A rollout as stored.

    Attributes:
        id: Its number.
        plan: What it was asked to do.
        status: ``running``, ``promoted``, ``rolled_back`` or ``completed``.
        step_index: The current step.
        share: The candidate's share of answered traffic now (0 for a shadow).
        revision: Bumped by every state change.
        reason: Why the last decision was taken.
        started_at: When it started.
        step_started_at: When the current step began.
        updated_at: When it last changed.
        finished_at: When it ended (None while running).
        created_by: Who started it.
        live_metrics: The latest per-arm metrics a server published (None before any).
        metrics_at: When they were published.
    """

    id: int
    plan: RolloutPlan
    status: str
    step_index: int
    share: float
    revision: int
    reason: str
    started_at: datetime
    step_started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    created_by: str
    live_metrics: dict[str, Any] | None = None
    metrics_at: datetime | None = None

    @property
    def model(self) -> str:
        """The model being rolled out."""
        return self.plan.model

    @property
    def mode(self) -> str:
        """``canary`` or ``shadow``."""
        return self.plan.mode

    @property
    def candidate_version(self) -> int:
        """The version rolled out."""
        return self.plan.candidate_version

    @property
    def champion_version(self) -> int:
        """The ``@champion`` it is compared with."""
        return self.plan.champion_version

    @property
    def running(self) -> bool:
        """Whether it is still running."""
        return self.status == RUNNING

    @property
    def state(self) -> RolloutState:
        """The state machine's view of it."""
        return RolloutState(self.status, self.step_index, self.step_started_at.timestamp())

    @property
    def resource(self) -> str:
        """The audit resource, ``model:<name>/<candidate>``."""
        return f"model:{self.model}/{self.candidate_version}"

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {
            "id": self.id,
            "model": self.model,
            "mode": self.mode,
            "candidate_version": self.candidate_version,
            "champion_version": self.champion_version,
            "status": self.status,
            "step_index": self.step_index,
            "steps": list(self.plan.steps),
            "share": self.share,
            "bake_s": self.plan.bake_s,
            "guardrails": self.plan.guardrails.to_dict(),
            "revision": self.revision,
            "reason": self.reason,
            "started_at": self.started_at.isoformat(),
            "step_started_at": self.step_started_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "created_by": self.created_by,
            "live_metrics": self.live_metrics,
            "metrics_at": self.metrics_at.isoformat() if self.metrics_at else None,
        }


@dataclass(frozen=True)
class DecisionRecord:
    """One recorded decision."""

    id: int
    rollout_id: int
    at: datetime
    action: str
    code: str
    reason: str
    step_index: int
    from_share: float
    to_share: float
    metrics: dict[str, Any]
    actor: str

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {
            "id": self.id,
            "rollout_id": self.rollout_id,
            "at": self.at.isoformat(),
            "action": self.action,
            "code": self.code,
            "reason": self.reason,
            "step_index": self.step_index,
            "from_share": self.from_share,
            "to_share": self.to_share,
            "metrics": self.metrics,
            "actor": self.actor,
        }


def _to_rollout(row: Any) -> Rollout:
    return Rollout(
        id=int(row.id),
        plan=RolloutPlan.from_dict(json.loads(row.plan)),
        status=row.status,
        step_index=int(row.step_index),
        share=float(row.share),
        revision=int(row.revision),
        reason=row.reason,
        started_at=_utc(row.started_at) or datetime.now(UTC),
        step_started_at=_utc(row.step_started_at) or datetime.now(UTC),
        updated_at=_utc(row.updated_at) or datetime.now(UTC),
        finished_at=_utc(row.finished_at),
        created_by=row.created_by,
        live_metrics=json.loads(row.live_metrics) if row.live_metrics else None,
        metrics_at=_utc(row.metrics_at),
    )


def _to_decision(row: Any) -> DecisionRecord:
    return DecisionRecord(
        int(row.id),
        int(row.rollout_id),
        _utc(row.at) or datetime.now(UTC),
        row.action,
        row.code,
        row.reason,
        int(row.step_index),
        float(row.from_share),
        float(row.to_share),
        json.loads(row.metrics or "{}"),
        row.actor,
    )


class RolloutStore:
    """Read and write rollouts; every change is audited in its own transaction.

    Args:
        db: The metadata database.
        audit: The audit log.
    """

    def __init__(self, db: MetadataDB, audit: AuditLog) -> None:
        self.db = db
        self.audit = audit

    # -- writes --------------------------------------------------------------------------------
    def create(self, plan: RolloutPlan, *, actor: str, now: float, reason: str = "") -> Rollout:
        """Start a rollout of ``plan`` (status running, first step), with its ``start`` decision.

        Raises:
            ConflictError: the model already has a running rollout.
        """
        state = start_state(now)
        at = _ts(now)
        why = reason or f"started: {plan.describe()}, v{plan.candidate_version} against v{plan.champion_version}"
        share = state.share(plan)
        t = rollouts
        try:
            with self.db.begin() as conn:
                key = conn.execute(
                    t.insert().values(
                        model_name=plan.model,
                        active_model=plan.model,
                        mode=plan.mode,
                        candidate_version=plan.candidate_version,
                        champion_version=plan.champion_version,
                        status=state.status,
                        step_index=0,
                        share=share,
                        plan=json.dumps(plan.to_dict()),
                        revision=0,
                        reason=why,
                        started_at=at,
                        step_started_at=at,
                        updated_at=at,
                        created_by=actor,
                    )
                ).inserted_primary_key
                assert key is not None
                rollout_id = int(key[0])
                conn.execute(
                    rollout_decisions.insert().values(
                        rollout_id=rollout_id,
                        at=at,
                        action="start",
                        code="start",
                        reason=why,
                        step_index=0,
                        from_share=0.0,
                        to_share=share,
                        metrics=json.dumps({"plan": plan.to_dict()}),
                        actor=actor,
                    )
                )
                self.audit.append(
                    actor,
                    "deployments.start",
                    f"model:{plan.model}/{plan.candidate_version}",
                    details={"rollout_id": rollout_id, "mode": plan.mode, "plan": plan.to_dict()},
                    conn=conn,
                )
        except sa.exc.IntegrityError:
            running = self.current(plan.model)
            raise ConflictError(
                f"Model {plan.model!r} already has a running rollout"
                + (f" (#{running.id}, v{running.candidate_version} {running.mode})" if running else ""),
                hint=f"finish it first: 'aiw deploy promote {plan.model}' or 'aiw deploy rollback {plan.model}'",
            ) from None
        return self.get(rollout_id)

    def record(
        self, rollout: Rollout, decision: Decision, *, actor: str, now: float, metrics: dict[str, Any] | None = None
    ) -> Rollout:
        """Persist a decision taken on ``rollout`` (as read at ``rollout.revision``).

        State changes (advance, rollback, promote, complete) are compare-and-set on the revision;
        a ``hold`` only records itself and its reason. ``continue`` is not a decision and is
        refused.

        Raises:
            ConflictError: the rollout changed since it was read (another process decided first).
            InvalidInputError: a ``continue``.
        """
        if decision.action == "continue":
            raise InvalidInputError("'continue' is not a decision to record; keep baking.")
        at = _ts(now)
        new = decision.state
        plan = rollout.plan
        to_share = new.share(plan)
        doc = {"checks": [c.to_dict() for c in decision.checks], **(metrics or {})}
        t = rollouts
        with self.db.begin() as conn:
            values: dict[str, Any] = {"reason": decision.reason, "updated_at": at}
            if decision.changes_state:
                values.update(
                    status=new.status,
                    step_index=new.step_index,
                    share=to_share,
                    step_started_at=_ts(new.step_started_at),
                    revision=rollout.revision + 1,
                )
                if new.final:
                    values.update(active_model=None, finished_at=at)
            changed = conn.execute(
                t.update()
                .where((t.c.id == rollout.id) & (t.c.revision == rollout.revision) & (t.c.status == RUNNING))
                .values(**values)
            ).rowcount
            if changed != 1:
                raise ConflictError(f"Rollout #{rollout.id} changed since it was read; re-read it and decide again")
            conn.execute(
                rollout_decisions.insert().values(
                    rollout_id=rollout.id,
                    at=at,
                    action=decision.action,
                    code=decision.code,
                    reason=decision.reason,
                    step_index=new.step_index,
                    from_share=rollout.share,
                    to_share=to_share,
                    metrics=json.dumps(doc, default=str),
                    actor=actor,
                )
            )
            self.audit.append(
                actor,
                f"deployments.{decision.action}",
                rollout.resource,
                details={
                    "rollout_id": rollout.id,
                    "mode": plan.mode,
                    "code": decision.code,
                    "reason": decision.reason[:2000],
                    "from_share": rollout.share,
                    "to_share": to_share,
                    "step_index": new.step_index,
                    "status": new.status,
                },
                conn=conn,
            )
        return self.get(rollout.id)

    def publish_metrics(self, rollout_id: int, metrics: dict[str, Any], *, now: float) -> None:
        """Store the latest live per-arm metrics (telemetry for other processes; not audited)."""
        with self.db.begin() as conn:
            conn.execute(
                rollouts.update()
                .where(rollouts.c.id == rollout_id)
                .values(live_metrics=json.dumps(metrics, default=str), metrics_at=_ts(now))
            )

    # -- reads ---------------------------------------------------------------------------------
    def get(self, rollout_id: int) -> Rollout:
        """One rollout.

        Raises:
            NotFoundError: no such rollout.
        """
        with self.db.engine.connect() as conn:
            row = conn.execute(sa.select(rollouts).where(rollouts.c.id == int(rollout_id))).first()
        if row is None:
            raise NotFoundError(f"No rollout #{rollout_id}", hint="see 'aiw deploy history'")
        return _to_rollout(row)

    def current(self, model: str) -> Rollout | None:
        """The running rollout of ``model``, if any."""
        with self.db.engine.connect() as conn:
            row = conn.execute(sa.select(rollouts).where(rollouts.c.active_model == model)).first()
        return _to_rollout(row) if row is not None else None

    def latest(self, model: str) -> Rollout | None:
        """The newest rollout of ``model`` (running or not), if any."""
        with self.db.engine.connect() as conn:
            row = conn.execute(
                sa.select(rollouts).where(rollouts.c.model_name == model).order_by(rollouts.c.id.desc()).limit(1)
            ).first()
        return _to_rollout(row) if row is not None else None

    def active(self) -> list[Rollout]:
        """Every running rollout."""
        with self.db.engine.connect() as conn:
            rows = conn.execute(sa.select(rollouts).where(rollouts.c.status == RUNNING).order_by(rollouts.c.id)).all()
        return [_to_rollout(r) for r in rows]

    def history(self, model: str | None = None, *, limit: int = 50) -> list[Rollout]:
        """Rollouts, newest first, optionally of one model."""
        if not 1 <= limit <= 10_000:
            raise InvalidInputError(f"The 'limit' parameter must be in [1, 10000]. Got {limit}.")
        q = sa.select(rollouts).order_by(rollouts.c.id.desc()).limit(limit)
        if model:
            q = q.where(rollouts.c.model_name == model)
        with self.db.engine.connect() as conn:
            return [_to_rollout(r) for r in conn.execute(q).all()]

    def decisions(self, rollout_id: int) -> list[DecisionRecord]:
        """Every decision of one rollout, oldest first."""
        t = rollout_decisions
        with self.db.engine.connect() as conn:
            rows = conn.execute(sa.select(t).where(t.c.rollout_id == int(rollout_id)).order_by(t.c.id)).all()
        return [_to_decision(r) for r in rows]
