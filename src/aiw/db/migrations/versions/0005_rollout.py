"""Rollout: canary and shadow deployments, and every decision taken on them.

Revision ID: 0005_rollout
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_rollout"
down_revision = "0001_foundation"
branch_labels = ("rollout",)
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("active_model", sa.String(200), nullable=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("candidate_version", sa.Integer, nullable=False),
        sa.Column("champion_version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("step_index", sa.Integer, nullable=False),
        sa.Column("share", sa.Float, nullable=False),
        sa.Column("plan", sa.Text, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("step_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("live_metrics", sa.Text, nullable=True),
        sa.Column("metrics_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("active_model", name="uq_rollouts_active_model"),
    )
    op.create_index("ix_rollouts_model_id", "rollouts", ["model_name", "id"])
    op.create_table(
        "rollout_decisions",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("rollout_id", sa.BigInteger, sa.ForeignKey("rollouts.id"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("code", sa.String(50), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("step_index", sa.Integer, nullable=False),
        sa.Column("from_share", sa.Float, nullable=False),
        sa.Column("to_share", sa.Float, nullable=False),
        sa.Column("metrics", sa.Text, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
    )
    op.create_index("ix_rollout_decisions_rollout_id", "rollout_decisions", ["rollout_id", "id"])


def downgrade() -> None:
    op.drop_table("rollout_decisions")
    op.drop_table("rollouts")
