"""Tables of the platform metadata database, one schema for SQLite and PostgreSQL.

Alembic migrations in ``aiw/db/migrations/versions`` create and change these tables; this module
is the description the code reads and writes through (SQLAlchemy Core).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = ["api_keys", "audit_head", "audit_log", "metadata"]

metadata = MetaData()

# Autoincrementing BIGINT on PostgreSQL, INTEGER PRIMARY KEY (rowid) on SQLite.
_BigId = BigInteger().with_variant(Integer(), "sqlite")

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(16), primary_key=True, comment="public key id, part of the key"),
    Column("name", String(200), nullable=False),
    Column("role", String(32), nullable=False),
    Column("key_hash", String(64), nullable=False, comment="SHA-256 of the whole key"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", _BigId, primary_key=True, autoincrement=False),
    Column("ts", String(32), nullable=False, comment="UTC ISO-8601 with microseconds"),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("resource", String(500), nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("details", Text, nullable=False, comment="canonical JSON"),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
Index("ix_audit_log_ts", audit_log.c.ts)
Index("ix_audit_log_action", audit_log.c.action)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)
