"""The metadata schema: migrations build exactly what schema.py declares, and data moves forward."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.integration


def _db(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    from aiw.db import MetadataDB

    if backend == "sqlite":
        return MetadataDB(f"sqlite:///{tmp_path / 'platform.db'}")
    return MetadataDB(request.getfixturevalue("pg_url"))


def _ignored(diff: Any) -> bool:
    """Alembic's own table, and column comments (documentation in schema.py, not migrated)."""
    if isinstance(diff, tuple):
        return diff[0] == "remove_table" and diff[1].name == "alembic_version"
    return all(op[0] == "modify_comment" for op in diff)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migrations_build_what_schema_declares(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from aiw.db import schema

    db = _db(backend, tmp_path, request)
    db.upgrade()
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = [d for d in compare_metadata(ctx, schema.metadata) if not _ignored(d)]
    assert diff == [], f"schema.py and the migrations disagree: {diff}"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_served_traffic_migration_moves_the_old_request_log(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """0006 folds serving's request log into served_predictions, one row per logged input row."""
    from alembic import command

    from aiw.mlops.monitoring.traffic import recent_predictions

    db = _db(backend, tmp_path, request)
    with db.engine.begin() as conn:
        cfg = db.alembic_config(conn)
        for head in ("0002_mlops", "0003_data_platform", "0004_monitoring", "0005_rollout"):
            command.upgrade(cfg, head)
        conn.execute(
            sa.text(
                "INSERT INTO mlops_prediction_log"
                " (ts, model_name, version, alias, rows, latency_ms, inputs, outputs, source)"
                " VALUES (:ts, 'fraud', 3, 'champion', 5, 2.5, :inputs, :outputs, 'stream')"
            ),
            {
                "ts": "2026-11-01T10:00:00.000001+00:00",
                "inputs": json.dumps([{"amount": 10.0, "region": "north"}, {"amount": 20.0, "region": "south"}]),
                "outputs": json.dumps({"predictions": [0, 1], "scores": [0.1, 0.9]}),
            },
        )
    db.upgrade()
    rows = recent_predictions(db, "fraud", limit=10)
    assert [(r["request_id"], r["features"]["amount"], r["prediction"], r["score"]) for r in rows] == [
        ("log-1:1", 20.0, 1, 0.9),
        ("log-1:0", 10.0, 0, 0.1),
    ]
    kept = {(r["version"], r["alias"], r["source"], r["latency_ms"]) for r in rows}
    assert kept == {("3", "champion", "stream", 2.5)}
    assert rows[0]["ts"].startswith("2026-11-01T10:00:00")
    with db.engine.connect() as conn:
        assert "mlops_prediction_log" not in sa.inspect(conn).get_table_names()
    db.upgrade()  # idempotent
