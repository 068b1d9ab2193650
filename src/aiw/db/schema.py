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

# --- MLOps: governed model registry, approvals and aliases (migration 0002_mlops) ---
from sqlalchemy import Float, ForeignKey, UniqueConstraint  # noqa: E402

__all__ += [
    "mlops_alias_history",
    "mlops_aliases",
    "mlops_approvals",
    "mlops_model_versions",
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
    Column("status", String(20), nullable=False, comment="pending | approved | rejected | promoted | withdrawn"),
    Column("reason", Text, nullable=False),
    Column("requested_by", String(200), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=True),
)
Index("ix_mlops_requests_model_status", mlops_promotion_requests.c.model_name, mlops_promotion_requests.c.status)

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

# --- Data platform: quality gates, schema snapshots, pipeline runs, embedding snapshots -----------
# (migration 0003_data_platform)

__all__ += [
    "data_check_results",
    "data_check_runs",
    "data_row_counts",
    "data_schema_snapshots",
    "embedding_snapshots",
    "pipeline_runs",
    "pipeline_step_runs",
]

data_check_runs = Table(
    "data_check_runs",
    metadata,
    Column("id", String(32), primary_key=True, comment="uuid4 hex"),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("status", String(20), nullable=False, comment="pass | warn | fail"),
    Column("actor", String(200), nullable=False),
    Column("checks", Integer, nullable=False),
    Column("failures", Integer, nullable=False),
    Column("warnings", Integer, nullable=False),
)
Index("ix_data_check_runs_started", data_check_runs.c.started_at)

data_check_results = Table(
    "data_check_results",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("data_check_runs.id"), nullable=False),
    Column("checked_at", DateTime(timezone=True), nullable=False),
    Column("table_name", String(200), nullable=False),
    Column("check_name", String(50), nullable=False, comment="volume | freshness | schema"),
    Column("status", String(20), nullable=False, comment="pass | warn | fail | skipped"),
    Column("observed", Text, nullable=False),
    Column("expected", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("details", Text, nullable=False, comment="JSON: the series and band, the schema diff ..."),
)
Index("ix_data_check_results_run", data_check_results.c.run_id)
Index(
    "ix_data_check_results_table_check",
    data_check_results.c.table_name,
    data_check_results.c.check_name,
    data_check_results.c.checked_at,
)

data_schema_snapshots = Table(
    "data_schema_snapshots",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("table_name", String(200), nullable=False),
    Column("columns", Text, nullable=False, comment="JSON [[name, type], ...] in table order"),
    Column("fingerprint", String(64), nullable=False, comment="SHA-256 of the columns JSON"),
    Column("accepted_at", DateTime(timezone=True), nullable=False),
    Column("accepted_by", String(200), nullable=False),
    Column("reason", Text, nullable=False),
)
Index("ix_data_schema_snapshots_table", data_schema_snapshots.c.table_name, data_schema_snapshots.c.id)

data_row_counts = Table(
    "data_row_counts",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("run_id", String(32), nullable=False),
    Column("table_name", String(200), nullable=False),
    Column("measured_at", DateTime(timezone=True), nullable=False),
    Column("row_count", BigInteger, nullable=False),
)
Index("ix_data_row_counts_table", data_row_counts.c.table_name, data_row_counts.c.measured_at)

pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("id", String(32), primary_key=True, comment="uuid4 hex"),
    Column("pipeline", String(100), nullable=False),
    Column("status", String(20), nullable=False, comment="running | success | failed"),
    Column("trigger", String(20), nullable=False, comment="manual | schedule | prefect | tour"),
    Column("actor", String(200), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("params", Text, nullable=False, comment="JSON"),
    Column("artifacts_dir", String(2000), nullable=False),
    Column("error", Text, nullable=False, comment="which step failed and why; empty on success"),
)
Index("ix_pipeline_runs_pipeline_started", pipeline_runs.c.pipeline, pipeline_runs.c.started_at)

pipeline_step_runs = Table(
    "pipeline_step_runs",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("pipeline_runs.id"), nullable=False),
    Column("step", String(100), nullable=False),
    Column(
        "status", String(20), nullable=False, comment="pending | running | success | failed | skipped | upstream_failed"
    ),
    Column("attempts", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("seconds", Float, nullable=True),
    Column("error", Text, nullable=False),
    Column("output", Text, nullable=False, comment="JSON the step returned"),
    UniqueConstraint("run_id", "step", name="uq_pipeline_step_runs_run_step"),
)

embedding_snapshots = Table(
    "embedding_snapshots",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("collection", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("status", String(20), nullable=False, comment="accepted | warned | blocked"),
    Column("documents", Integer, nullable=False),
    Column("vectors", Integer, nullable=False),
    Column("dim", Integer, nullable=False),
    Column("mean_norm", Float, nullable=False),
    Column("centroid", Text, nullable=False, comment="JSON list of floats"),
    Column("metrics", Text, nullable=False, comment="JSON drift metrics against the accepted snapshot"),
    Column("actor", String(200), nullable=False),
)
Index("ix_embedding_snapshots_collection", embedding_snapshots.c.collection, embedding_snapshots.c.id)

# --- Monitoring: served traffic, drift reports, alerts and the webhook outbox ----------------------
# (migration 0004_monitoring; 0006_served_traffic made it the one served-traffic store)
from sqlalchemy import Boolean, Float, ForeignKey, UniqueConstraint  # noqa: E402

__all__ += ["alert_outbox", "alerts", "drift_reports", "served_predictions"]

served_predictions = Table(
    "served_predictions",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("ts", DateTime(timezone=True), nullable=False, comment="when the request was served (UTC)"),
    Column("model", String(200), nullable=False),
    Column("version", String(64), nullable=False),
    Column("request_id", String(128), nullable=False, comment="unique per model; a retry is not re-recorded"),
    Column("features", Text, nullable=False, comment="JSON object of the input features"),
    Column("prediction", Text, nullable=False, comment="JSON of the prediction"),
    Column("score", Float, nullable=True, comment="probability of the positive class, when known"),
    Column("label", Text, nullable=True, comment="JSON of the true label, attached later"),
    Column("labeled_at", DateTime(timezone=True), nullable=True),
    Column("latency_ms", Float, nullable=True),
    Column("alias", String(50), nullable=True, comment="the alias the caller asked for (0006)"),
    Column("source", String(20), nullable=False, server_default="rest", comment="rest | stream | batch (0006)"),
    UniqueConstraint("model", "request_id", name="uq_served_predictions_model_request"),
)
Index("ix_served_predictions_model_ts", served_predictions.c.model, served_predictions.c.ts)
Index("ix_served_predictions_model_id", served_predictions.c.model, served_predictions.c.id)

drift_reports = Table(
    "drift_reports",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("subject", String(300), nullable=False, comment="model:NAME or table:REF->CUR"),
    Column("kind", String(32), nullable=False, comment="data | embedding | performance"),
    Column("dataset_drift", Boolean, nullable=False),
    Column("share_drifted", Float, nullable=False),
    Column("n_drifted", Integer, nullable=False),
    Column("n_columns", Integer, nullable=False),
    Column("report", Text, nullable=False, comment="the report as JSON"),
    Column("html_path", String(1000), nullable=True),
    Column("actor", String(200), nullable=False),
)
Index("ix_drift_reports_subject_id", drift_reports.c.subject, drift_reports.c.id)

alerts = Table(
    "alerts",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("rule", String(200), nullable=False),
    Column("severity", String(16), nullable=False, comment="info | warning | critical"),
    Column("subject", String(300), nullable=False),
    Column("message", Text, nullable=False),
    Column("details", Text, nullable=False, comment="JSON"),
    Column("acknowledged_at", DateTime(timezone=True), nullable=True),
    Column("acknowledged_by", String(200), nullable=True),
)
Index("ix_alerts_created_at", alerts.c.created_at)

alert_outbox = Table(
    "alert_outbox",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("alert_id", BigInteger, ForeignKey("alerts.id"), nullable=False),
    Column("url", Text, nullable=False),
    Column("payload", Text, nullable=False, comment="the exact body sent and signed"),
    Column("status", String(16), nullable=False, comment="pending | delivered | dead"),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("locked_until", DateTime(timezone=True), nullable=True, comment="lease of the worker sending it"),
    Column("last_error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
)
Index("ix_alert_outbox_status_next", alert_outbox.c.status, alert_outbox.c.next_attempt_at)

# --- Rollout: canary and shadow deployments and every decision taken on them ---------------------
# (migration 0005_rollout)
from sqlalchemy import Float, ForeignKey, UniqueConstraint  # noqa: E402

__all__ += ["rollout_decisions", "rollouts"]

rollouts = Table(
    "rollouts",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("model_name", String(200), nullable=False),
    Column(
        "active_model",
        String(200),
        nullable=True,
        comment="model_name while running, NULL once finished: one running rollout per model",
    ),
    Column("mode", String(16), nullable=False, comment="canary | shadow"),
    Column("candidate_version", Integer, nullable=False),
    Column("champion_version", Integer, nullable=False),
    Column("status", String(20), nullable=False, comment="running | promoted | rolled_back | completed"),
    Column("step_index", Integer, nullable=False),
    Column("share", Float, nullable=False, comment="candidate share of live traffic now, 0..1"),
    Column("plan", Text, nullable=False, comment="JSON RolloutPlan: steps, bake, guardrails"),
    Column("revision", Integer, nullable=False, comment="bumped by every decision (compare-and-set)"),
    Column("reason", Text, nullable=False, comment="why the last decision was taken"),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("step_started_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("created_by", String(200), nullable=False),
    Column("live_metrics", Text, nullable=True, comment="JSON per-arm metrics of the current step"),
    Column("metrics_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("active_model", name="uq_rollouts_active_model"),
)
Index("ix_rollouts_model_id", rollouts.c.model_name, rollouts.c.id)

rollout_decisions = Table(
    "rollout_decisions",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("rollout_id", BigInteger, ForeignKey("rollouts.id"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("action", String(20), nullable=False, comment="start | advance | hold | rollback | promote | complete"),
    Column("code", String(50), nullable=False, comment="machine-readable reason"),
    Column("reason", Text, nullable=False),
    Column("step_index", Integer, nullable=False, comment="the step after the decision"),
    Column("from_share", Float, nullable=False),
    Column("to_share", Float, nullable=False),
    Column("metrics", Text, nullable=False, comment="JSON per-arm metrics and guardrail checks"),
    Column("actor", String(200), nullable=False),
)
Index("ix_rollout_decisions_rollout_id", rollout_decisions.c.rollout_id, rollout_decisions.c.id)
