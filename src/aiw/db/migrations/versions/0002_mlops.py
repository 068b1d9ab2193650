"""MLOps: governed model versions, promotion requests, approvals, aliases, served traffic.

Revision ID: 0002_mlops
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_mlops"
down_revision = "0001_foundation"
branch_labels = ("mlops",)
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "mlops_model_versions",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("model_uri", sa.String(1000), nullable=False),
        sa.Column("artifact_uri", sa.String(2000), nullable=False),
        sa.Column("flavor", sa.String(50), nullable=False),
        sa.Column("manifest", sa.Text, nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("trusted_types", sa.Text, nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("metrics", sa.Text, nullable=False),
        sa.Column("data_fingerprint", sa.Text, nullable=False),
        sa.Column("code_version", sa.Text, nullable=False),
        sa.Column("parent_version", sa.Integer, nullable=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("registered_by", sa.String(200), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("model_name", "version", name="uq_mlops_model_versions_name_version"),
    )
    op.create_table(
        "mlops_promotion_requests",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("target", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_mlops_requests_model_status", "mlops_promotion_requests", ["model_name", "status"])
    op.create_table(
        "mlops_approvals",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.BigInteger, sa.ForeignKey("mlops_promotion_requests.id"), nullable=False),
        sa.Column("approver", sa.String(200), nullable=False),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("request_id", "approver", name="uq_mlops_approvals_request_approver"),
    )
    op.create_table(
        "mlops_aliases",
        sa.Column("model_name", sa.String(200), primary_key=True),
        sa.Column("alias", sa.String(50), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("request_id", sa.BigInteger, nullable=True),
        sa.Column("set_by", sa.String(200), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "mlops_alias_history",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("alias", sa.String(50), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("previous_version", sa.Integer, nullable=True),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("request_id", sa.BigInteger, nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_mlops_alias_history_model_alias", "mlops_alias_history", ["model_name", "alias"])
    op.create_table(
        "mlops_prediction_log",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("ts", sa.String(32), nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("alias", sa.String(50), nullable=True),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("inputs", sa.Text, nullable=False),
        sa.Column("outputs", sa.Text, nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
    )
    op.create_index("ix_mlops_prediction_log_model_id", "mlops_prediction_log", ["model_name", "id"])


def downgrade() -> None:
    op.drop_index("ix_mlops_prediction_log_model_id", table_name="mlops_prediction_log")
    op.drop_table("mlops_prediction_log")
    op.drop_index("ix_mlops_alias_history_model_alias", table_name="mlops_alias_history")
    op.drop_table("mlops_alias_history")
    op.drop_table("mlops_aliases")
    op.drop_table("mlops_approvals")
    op.drop_index("ix_mlops_requests_model_status", table_name="mlops_promotion_requests")
    op.drop_table("mlops_promotion_requests")
    op.drop_table("mlops_model_versions")
