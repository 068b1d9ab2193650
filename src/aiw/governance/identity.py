"""Identities: roles, their permissions, and API keys stored only as hashes.

A key reads ``aiw_<id>_<secret>``: the id is public and finds the row, the whole key's SHA-256 is
what is stored and compared (in constant time). Keys are 192-bit random, so a fast hash is the
right tool (as for GitHub or Stripe tokens); a password hash would only slow every request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final

import sqlalchemy as sa

from aiw.db import MetadataDB
from aiw.db.schema import api_keys
from aiw.errors import AuthError, InvalidInputError, NotFoundError, PolicyViolation
from aiw.governance.audit import AuditLog

__all__ = ["PERMISSIONS", "ROLES", "ApiKey", "KeyStore", "Principal", "permissions_of"]

ROLES: Final = ("viewer", "analyst", "data_scientist", "approver", "admin")

_VIEW = frozenset(
    {
        "status:read",
        "metrics:read",
        "audit:read",
        "models:read",
        "deployments:read",
        "data:read",
        "features:read",
        "rag:query",
        "pipelines:read",
        "monitor:read",
    }
)
_ANALYZE = _VIEW | {"sql:query", "insights:run"}
_SCIENCE = _ANALYZE | {
    "models:write",
    "models:predict",
    "models:request",
    "deployments:write",
    "features:write",
    "rag:write",
    "data:write",
    "pipelines:run",
    "monitor:write",
}
_APPROVE = _VIEW | {"models:approve", "models:predict"}

PERMISSIONS: Final[dict[str, frozenset[str]]] = {
    "viewer": _VIEW,
    "analyst": frozenset(_ANALYZE),
    "data_scientist": frozenset(_SCIENCE),
    "approver": frozenset(_APPROVE),
    "admin": frozenset(_SCIENCE | _APPROVE | {"keys:admin", "audit:verify", "models:promote"}),
}
"""What each role may do. Routes and library calls name one permission each."""


def permissions_of(role: str) -> frozenset[str]:
    """The permissions of ``role``; raises :class:`InvalidInputError` for an unknown role."""
    try:
        return PERMISSIONS[role]
    except KeyError:
        raise InvalidInputError(f"Unknown role {role!r}; use one of {', '.join(ROLES)}.") from None


@dataclass(frozen=True)
class Principal:
    """Who is acting: a key's name and role, or a local operator."""

    name: str
    role: str
    key_id: str | None = None

    def can(self, permission: str) -> bool:
        """Whether this principal's role grants ``permission``."""
        return permission in PERMISSIONS.get(self.role, frozenset())

    def require(self, permission: str) -> None:
        """Raise :class:`PolicyViolation` unless the role grants ``permission``."""
        if not self.can(permission):
            raise PolicyViolation(
                f"{self.name} (role {self.role}) lacks the permission {permission!r}",
                hint=f"use a key whose role has it: {', '.join(r for r in ROLES if permission in PERMISSIONS[r])}",
            )


@dataclass(frozen=True)
class ApiKey:
    """A stored key, without its secret."""

    id: str
    name: str
    role: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def active(self) -> bool:
        """Whether the key still authenticates."""
        return self.revoked_at is None


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    """Create, list, revoke and authenticate API keys; every change is audited.

    Args:
        db: The metadata database.
        audit: The audit log that records each change.
    """

    def __init__(self, db: MetadataDB, audit: AuditLog) -> None:
        self.db = db
        self.audit = audit

    def create(self, name: str, role: str, *, actor: str) -> tuple[ApiKey, str]:
        """Create a key; returns it and the secret, which is shown once and never stored."""
        permissions_of(role)
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidInputError("A key's name must be 1 to 200 characters.")
        key_id = secrets.token_hex(6)
        secret = f"aiw_{key_id}_{secrets.token_urlsafe(24)}"
        now = datetime.now(UTC)
        with self.db.begin() as conn:
            conn.execute(
                api_keys.insert().values(
                    id=key_id, name=name, role=role, key_hash=_digest(secret), created_at=now, created_by=actor
                )
            )
            self.audit.append(actor, "keys.create", f"key:{key_id}", details={"name": name, "role": role}, conn=conn)
        return ApiKey(key_id, name, role, now, actor, None, None), secret

    def list(self, *, include_revoked: bool = True) -> list[ApiKey]:
        """Every key, newest first."""
        query = sa.select(api_keys).order_by(api_keys.c.created_at.desc())
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        with self.db.engine.connect() as conn:
            return [_to_key(row) for row in conn.execute(query)]

    def revoke(self, key_id: str, *, actor: str) -> ApiKey:
        """Revoke a key at once; later requests with it are refused."""
        now = datetime.now(UTC)
        with self.db.begin() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).first()
            if row is None:
                raise NotFoundError(f"No API key with id {key_id!r}", hint="see 'aiw keys list'")
            if row.revoked_at is None:
                conn.execute(api_keys.update().where(api_keys.c.id == key_id).values(revoked_at=now))
            self.audit.append(actor, "keys.revoke", f"key:{key_id}", details={"name": row.name}, conn=conn)
        key = _to_key(row)
        return replace(key, revoked_at=key.revoked_at or now)

    def authenticate(self, key: str | None) -> Principal:
        """The principal a presented key stands for.

        Raises:
            AuthError: no key, a malformed or unknown key, or a revoked one.
        """
        if not key:
            raise AuthError("No API key given", hint="send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
        parts = key.split("_")
        if len(parts) < 3 or parts[0] != "aiw":
            raise AuthError(
                "Malformed API key", hint="keys look like aiw_<id>_<secret>; create one with 'aiw keys create'"
            )
        with self.db.engine.connect() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.id == parts[1])).first()
        if row is None or not hmac.compare_digest(row.key_hash, _digest(key)):
            raise AuthError("Unknown API key", hint="create one with 'aiw keys create --role ROLE'")
        if row.revoked_at is not None:
            raise AuthError(f"API key {row.id} was revoked", hint="create a new key with 'aiw keys create'")
        return Principal(name=row.name, role=row.role, key_id=row.id)


def _to_key(row: sa.Row) -> ApiKey:
    created = _utc(row.created_at) or datetime.now(UTC)
    return ApiKey(row.id, row.name, row.role, created, row.created_by, _utc(row.revoked_at), _utc(row.last_used_at))


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:  # SQLite hands back naive datetimes
        return value.replace(tzinfo=UTC)
    return value
