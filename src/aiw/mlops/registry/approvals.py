"""The approval workflow: request, approve or reject, promote, roll back. Every step audited.

A data scientist requests that a version be promoted to a target (``staging`` or ``production``);
approvers other than the requester approve or reject it with a comment; the model's policy
(``settings.approval_policy(name)``) says how many distinct approvals it needs and which metric
gates it must pass. Only an approved, gate-passing version can take the target's alias
(``@staging`` or ``@champion``), and only this module moves aliases, in MLflow and in the
governance tables together. Rollback moves an alias back to the version it held before, by the
alias's own history. Refusals are audited too, with outcome ``denied``.

Request states::

    pending --(N approvals)--> approved --(promote)--> promoted
       |                          |
       +--(a rejection)--> rejected   +--(another version promoted to the target)--> superseded
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from aiw.db.schema import mlops_alias_history, mlops_aliases, mlops_approvals, mlops_promotion_requests
from aiw.errors import AiwError, BackendError, ConflictError, InvalidInputError, NotFoundError, PolicyViolation
from aiw.governance.identity import Principal
from aiw.mlops.registry.versions import ALIAS_OF_TARGET, MAX_ID, TARGETS, ModelRegistry, ModelVersion, _notify

if TYPE_CHECKING:
    from aiw.settings import ApprovalPolicy
    from aiw.workspace import Workspace

__all__ = ["Decision", "GateResult", "PromotionRequest", "PromotionWorkflow", "evaluate_gates"]

_GATE = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(-?\d+(?:\.\d+)?(?:[eE]-?\d+)?)\s*$")
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True)
class GateResult:
    """One metric gate checked against a version's metrics."""

    metric: str
    rule: str
    value: float | None
    passed: bool

    def describe(self) -> str:
        """``auc 0.83 >=0.80 passed``."""
        shown = "missing" if self.value is None else f"{self.value:.4g}"
        return f"{self.metric} {shown} {self.rule.strip()} {'passed' if self.passed else 'FAILED'}"


def evaluate_gates(gates: dict[str, str], metrics: dict[str, float]) -> list[GateResult]:
    """Check every gate (``{"auc": ">=0.80"}``) against ``metrics``; a missing metric fails.

    Raises:
        InvalidInputError: a gate is not ``<op><number>`` with op one of >=, <=, >, <, ==, !=.
    """
    results = []
    for metric, rule in sorted(gates.items()):
        match = _GATE.match(str(rule))
        if not match:
            raise InvalidInputError(
                f"The gate {metric!r}: {rule!r} is malformed; write it as an operator and a number, e.g. '>=0.80'."
            )
        op, threshold = match.group(1), float(match.group(2))
        value = metrics.get(metric)
        results.append(GateResult(metric, rule, value, value is not None and _OPS[op](float(value), threshold)))
    return results


@dataclass(frozen=True)
class Decision:
    """One approver's decision on a request."""

    approver: str
    decision: str
    comment: str
    decided_at: datetime


@dataclass(frozen=True)
class PromotionRequest:
    """A request to promote a version to a target, with its decisions so far."""

    id: int
    model: str
    version: int
    target: str
    status: str
    reason: str
    requested_by: str
    requested_at: datetime
    decided_at: datetime | None
    decisions: tuple[Decision, ...] = field(default_factory=tuple)
    approvals_needed: int = 1

    @property
    def alias(self) -> str:
        """The alias this request would move."""
        return ALIAS_OF_TARGET[self.target]

    @property
    def approvals(self) -> int:
        """Distinct approvals so far."""
        return sum(1 for d in self.decisions if d.decision == "approved")

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {
            "id": self.id,
            "model": self.model,
            "version": self.version,
            "target": self.target,
            "alias": self.alias,
            "status": self.status,
            "reason": self.reason,
            "requested_by": self.requested_by,
            "requested_at": self.requested_at.isoformat(),
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "approvals": self.approvals,
            "approvals_needed": self.approvals_needed,
            "decisions": [
                {
                    "approver": d.approver,
                    "decision": d.decision,
                    "comment": d.comment,
                    "decided_at": d.decided_at.isoformat(),
                }
                for d in self.decisions
            ],
        }


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class PromotionWorkflow:
    """Request, approve, reject, promote and roll back model versions under each model's policy.

    Args:
        workspace: The workspace; its settings hold the approval policies.
        registry: The version registry (one is made when omitted).
    """

    def __init__(self, workspace: Workspace, registry: ModelRegistry | None = None) -> None:
        self.workspace = workspace
        self.registry = registry or ModelRegistry(workspace)
        self.db = workspace.db
        self.audit = workspace.audit

    def policy(self, name: str) -> ApprovalPolicy:
        """The approval policy of model ``name``."""
        return self.workspace.settings.approval_policy(name)

    # -- reads ---------------------------------------------------------------------------------
    def get(self, request_id: int) -> PromotionRequest:
        """One request with its decisions.

        Raises:
            NotFoundError: no such request.
        """
        if not 1 <= int(request_id) <= MAX_ID:
            raise NotFoundError(f"No promotion request #{request_id}", hint="see 'aiw models requests'")
        found = self._load(mlops_promotion_requests.c.id == int(request_id))
        if not found:
            raise NotFoundError(f"No promotion request #{request_id}", hint="see 'aiw models show NAME'")
        return found[0]

    def requests(
        self, name: str | None = None, *, status: str | None = None, limit: int = 200
    ) -> list[PromotionRequest]:
        """Requests, newest first, optionally of one model and in one status."""
        cond: Any = sa.true()
        if name:
            cond = cond & (mlops_promotion_requests.c.model_name == name)
        if status:
            cond = cond & (mlops_promotion_requests.c.status == status)
        return self._load(cond, limit=limit)

    def pending(self, name: str | None = None) -> list[PromotionRequest]:
        """Requests waiting for approvals."""
        return self.requests(name, status="pending")

    def _load(self, cond: Any, limit: int = 200) -> list[PromotionRequest]:
        t = mlops_promotion_requests
        with self.db.engine.connect() as conn:
            rows = conn.execute(sa.select(t).where(cond).order_by(t.c.id.desc()).limit(limit)).all()
            ids = [r.id for r in rows]
            decisions: dict[int, list[Decision]] = {}
            if ids:
                for d in conn.execute(
                    sa.select(mlops_approvals)
                    .where(mlops_approvals.c.request_id.in_(ids))
                    .order_by(mlops_approvals.c.id)
                ):
                    decisions.setdefault(int(d.request_id), []).append(
                        Decision(d.approver, d.decision, d.comment, _utc(d.decided_at) or datetime.now(UTC))
                    )
        return [
            PromotionRequest(
                int(r.id),
                r.model_name,
                int(r.version),
                r.target,
                r.status,
                r.reason,
                r.requested_by,
                _utc(r.requested_at) or datetime.now(UTC),
                _utc(r.decided_at),
                tuple(decisions.get(int(r.id), [])),
                self.policy(r.model_name).approvals,
            )
            for r in rows
        ]

    def gates(self, mv: ModelVersion) -> list[GateResult]:
        """The model's metric gates checked against this version."""
        return evaluate_gates(self.policy(mv.name).gates, mv.metrics)

    # -- steps ---------------------------------------------------------------------------------
    def _deny(
        self, principal: Principal, action: str, resource: str, exc: AiwError, details: dict[str, Any] | None = None
    ) -> AiwError:
        return self.registry.deny(principal, action, resource, exc, details)

    def request(
        self, name: str, version: int, target: str, principal: Principal, *, reason: str = ""
    ) -> PromotionRequest:
        """Ask for ``version`` of ``name`` to be promoted to ``target``.

        Raises:
            PolicyViolation: the principal may not request, or the version fails a metric gate.
            NotFoundError: unknown model or version.
            ConflictError: the version already holds the target's alias or has an open request.
            InvalidInputError: an unknown target.
        """
        resource = f"model:{name}/{version}"
        self.registry.require(principal, "models:request", "models.request", resource)
        if target not in TARGETS:
            raise self._deny(
                principal,
                "models.request",
                resource,
                InvalidInputError(f"Unknown promotion target {target!r}; use one of {', '.join(TARGETS)}."),
            )
        try:
            mv = self.registry.get(name, version)
        except NotFoundError as exc:
            raise self._deny(principal, "models.request", resource, exc) from None
        failed = [g for g in self.gates(mv) if not g.passed]
        if failed:
            raise self._deny(
                principal,
                "models.request",
                resource,
                PolicyViolation(
                    f"Version {version} of {name!r} fails the policy's metric gates: "
                    f"{'; '.join(g.describe() for g in failed)}",
                    hint="train a better model or change the policy",
                ),
                {"target": target, "gates": [g.describe() for g in failed]},
            )
        alias = ALIAS_OF_TARGET[target]
        if self.registry.aliases(name).get(alias) == mv.version:
            raise self._deny(
                principal,
                "models.request",
                resource,
                ConflictError(f"Version {version} of {name!r} already is @{alias}"),
                {"target": target},
            )
        policy = self.policy(name)
        now = datetime.now(UTC)
        t = mlops_promotion_requests
        with self.db.begin() as conn:
            open_request = conn.execute(
                sa.select(t.c.id).where(
                    (t.c.model_name == name)
                    & (t.c.version == mv.version)
                    & (t.c.target == target)
                    & t.c.status.in_(("pending", "approved"))
                )
            ).first()
            if open_request is None:
                status = "approved" if policy.approvals == 0 else "pending"
                key = conn.execute(
                    t.insert().values(
                        model_name=name,
                        version=mv.version,
                        target=target,
                        status=status,
                        reason=reason,
                        requested_by=principal.name,
                        requested_at=now,
                        decided_at=now if status == "approved" else None,
                    )
                ).inserted_primary_key
                assert key is not None
                request_id = int(key[0])
                self.audit.append(
                    principal.name,
                    "models.request",
                    resource,
                    details={
                        "request_id": int(request_id),
                        "target": target,
                        "reason": reason,
                        "status": status,
                        "approvals_needed": policy.approvals,
                        "gates": [g.describe() for g in self.gates(mv)],
                    },
                    conn=conn,
                )
        if open_request is not None:
            raise self._deny(
                principal,
                "models.request",
                resource,
                ConflictError(
                    f"Version {version} of {name!r} already has open request #{open_request.id} for {target}",
                    hint=f"approve it: 'aiw models approve {open_request.id}'",
                ),
                {"target": target},
            )
        return self.get(int(request_id))

    def approve(self, request_id: int, principal: Principal, *, comment: str = "") -> PromotionRequest:
        """Approve a pending request; it becomes ``approved`` once the policy's count is reached.

        Raises:
            PolicyViolation: the principal may not approve, or is the requester (no self-approval).
            ConflictError: the request is not pending, or this approver already decided it.
            NotFoundError: no such request.
        """
        return self._decide(request_id, principal, "approved", comment)

    def reject(self, request_id: int, principal: Principal, *, comment: str) -> PromotionRequest:
        """Reject a pending request (a comment saying why is required); it cannot be promoted.

        Raises:
            InvalidInputError: no comment.
            PolicyViolation, ConflictError, NotFoundError: as for :meth:`approve`.
        """
        return self._decide(request_id, principal, "rejected", comment)

    def _decide(self, request_id: int, principal: Principal, decision: str, comment: str) -> PromotionRequest:
        action = "models.approve" if decision == "approved" else "models.reject"
        resource = f"request:{request_id}"
        self.registry.require(principal, "models:approve", action, resource)
        if decision == "rejected" and not (comment or "").strip():
            raise self._deny(
                principal,
                action,
                resource,
                InvalidInputError("A rejection needs a comment saying why.", hint="pass --comment"),
            )
        try:
            request = self.get(request_id)
        except NotFoundError as exc:
            raise self._deny(principal, action, resource, exc) from None
        resource = f"model:{request.model}/{request.version}"
        details = {"request_id": request.id, "target": request.target, "comment": comment}
        if principal.name == request.requested_by:
            raise self._deny(
                principal,
                action,
                resource,
                PolicyViolation(
                    f"{principal.name} requested #{request.id} and cannot also decide it (no self-approval)",
                    hint="ask another approver",
                ),
                details,
            )
        if request.status != "pending":
            raise self._deny(
                principal,
                action,
                resource,
                ConflictError(f"Request #{request.id} is {request.status}, not pending"),
                details,
            )
        if any(d.approver == principal.name for d in request.decisions):
            raise self._deny(
                principal,
                action,
                resource,
                ConflictError(f"{principal.name} already decided request #{request.id}"),
                details,
            )
        now = datetime.now(UTC)
        needed = self.policy(request.model).approvals
        t = mlops_promotion_requests
        with self.db.begin() as conn:
            conn.execute(
                mlops_approvals.insert().values(
                    request_id=request.id, approver=principal.name, decision=decision, comment=comment, decided_at=now
                )
            )
            approvals = conn.execute(
                sa.select(sa.func.count())
                .select_from(mlops_approvals)
                .where((mlops_approvals.c.request_id == request.id) & (mlops_approvals.c.decision == "approved"))
            ).scalar()
            if decision == "rejected":
                status = "rejected"
            else:
                status = "approved" if int(approvals or 0) >= needed else "pending"
            if status != "pending":
                conn.execute(
                    t.update()
                    .where((t.c.id == request.id) & (t.c.status == "pending"))
                    .values(status=status, decided_at=now)
                )
            self.audit.append(
                principal.name,
                action,
                resource,
                details={**details, "status": status, "approvals": int(approvals or 0), "approvals_needed": needed},
                conn=conn,
            )
        return self.get(request.id)

    def promote(self, name: str, version: int, target: str, principal: Principal) -> PromotionRequest:
        """Move the target's alias to ``version``: it needs an approved request and passing gates.

        Raises:
            PolicyViolation: the principal may not promote, no approved request exists, or a
                metric gate fails.
            NotFoundError: unknown model or version.
            IntegrityError: the version's files fail their checksums.
        """
        resource = f"model:{name}/{version}"
        self.registry.require(principal, "models:promote", "models.promote", resource)
        if target not in TARGETS:
            raise self._deny(
                principal,
                "models.promote",
                resource,
                InvalidInputError(f"Unknown promotion target {target!r}; use one of {', '.join(TARGETS)}."),
            )
        try:
            mv = self.registry.get(name, version)
        except NotFoundError as exc:
            raise self._deny(principal, "models.promote", resource, exc) from None
        approved = [r for r in self.requests(name, status="approved") if r.version == mv.version and r.target == target]
        if not approved:
            pending = [r for r in self.pending(name) if r.version == mv.version and r.target == target]
            hint = (
                f"request #{pending[0].id} has {pending[0].approvals} of {pending[0].approvals_needed} approvals"
                if pending
                else f"request it first: 'aiw models request {name} {version} --to {target}'"
            )
            raise self._deny(
                principal,
                "models.promote",
                resource,
                PolicyViolation(f"Version {version} of {name!r} has no approved request for {target}", hint=hint),
                {"target": target},
            )
        failed = [g for g in self.gates(mv) if not g.passed]
        if failed:
            raise self._deny(
                principal,
                "models.promote",
                resource,
                PolicyViolation(
                    f"Version {version} of {name!r} fails the policy's metric gates: "
                    f"{'; '.join(g.describe() for g in failed)}"
                ),
                {"target": target},
            )
        self.registry.verified_folder(name, mv.version, actor=principal.name)
        request = approved[0]
        self._move_alias(
            name,
            ALIAS_OF_TARGET[target],
            mv.version,
            principal,
            action="promote",
            request_id=request.id,
            details={"target": target, "gates": [g.describe() for g in self.gates(mv)]},
        )
        return self.get(request.id)

    def rollback(self, name: str, target: str, principal: Principal, *, reason: str = "") -> int:
        """Move the target's alias back to the version it held before the current one.

        Returns:
            The version the alias points at now.

        Raises:
            PolicyViolation: the principal may not promote.
            ConflictError: the alias has no earlier approved version to go back to.
            IntegrityError: that version's files fail their checksums.
        """
        resource = f"model:{name}"
        self.registry.require(principal, "models:promote", "models.rollback", resource)
        if target not in TARGETS:
            raise self._deny(
                principal,
                "models.rollback",
                resource,
                InvalidInputError(f"Unknown promotion target {target!r}; use one of {', '.join(TARGETS)}."),
            )
        alias = ALIAS_OF_TARGET[target]
        current = self.registry.aliases(name).get(alias)
        h = mlops_alias_history
        with self.db.engine.connect() as conn:
            promoted = [
                int(r.version)
                for r in conn.execute(
                    sa.select(h.c.version)
                    .where((h.c.model_name == name) & (h.c.alias == alias) & (h.c.action == "promote"))
                    .order_by(h.c.id)
                ).all()
            ]
        sequence: list[int] = []
        for v in promoted:  # the order in which versions took the alias by approval
            if not sequence or sequence[-1] != v:
                sequence.append(v)
        previous = None
        if current is not None and current in sequence:
            index = len(sequence) - 1 - sequence[::-1].index(current)
            earlier = [v for v in sequence[:index] if v != current]
            previous = earlier[-1] if earlier else None
        if previous is None:
            raise self._deny(
                principal,
                "models.rollback",
                resource,
                ConflictError(
                    f"@{alias} of {name!r} has no earlier approved version to roll back to"
                    + (f" (it points at {current})" if current is not None else " (it is not set)")
                ),
                {"target": target},
            )
        self.registry.verified_folder(name, previous, actor=principal.name)
        self._move_alias(
            name,
            alias,
            previous,
            principal,
            action="rollback",
            request_id=None,
            details={"target": target, "reason": reason, "from_version": current},
        )
        return previous

    def _move_alias(
        self,
        name: str,
        alias: str,
        version: int,
        principal: Principal,
        *,
        action: str,
        request_id: int | None,
        details: dict[str, Any],
    ) -> None:
        """Set the alias in MLflow and in the governance tables, in one audited transaction."""
        now = datetime.now(UTC)
        a, t = mlops_aliases, mlops_promotion_requests
        client = self.registry._client()
        with self.db.begin() as conn:
            row = conn.execute(sa.select(a.c.version).where((a.c.model_name == name) & (a.c.alias == alias))).first()
            previous = int(row.version) if row is not None else None
            if row is None:
                conn.execute(
                    a.insert().values(
                        model_name=name,
                        alias=alias,
                        version=version,
                        request_id=request_id,
                        set_by=principal.name,
                        set_at=now,
                    )
                )
            else:
                conn.execute(
                    a.update()
                    .where((a.c.model_name == name) & (a.c.alias == alias))
                    .values(version=version, request_id=request_id, set_by=principal.name, set_at=now)
                )
            conn.execute(
                mlops_alias_history.insert().values(
                    model_name=name,
                    alias=alias,
                    version=version,
                    previous_version=previous,
                    action=action,
                    request_id=request_id,
                    actor=principal.name,
                    at=now,
                )
            )
            if request_id is not None:
                conn.execute(t.update().where(t.c.id == request_id).values(status="promoted", decided_at=now))
                target = next(k for k, v in ALIAS_OF_TARGET.items() if v == alias)
                # Other approved requests for this target lost the race: they must be requested again.
                conn.execute(
                    t.update()
                    .where(
                        (t.c.model_name == name)
                        & (t.c.target == target)
                        & (t.c.status == "approved")
                        & (t.c.id != request_id)
                    )
                    .values(status="superseded", decided_at=now)
                )
            self.audit.append(
                principal.name,
                f"models.{action}",
                f"model:{name}/{version}",
                details={"alias": alias, "previous_version": previous, "request_id": request_id, **details},
                conn=conn,
            )
            try:  # last, inside the transaction: if MLflow refuses, nothing above is committed
                client.set_registered_model_alias(name, alias, str(version))
            except Exception as exc:
                raise BackendError(f"MLflow could not set @{alias} of {name!r}: {exc}") from exc
        _notify(str(self.workspace.root), name, alias, version)
