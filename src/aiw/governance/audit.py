"""The tamper-evident audit log: an append-only hash chain in the metadata database.

Each record stores the SHA-256 of its predecessor (``prev_hash``) and its own hash over its
content and ``prev_hash``. :meth:`AuditLog.verify` walks the chain and names the first record
that was edited, deleted, inserted or moved. The database refuses UPDATE and DELETE on the table
(triggers created by the migration), so tampering needs deliberate work, and is then detected.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa

from aiw.db import MetadataDB
from aiw.db.schema import audit_head, audit_log
from aiw.errors import InvalidInputError

__all__ = ["GENESIS", "AuditLog", "AuditRecord", "Outcome", "VerifyReport"]

GENESIS = "0" * 64
Outcome = Literal["success", "failure", "denied"]
_OUTCOMES = ("success", "failure", "denied")


@dataclass(frozen=True)
class AuditRecord:
    """One audited change of state."""

    seq: int
    ts: str
    actor: str
    action: str
    resource: str
    outcome: str
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        """The record as plain JSON-ready data."""
        return asdict(self)


@dataclass
class VerifyReport:
    """What :meth:`AuditLog.verify` found."""

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str = ""
    problems: list[str] = field(default_factory=list)


def _canonical(details: dict[str, Any]) -> str:
    return json.dumps(details, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def record_hash(seq: int, ts: str, actor: str, action: str, resource: str, outcome: str,
                details_json: str, prev_hash: str) -> str:
    """The SHA-256 that chains a record to ``prev_hash``."""
    body = json.dumps([seq, ts, actor, action, resource, outcome, details_json, prev_hash],
                      separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


class AuditLog:
    """Append to, read and verify the audit log.

    Appends are serialised: the chain's head row is locked for the length of the transaction, so
    concurrent writers (threads, processes, API workers) always extend the newest record.

    Args:
        db: The metadata database.
    """

    def __init__(self, db: MetadataDB) -> None:
        self.db = db

    def append(self, actor: str, action: str, resource: str, outcome: Outcome = "success",
               details: dict[str, Any] | None = None, *, conn: sa.Connection | None = None) -> AuditRecord:
        """Append one record and return it.

        Args:
            actor: Who did it (a key name, ``cli:<user>``, ``system``).
            action: What was done, dotted (``keys.create``, ``models.approve``).
            resource: What it was done to (``key:ab12cd``, ``model:claims-fraud/3``).
            outcome: ``success``, ``failure`` or ``denied``.
            details: Extra JSON-ready facts; never secrets.
            conn: Append inside the caller's transaction, so the change and its record commit
                together; without it the record gets a transaction of its own.

        Raises:
            InvalidInputError: an empty actor, action or resource, or an unknown outcome.
        """
        for name, value in (("actor", actor), ("action", action), ("resource", resource)):
            if not value or not value.strip():
                raise InvalidInputError(f"The audit record's {name} must not be empty.")
        if outcome not in _OUTCOMES:
            raise InvalidInputError(f"The audit outcome must be one of {_OUTCOMES}. Got {outcome!r}.")
        if conn is not None:
            return self._append(conn, actor, action, resource, outcome, details or {})
        with self.db.begin() as own:
            return self._append(own, actor, action, resource, outcome, details or {})

    def _append(self, conn: sa.Connection, actor: str, action: str, resource: str, outcome: str,
                details: dict[str, Any]) -> AuditRecord:
        # The UPDATE takes the row lock (PostgreSQL) / write lock (SQLite) before we read the head.
        conn.execute(audit_head.update().where(audit_head.c.id == 1).values(seq=audit_head.c.seq + 1))
        head = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).one()
        seq, prev = int(head.seq), head.hash
        ts = datetime.now(UTC).isoformat(timespec="microseconds")
        details_json = _canonical(details)
        digest = record_hash(seq, ts, actor, action, resource, outcome, details_json, prev)
        conn.execute(audit_log.insert().values(
            seq=seq, ts=ts, actor=actor, action=action, resource=resource, outcome=outcome,
            details=details_json, prev_hash=prev, hash=digest))
        conn.execute(audit_head.update().where(audit_head.c.id == 1).values(hash=digest))
        return AuditRecord(seq, ts, actor, action, resource, outcome, details, prev, digest)

    def records(self, *, actor: str | None = None, action: str | None = None,
                resource: str | None = None, outcome: str | None = None, since: str | None = None,
                until: str | None = None, limit: int = 100, newest_first: bool = True) -> list[AuditRecord]:
        """Records matching every given filter (``action`` and ``resource`` match by prefix).

        Args:
            since: ISO-8601 time; records at or after it.
            until: ISO-8601 time; records before it.
            limit: Most records returned (1 to 100,000).
        """
        if not 1 <= limit <= 100_000:
            raise InvalidInputError(f"The 'limit' parameter must be in [1, 100000]. Got {limit}.")
        query = sa.select(audit_log)
        if actor:
            query = query.where(audit_log.c.actor == actor)
        if action:
            query = query.where(audit_log.c.action.startswith(action, autoescape=True))
        if resource:
            query = query.where(audit_log.c.resource.startswith(resource, autoescape=True))
        if outcome:
            query = query.where(audit_log.c.outcome == outcome)
        if since:
            query = query.where(audit_log.c.ts >= _iso(since, "since"))
        if until:
            query = query.where(audit_log.c.ts < _iso(until, "until"))
        order = audit_log.c.seq.desc() if newest_first else audit_log.c.seq.asc()
        with self.db.engine.connect() as conn:
            rows = conn.execute(query.order_by(order).limit(limit)).all()
        return [_to_record(row) for row in rows]

    def _walk(self, batch: int = 5000) -> Iterator[Any]:
        last = -1
        with self.db.engine.connect() as conn:
            while True:
                rows = conn.execute(sa.select(audit_log).where(audit_log.c.seq > last)
                                    .order_by(audit_log.c.seq).limit(batch)).all()
                if not rows:
                    return
                yield from rows
                last = rows[-1].seq

    def verify(self) -> VerifyReport:
        """Walk the whole chain and report the first record that breaks it.

        Detects an edited record (its hash no longer matches its content), a deleted record (a gap
        in the sequence, or a successor whose ``prev_hash`` names a missing hash), an inserted
        record (it does not chain to its predecessor) and reordered records (the chain links
        disagree with the order), plus a head that does not match the last record (truncation).
        """
        expected_prev, expected_seq, checked = GENESIS, 1, 0
        for row in self._walk():
            checked += 1
            digest = record_hash(row.seq, row.ts, row.actor, row.action, row.resource, row.outcome,
                                 row.details, row.prev_hash)
            if digest != row.hash:
                reason = f"record {row.seq} was edited or moved: its content no longer matches its hash"
                return VerifyReport(False, checked, row.seq, reason)
            if row.seq != expected_seq:
                what = "missing (deleted)" if row.seq > expected_seq else "duplicated"
                bad = expected_seq if row.seq > expected_seq else row.seq
                reason = f"record {expected_seq} is {what}: sequence jumps to {row.seq}"
                return VerifyReport(False, checked, bad, reason)
            if row.prev_hash != expected_prev:
                reason = (f"record {row.seq} does not chain to record {row.seq - 1}: "
                          "inserted, reordered or its predecessor was replaced")
                return VerifyReport(False, checked, row.seq, reason)
            expected_prev, expected_seq = row.hash, expected_seq + 1
        with self.db.engine.connect() as conn:
            head = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).one()
        last = expected_seq - 1
        if int(head.seq) != last or head.hash != expected_prev:
            reason = (f"the log ends at record {last} but its head says {head.seq}: "
                      "records were removed from the end, appended around the log, or the head was altered")
            return VerifyReport(False, checked, min(int(head.seq), last + 1), reason)
        return VerifyReport(True, checked)


def _iso(value: str, name: str) -> str:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInputError(
            f"The '{name}' filter must be an ISO-8601 time such as 2026-01-31T00:00:00. Got {value!r}.") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat(timespec="microseconds")


def _to_record(row: Any) -> AuditRecord:
    return AuditRecord(int(row.seq), row.ts, row.actor, row.action, row.resource, row.outcome,
                       json.loads(row.details), row.prev_hash, row.hash)
