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

# --- MLOps: governed model registry, approvals, aliases, served traffic (migration 0002_mlops) ---
from sqlalchemy import Float, ForeignKey, UniqueConstraint  # noqa: E402

__all__ += [
    "mlops_alias_history",
    "mlops_aliases",
    "mlops_approvals",
    "mlops_model_versions",
    "mlops_prediction_log",
    "mlops_promotion_requests",
]

mlops_model_versions = Table(
    "mlops_model_versions",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("model_name", String(200), nullable=False),
    Column("version", Integer, nullable=False, comment="the MLflow registry version number"),
    Column("run_id", String(64), nullable=False),
    Column("model_uri", String(1000), nullable=False, comment="models:/m-... of the logged model"),
    Column("artifact_uri", String(2000), nullable=False, comment="where the model files live"),
    Column("flavor", String(50), nullable=False),
    Column("manifest", Text, nullable=False, comment="canonical JSON {relative path: sha256}"),
    Column("manifest_sha256", String(64), nullable=False),
    Column("trusted_types", Text, nullable=False, comment="JSON list of skops types allowed at load"),
    Column("signature", Text, nullable=False, comment="JSON input schema [{name, type, required}]"),
    Column("metrics", Text, nullable=False, comment="JSON metrics of the run"),
    Column("data_fingerprint", Text, nullable=False, comment="JSON {table, rows, sha256, ...}"),
    Column("code_version", Text, nullable=False, comment="JSON {package, version, git_commit}"),
    Column("parent_version", Integer, nullable=True),
    Column("description", Text, nullable=False),
    Column("registered_by", String(200), nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("model_name", "version", name="uq_mlops_model_versions_name_version"),
)

mlops_promotion_requests = Table(
    "mlops_promotion_requests",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("model_name", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("target", String(20), nullable=False, comment="staging | production"),
    Column("status", String(20), nullable=False,
           comment="pending | approved | rejected | promoted | withdrawn"),
    Column("reason", Text, nullable=False),
    Column("requested_by", String(200), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=True),
)
Index("ix_mlops_requests_model_status", mlops_promotion_requests.c.model_name,
      mlops_promotion_requests.c.status)

mlops_approvals = Table(
    "mlops_approvals",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("request_id", BigInteger, ForeignKey("mlops_promotion_requests.id"), nullable=False),
    Column("approver", String(200), nullable=False),
    Column("decision", String(20), nullable=False, comment="approved | rejected"),
    Column("comment", Text, nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("request_id", "approver", name="uq_mlops_approvals_request_approver"),
)

mlops_aliases = Table(
    "mlops_aliases",
    metadata,
    Column("model_name", String(200), primary_key=True),
    Column("alias", String(50), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("request_id", BigInteger, nullable=True),
    Column("set_by", String(200), nullable=False),
    Column("set_at", DateTime(timezone=True), nullable=False),
)

mlops_alias_history = Table(
    "mlops_alias_history",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("model_name", String(200), nullable=False),
    Column("alias", String(50), nullable=False),
    Column("version", Integer, nullable=False),
    Column("previous_version", Integer, nullable=True),
    Column("action", String(20), nullable=False, comment="promote | rollback"),
    Column("request_id", BigInteger, nullable=True),
    Column("actor", String(200), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
Index("ix_mlops_alias_history_model_alias", mlops_alias_history.c.model_name, mlops_alias_history.c.alias)

mlops_prediction_log = Table(
    "mlops_prediction_log",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("ts", String(32), nullable=False, comment="UTC ISO-8601 with microseconds"),
    Column("model_name", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("alias", String(50), nullable=True),
    Column("rows", Integer, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("inputs", Text, nullable=False, comment="JSON records (capped per request)"),
    Column("outputs", Text, nullable=False, comment="JSON predictions and probabilities"),
    Column("source", String(20), nullable=False, comment="rest | stream | batch"),
)
Index("ix_mlops_prediction_log_model_id", mlops_prediction_log.c.model_name, mlops_prediction_log.c.id)
