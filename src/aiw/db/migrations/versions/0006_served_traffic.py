"""One served-traffic store: serving writes ``served_predictions``, which monitoring reads.

Serving used to log requests to ``mlops_prediction_log`` (one row per request, sampled inputs
as JSON) while drift monitoring read ``served_predictions`` (one row per prediction), so
``aiw monitor drift --model`` never saw what the server answered. This revision adds the two
columns serving kept that monitoring lacked (``alias``, ``source``), an index for trimming the
store per model, moves the logged rows over (one row per logged input row, request id
``log-<id>:<row>``) and drops the old table. It joins the MLOps and monitoring branches.

Revision ID: 0006_served_traffic
Revises: 0002_mlops, 0004_monitoring
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0006_served_traffic"
down_revision = ("0002_mlops", "0004_monitoring")
branch_labels = None
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_BATCH = 5_000


def _served_rows(log_row: sa.Row) -> list[dict[str, object]]:
    """One ``served_predictions`` row per input row that the old log kept."""
    inputs = json.loads(log_row.inputs)
    outputs = json.loads(log_row.outputs)
    predictions = outputs.get("predictions") or []
    scores = outputs.get("scores") or []
    ts = datetime.fromisoformat(log_row.ts)
    ts = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    return [
        {
            "ts": ts,
            "model": log_row.model_name,
            "version": str(log_row.version),
            "request_id": f"log-{log_row.id}:{i}",
            "features": json.dumps(features, separators=(",", ":"), default=str),
            "prediction": json.dumps(predictions[i] if i < len(predictions) else None, default=str),
            "score": scores[i] if i < len(scores) else None,
            "latency_ms": log_row.latency_ms,
            "alias": log_row.alias,
            "source": log_row.source,
        }
        for i, features in enumerate(inputs)
    ]


def upgrade() -> None:
    with op.batch_alter_table("served_predictions") as batch:
        batch.add_column(sa.Column("alias", sa.String(50), nullable=True))
        batch.add_column(sa.Column("source", sa.String(20), nullable=False, server_default="rest"))
    op.create_index("ix_served_predictions_model_id", "served_predictions", ["model", "id"])

    conn = op.get_bind()
    meta = sa.MetaData()
    log = sa.Table("mlops_prediction_log", meta, autoload_with=conn)
    served = sa.Table("served_predictions", meta, autoload_with=conn)
    last = 0
    while True:
        chunk = conn.execute(sa.select(log).where(log.c.id > last).order_by(log.c.id).limit(_BATCH)).all()
        if not chunk:
            break
        rows = [r for log_row in chunk for r in _served_rows(log_row)]
        if rows:
            conn.execute(served.insert(), rows)
        last = chunk[-1].id
    op.drop_index("ix_mlops_prediction_log_model_id", table_name="mlops_prediction_log")
    op.drop_table("mlops_prediction_log")


def downgrade() -> None:
    """Recreate the old (empty) request log; served traffic stays in ``served_predictions``."""
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
    op.drop_index("ix_served_predictions_model_id", table_name="served_predictions")
    with op.batch_alter_table("served_predictions") as batch:
        batch.drop_column("source")
        batch.drop_column("alias")
