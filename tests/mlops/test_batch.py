"""Batch scoring of warehouse tables: chunks, exact results, atomic output, refusals, and Ray."""

from __future__ import annotations

from typing import Any

import pytest
from mlops_helpers import People

from aiw.errors import InvalidInputError, ModelError, NotFoundError, PolicyViolation


@pytest.fixture(scope="module")
def features_table(mlops_ws: Any) -> str:
    """The claim features as a warehouse table (with extra columns: ids, gender, label)."""
    from aiw.mlops.training import CLAIM_FEATURES_SQL

    conn = mlops_ws.connect_warehouse(ai_functions=False)
    try:
        conn.execute(f"CREATE OR REPLACE TABLE batch_input AS {CLAIM_FEATURES_SQL}")
    finally:
        conn.close()
    return "batch_input"


@pytest.fixture(scope="module")
def faulty(mlops_ws: Any, features_table: str, people: People) -> str:
    """A registered version that raises on about 10% of the claims."""
    from aiw.mlops.registry import ModelRegistry
    from aiw.mlops.rollout.faults import log_faulty_model
    from aiw.mlops.training import CATEGORICAL_FEATURES, LABEL, NUMERIC_FEATURES, build_fraud_pipeline

    frame = _fetch(mlops_ws, f"SELECT * FROM {features_table} LIMIT 600")
    columns = [*NUMERIC_FEATURES, *CATEGORICAL_FEATURES]
    pipeline = build_fraud_pipeline().fit(frame[columns], frame[LABEL])
    logged = log_faulty_model(mlops_ws, pipeline, frame[columns], frame[LABEL], name="batch-faulty")
    ModelRegistry(mlops_ws).register(logged, "batch-faulty", people.ds)
    return "batch-faulty"


def _fails_typed_and_changes_nothing(ws: Any, faulty: str, table: str, people: People, engine: Any) -> None:
    """Scoring with ``faulty`` raises a ModelError naming it, and the output table keeps its rows."""
    from aiw.mlops.serving.batch import score_table

    conn = ws.connect_warehouse(ai_functions=False)
    try:
        conn.execute("CREATE OR REPLACE TABLE batch_faulty_out AS SELECT 42 AS kept")
    finally:
        conn.close()
    with pytest.raises(ModelError, match=r"'batch-faulty' version 1 failed .* RuntimeError; the output") as info:
        score_table(ws, faulty, table, "batch_faulty_out", people.ds, ref=1, engine=engine, chunk_rows=500)
    assert info.value.fields() == {"model": "batch-faulty", "version": 1, "error_type": "RuntimeError"}
    assert "injected failure" not in str(info.value)  # the model's own text may carry data
    assert _fetch(ws, "SELECT * FROM batch_faulty_out")["kept"].tolist() == [42]
    record = ws.audit.records(action="models.score", resource="model:batch-faulty/1")[0]
    assert record.outcome == "failure" and record.details["error_type"] == "RuntimeError"


def _fetch(ws: Any, sql: str) -> Any:
    conn = ws.connect_warehouse(ai_functions=False)
    try:
        return conn.execute(sql).df()
    finally:
        conn.close()


@pytest.mark.unit
def test_local_engine_scores_in_chunks_exactly_and_audits(
    mlops_ws: Any, champion: str, features_table: str, people: People
) -> None:
    import numpy as np

    from aiw.mlops.serving import ModelResolver
    from aiw.mlops.serving.batch import score_table

    ticks: list[tuple[int, int]] = []
    result = score_table(
        mlops_ws,
        champion,
        features_table,
        "batch_scored",
        people.ds,
        engine="local",
        chunk_rows=700,
        progress=lambda done, total: ticks.append((done, total)),
    )
    assert (result.rows, result.chunks, result.version, result.engine) == (3000, 5, 1, "local")
    assert ticks == [(700, 3000), (1400, 3000), (2100, 3000), (2800, 3000), (3000, 3000)]
    out = _fetch(mlops_ws, "SELECT * FROM batch_scored")
    assert list(out.columns[-3:]) == ["prediction", "score", "model_version"]
    assert out["claim_id"].tolist() == sorted(out["claim_id"])  # input order kept across chunks
    with ModelResolver(mlops_ws) as resolver:
        loaded, _ = resolver.resolve(champion)
    expected = loaded.reference.model.predict_proba(out[loaded.schema.names])[:, 1]
    assert np.array_equal(out["score"].to_numpy(), expected)  # the model itself: bit for bit
    assert set(out["model_version"]) == {1}
    record = mlops_ws.audit.records(action="models.score", resource=f"model:{champion}/1")[0]
    assert record.actor == "dana" and record.details["rows"] == 3000 and record.details["out"] == "batch_scored"
    again = score_table(mlops_ws, champion, features_table, "batch_scored", people.ds, limit=10)
    assert again.rows == 10 and len(_fetch(mlops_ws, "SELECT * FROM batch_scored")) == 10  # replaced


@pytest.mark.unit
def test_batch_refusals(mlops_ws: Any, champion: str, features_table: str, people: People) -> None:
    from aiw.mlops.serving.batch import score_table

    with pytest.raises(InvalidInputError, match="identifier"):
        score_table(mlops_ws, champion, "claims; DROP TABLE claims", "x", people.ds)
    with pytest.raises(InvalidInputError, match="must differ"):
        score_table(mlops_ws, champion, features_table, features_table, people.ds)
    with pytest.raises(InvalidInputError, match=r"lacks the model.s input columns annual_premium, deductible"):
        score_table(mlops_ws, champion, "claims", "claims_scored", people.ds)
    with pytest.raises(NotFoundError, match="no table 'nope'"):
        score_table(mlops_ws, champion, "nope", "nope_scored", people.ds)
    with pytest.raises(NotFoundError, match="no alias 'staging'"):
        score_table(mlops_ws, champion, features_table, "x_scored", people.ds, ref="staging")
    with pytest.raises(PolicyViolation):
        score_table(mlops_ws, champion, features_table, "x_scored", people.viewer)


@pytest.mark.unit
def test_a_model_that_raises_fails_the_job_typed_and_audited(
    mlops_ws: Any, faulty: str, features_table: str, people: People
) -> None:
    _fails_typed_and_changes_nothing(mlops_ws, faulty, features_table, people, "local")


@pytest.mark.integration
@pytest.mark.slow
def test_ray_engine_gives_identical_results(
    mlops_ws: Any, champion: str, faulty: str, features_table: str, people: People
) -> None:
    import ray

    from aiw.mlops.serving.batch import RayEngine, score_table

    engine = RayEngine(mlops_ws.settings.engine, actors=2)
    try:
        local = score_table(
            mlops_ws, champion, features_table, "batch_local", people.ds, engine="local", chunk_rows=600
        )
        remote = score_table(mlops_ws, champion, features_table, "batch_ray", people.ds, engine=engine, chunk_rows=600)
        _fails_typed_and_changes_nothing(mlops_ws, faulty, features_table, people, engine)  # typed across Ray too
    finally:
        engine.close()
        if ray.is_initialized():
            ray.shutdown()
    assert remote.engine == "ray" and remote.rows == local.rows == 3000 and remote.chunks == 5
    a = _fetch(mlops_ws, "SELECT * FROM batch_local")
    b = _fetch(mlops_ws, "SELECT * FROM batch_ray")
    assert a.equals(b)  # same rows, same order, same floats
