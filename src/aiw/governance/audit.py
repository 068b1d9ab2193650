"""The tamper-evident audit log: an append-only hash chain in the metadata database.

Each record stores the SHA-256 of its predecessor (``prev_hash``) and its own hash over its
content and ``prev_hash``. :meth:`AuditLog.verify` walks the chain and names the first record
that was edited, deleted, inserted or moved. The database refuses UPDATE and DELETE on the table
(triggers created by the migration), so tampering needs deliberate work, and is then detected.

A chain alone cannot catch a forger with write access who rewrites every record from some point
on and the head consistently. :meth:`AuditLog.anchor` closes that: it returns the head (sequence
number and hash) to be kept outside the database (a ticket, a write-once bucket, git); verifying
with anchors then fails if any record at or before an anchor was changed since it was taken.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa

from aiw.db import MetadataDB
from aiw.db.schema import audit_head, audit_log
from aiw.errors import InvalidInputError

__all__ = ["GENESIS", "Anchor", "AuditLog", "AuditRecord", "Outcome", "VerifyReport", "load_anchors"]

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


@dataclass(frozen=True)
class Anchor:
    """The chain's head at one moment: record ``seq`` had hash ``hash``, as seen at ``taken_at``."""

    seq: int
    hash: str
    taken_at: str

    def to_json(self) -> str:
        """One line of JSON (anchors files hold one per line)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any, where: str = "anchor") -> Anchor:
        """Parse and check one anchor."""
        if not isinstance(data, dict) or set(data) - {"seq", "hash", "taken_at"} or "seq" not in data:
            raise InvalidInputError(f"{where} must be an object with seq, hash and taken_at. Got {data!r:.200}")
        seq, digest = data.get("seq"), data.get("hash")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise InvalidInputError(f"{where}: seq must be a non-negative integer. Got {seq!r}")
        if not isinstance(digest, str) or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise InvalidInputError(f"{where}: hash must be 64 lowercase hex digits. Got {digest!r:.80}")
        return cls(seq, digest, str(data.get("taken_at", "")))


def load_anchors(text: str, where: str = "anchors") -> list[Anchor]:
    """Anchors from JSON Lines text (blank lines ignored)."""
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{where} line {n} is not JSON: {exc}") from exc
        out.append(Anchor.from_dict(data, f"{where} line {n}"))
    if not out:
        raise InvalidInputError(f"{where} holds no anchors", hint="write one with 'aiw audit anchor --out FILE'")
    return out


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


def record_hash(
    seq: int, ts: str, actor: str, action: str, resource: str, outcome: str, details_json: str, prev_hash: str
) -> str:
    """The SHA-256 that chains a record to ``prev_hash``."""
    body = json.dumps(
        [seq, ts, actor, action, resource, outcome, details_json, prev_hash], separators=(",", ":"), ensure_ascii=False
    )
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

    def append(
        self,
        actor: str,
        action: str,
        resource: str,
        outcome: Outcome = "success",
        details: dict[str, Any] | None = None,
        *,
        conn: sa.Connection | None = None,
    ) -> AuditRecord:
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

    def _append(
        self, conn: sa.Connection, actor: str, action: str, resource: str, outcome: str, details: dict[str, Any]
    ) -> AuditRecord:
        # The UPDATE takes the row lock (PostgreSQL) / write lock (SQLite) before we read the head.
        conn.execute(audit_head.update().where(audit_head.c.id == 1).values(seq=audit_head.c.seq + 1))
        seq, prev = _head(conn)
        ts = datetime.now(UTC).isoformat(timespec="microseconds")
        details_json = _canonical(details)
        digest = record_hash(seq, ts, actor, action, resource, outcome, details_json, prev)
        conn.execute(
            audit_log.insert().values(
                seq=seq,
                ts=ts,
                actor=actor,
                action=action,
                resource=resource,
                outcome=outcome,
                details=details_json,
                prev_hash=prev,
                hash=digest,
            )
        )
        conn.execute(audit_head.update().where(audit_head.c.id == 1).values(hash=digest))
        return AuditRecord(seq, ts, actor, action, resource, outcome, details, prev, digest)

    def records(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        resource: str | None = None,
        outcome: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 100,
        newest_first: bool = True,
    ) -> list[AuditRecord]:
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
                rows = conn.execute(
                    sa.select(audit_log).where(audit_log.c.seq > last).order_by(audit_log.c.seq).limit(batch)
                ).all()
                if not rows:
                    return
                yield from rows
                last = rows[-1].seq

    def anchor(self) -> Anchor:
        """The current head, to keep outside the database (see the module's docstring)."""
        with self.db.engine.connect() as conn:
            seq, digest = _head(conn)
        return Anchor(seq, digest, datetime.now(UTC).isoformat(timespec="seconds"))

    def verify(self, anchors: Sequence[Anchor] = ()) -> VerifyReport:
        """Walk the whole chain and report the first record that breaks it.

        Detects an edited record (its hash no longer matches its content), a deleted record (a gap
        in the sequence, or a successor whose ``prev_hash`` names a missing hash), an inserted
        record (it does not chain to its predecessor) and reordered records (the chain links
        disagree with the order), plus a head that does not match the last record (truncation).
        With ``anchors``, also a chain rewritten consistently since an anchor was taken: the
        anchored record's hash differs, or the log no longer reaches it.
        """
        pinned = {a.seq: a for a in anchors if a.seq > 0}
        expected_prev, expected_seq, checked = GENESIS, 1, 0
        for row in self._walk():
            checked += 1
            digest = record_hash(
                row.seq, row.ts, row.actor, row.action, row.resource, row.outcome, row.details, row.prev_hash
            )
            if digest != row.hash:
                reason = f"record {row.seq} was edited or moved: its content no longer matches its hash"
                return VerifyReport(False, checked, row.seq, reason)
            if row.seq != expected_seq:
                what = "missing (deleted)" if row.seq > expected_seq else "duplicated"
                bad = expected_seq if row.seq > expected_seq else row.seq
                reason = f"record {expected_seq} is {what}: sequence jumps to {row.seq}"
                return VerifyReport(False, checked, bad, reason)
            if row.prev_hash != expected_prev:
                reason = (
                    f"record {row.seq} does not chain to record {row.seq - 1}: "
                    "inserted, reordered or its predecessor was replaced"
                )
                return VerifyReport(False, checked, row.seq, reason)
            anchor = pinned.get(row.seq)
            if anchor is not None and anchor.hash != row.hash:
                reason = (
                    f"record {row.seq} differs from the anchor taken at {anchor.taken_at or 'an unknown time'}: "
                    "the chain up to it was rewritten since"
                )
                return VerifyReport(False, checked, row.seq, reason)
            expected_prev, expected_seq = row.hash, expected_seq + 1
        with self.db.engine.connect() as conn:
            head_seq, head_hash = _head(conn)
        last = expected_seq - 1
        if head_seq != last or head_hash != expected_prev:
            reason = (
                f"the log ends at record {last} but its head says {head_seq}: "
                "records were removed from the end, appended around the log, or the head was altered"
            )
            return VerifyReport(False, checked, min(head_seq, last + 1), reason)
        beyond = [a for a in anchors if a.seq > last]
        if beyond:
            first = min(beyond, key=lambda a: a.seq)
            reason = (
                f"an anchor names record {first.seq} but the log ends at record {last}: "
                "records were removed since the anchor was taken"
            )
            return VerifyReport(False, checked, last + 1, reason)
        return VerifyReport(True, checked)


def _head(conn: sa.Connection) -> tuple[int, str]:
    """(seq, hash) of the chain's head row."""
    head = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).one()
    return int(head.seq), str(head.hash)


def _iso(value: str, name: str) -> str:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInputError(
            f"The '{name}' filter must be an ISO-8601 time such as 2026-01-31T00:00:00. Got {value!r}."
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat(timespec="microseconds")


def _to_record(row: Any) -> AuditRecord:
    return AuditRecord(
        int(row.seq),
        row.ts,
        row.actor,
        row.action,
        row.resource,
        row.outcome,
        json.loads(row.details),
        row.prev_hash,
        row.hash,
    )
