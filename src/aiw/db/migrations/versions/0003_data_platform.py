"""Data platform: quality-check runs and results, schema snapshots, row counts, pipeline runs,
pipeline step runs and embedding snapshots.

Revision ID: 0003_data_platform
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_data_platform"
down_revision = "0001_foundation"
branch_labels = ("data_platform",)
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "data_check_runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("checks", sa.Integer, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("warnings", sa.Integer, nullable=False),
    )
    op.create_index("ix_data_check_runs_started", "data_check_runs", ["started_at"])
    op.create_table(
        "data_check_results",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("data_check_runs.id"), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("table_name", sa.String(200), nullable=False),
        sa.Column("check_name", sa.String(50), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("observed", sa.Text, nullable=False),
        sa.Column("expected", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
    )
    op.create_index("ix_data_check_results_run", "data_check_results", ["run_id"])
    op.create_index(
        "ix_data_check_results_table_check", "data_check_results", ["table_name", "check_name", "checked_at"]
    )
    op.create_table(
        "data_schema_snapshots",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("table_name", sa.String(200), nullable=False),
        sa.Column("columns", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_by", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_data_schema_snapshots_table", "data_schema_snapshots", ["table_name", "id"])
    op.create_table(
        "data_row_counts",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("table_name", sa.String(200), nullable=False),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("row_count", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_data_row_counts_table", "data_row_counts", ["table_name", "measured_at"])
    op.create_table(
        "pipeline_runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("pipeline", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("artifacts_dir", sa.String(2000), nullable=False),
        sa.Column("error", sa.Text, nullable=False),
    )
    op.create_index("ix_pipeline_runs_pipeline_started", "pipeline_runs", ["pipeline", "started_at"])
    op.create_table(
        "pipeline_step_runs",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("pipeline_runs.id"), nullable=False),
        sa.Column("step", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seconds", sa.Float, nullable=True),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("output", sa.Text, nullable=False),
        sa.UniqueConstraint("run_id", "step", name="uq_pipeline_step_runs_run_step"),
    )
    op.create_table(
        "embedding_snapshots",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("collection", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("documents", sa.Integer, nullable=False),
        sa.Column("vectors", sa.Integer, nullable=False),
        sa.Column("dim", sa.Integer, nullable=False),
        sa.Column("mean_norm", sa.Float, nullable=False),
        sa.Column("centroid", sa.Text, nullable=False),
        sa.Column("metrics", sa.Text, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
    )
    op.create_index("ix_embedding_snapshots_collection", "embedding_snapshots", ["collection", "id"])


def downgrade() -> None:
    op.drop_index("ix_embedding_snapshots_collection", table_name="embedding_snapshots")
    op.drop_table("embedding_snapshots")
    op.drop_table("pipeline_step_runs")
    op.drop_index("ix_pipeline_runs_pipeline_started", table_name="pipeline_runs")
    op.drop_table("pipeline_runs")
    op.drop_index("ix_data_row_counts_table", table_name="data_row_counts")
    op.drop_table("data_row_counts")
    op.drop_index("ix_data_schema_snapshots_table", table_name="data_schema_snapshots")
    op.drop_table("data_schema_snapshots")
    op.drop_index("ix_data_check_results_table_check", table_name="data_check_results")
    op.drop_index("ix_data_check_results_run", table_name="data_check_results")
    op.drop_table("data_check_results")
    op.drop_index("ix_data_check_runs_started", table_name="data_check_runs")
    op.drop_table("data_check_runs")
