"""The dbt project, built through the programmatic runner against a generated workspace."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from aiw.data.dbt_runner import PROJECT_DIR, DbtRunner, project_dir

pytestmark = pytest.mark.unit

MODELS = {
    "stg_customers",
    "stg_policies",
    "stg_claims",
    "stg_payments",
    "stg_documents",
    "claims_daily",
    "customer_360",
    "claim_features",
    "customer_features",
    "document_index",
}


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _q(ws, sql: str, params=None):  # type: ignore[no-untyped-def]
    from aiw.data._warehouse import warehouse

    with warehouse(ws) as conn:
        return conn.execute(sql, params or []).fetchall()


def test_project_is_found_and_root_dbt_points_at_it() -> None:
    assert project_dir() == PROJECT_DIR
    root_dbt = Path(__file__).resolve().parents[2] / "dbt"
    assert (root_dbt / "dbt_project.yml").is_file()
    assert root_dbt.resolve() == PROJECT_DIR.resolve()


def test_build_reports_every_model_and_test(built_ws) -> None:  # type: ignore[no-untyped-def]
    result = built_ws.build_result
    assert result.success and not result.failures
    kinds = {n.kind for n in result.nodes}
    assert {"model", "test", "source"} <= kinds
    assert {n.name for n in result.nodes if n.kind == "model"} == MODELS
    tests = [n for n in result.nodes if n.kind == "test"]
    assert len(tests) >= 40
    names = {n.name for n in tests}
    assert "unique_claim_features_claim_id" in names
    assert any(n.startswith("relationships_stg_claims_policy_id") for n in names)
    assert any(n.startswith("accepted_values_stg_claims_channel") for n in names)
    assert {n.name for n in result.nodes if n.kind == "source"} >= {"raw.claims", "raw.customers"}
    assert all(n.seconds >= 0 and n.unique_id for n in result.nodes)
    # artifacts and logs land in the workspace, not in the project
    assert Path(result.target_path) == built_ws.path("artifacts") / "dbt"
    assert (Path(result.target_path) / "run_results.json").is_file()
    assert (built_ws.path("logs") / "dbt" / "dbt.log").is_file()
    assert not (PROJECT_DIR / "target").exists() and not (PROJECT_DIR / "logs").exists()


def test_marts_hold_what_they_promise(built_ws) -> None:  # type: ignore[no-untyped-def]
    claims, customers, documents = _q(
        built_ws,
        "SELECT (SELECT count(*) FROM main.claims), "
        "(SELECT count(*) FROM main.customers), (SELECT count(*) FROM main.documents)",
    )[0]
    assert _q(built_ws, "SELECT count(*), count(DISTINCT claim_id) FROM marts.claim_features")[0] == (claims, claims)
    assert _q(built_ws, "SELECT count(*) FROM marts.customer_360")[0][0] == customers
    assert _q(built_ws, "SELECT sum(claims) FROM marts.claims_daily")[0][0] == claims
    assert _q(built_ws, "SELECT count(*) FROM marts.document_index")[0][0] == documents
    # claim features are computed from the claim, its policy and its customer at reporting time
    bad = _q(
        built_ws,
        """
        SELECT count(*) FROM marts.claim_features f
        JOIN main.claims c USING (claim_id) JOIN main.policies p ON p.policy_id = c.policy_id
        JOIN main.customers u ON u.customer_id = c.customer_id
        WHERE f.event_timestamp <> c.reported_at
           OR abs(f.amount_to_limit - c.amount / p.coverage_limit) > 1e-9
           OR f.policy_age_days <> (c.incident_date - p.start_date)
           OR f.customer_age <> floor((c.incident_date - u.birth_date) / 365.25)
           OR f.is_fraud <> c.is_fraud OR f.gender <> u.gender OR f.premium <> p.annual_premium""",
    )
    assert bad[0][0] == 0
    cols = {r[0] for r in _q(built_ws, "DESCRIBE marts.claim_features")}
    assert {
        "claim_id",
        "event_timestamp",
        "amount",
        "amount_to_limit",
        "days_to_report",
        "prior_claims",
        "policy_age_days",
        "channel",
        "line_of_business",
        "region",
        "customer_age",
        "credit_score",
        "premium",
        "deductible",
        "gender",
        "is_fraud",
    } <= cols
    # the MLOps trainer reads this mart when it has every column of its own feature query
    from aiw.mlops.training import CATEGORICAL_FEATURES, LABEL, NUMERIC_FEATURES, SENSITIVE_ATTRIBUTE

    assert {*CATEGORICAL_FEATURES, *NUMERIC_FEATURES, LABEL, SENSITIVE_ATTRIBUTE, "claim_id"} <= cols
    # the document index carries the content hash the RAG refresh compares
    assert (
        _q(built_ws, "SELECT count(*) FROM marts.document_index WHERE content_hash = sha256(content)")[0][0]
        == documents
    )


def test_customer_features_are_as_of_their_timestamp(built_ws) -> None:  # type: ignore[no-untyped-def]
    """Every history row counts exactly the claims reported at or before its own timestamp."""
    wrong = _q(
        built_ws,
        """
        SELECT count(*) FROM marts.customer_features f
        WHERE f.claims_to_date <> (SELECT count(*) FROM main.claims c
                                   WHERE c.customer_id = f.customer_id AND c.reported_at <= f.event_timestamp)
           OR f.policies_to_date <> (SELECT count(*) FROM main.policies p
                                     WHERE p.customer_id = f.customer_id AND p.start_date <= f.event_timestamp)""",
    )
    assert wrong[0][0] == 0


def test_progress_events_and_untouched_project(built_ws, clone) -> None:  # type: ignore[no-untyped-def]
    before = _tree_digest(PROJECT_DIR)
    ws = clone(built_ws)
    events = []
    result = DbtRunner(ws).build(select=["marts"], freshness=False, progress=events.append, actor="tests")
    assert result.success
    assert {n.name for n in result.nodes if n.kind == "model"} == MODELS - {m for m in MODELS if m.startswith("stg")}
    starts = [e for e in events if e.phase == "start"]
    finishes = [e for e in events if e.phase == "finish"]
    assert len(finishes) == len(result.nodes) and len(starts) == len(result.nodes)
    assert starts[0].index == 1 and starts[0].total == len(result.nodes)
    assert {e.status for e in finishes} <= {"success", "pass"}
    assert _tree_digest(PROJECT_DIR) == before
    audit = [r for r in ws.audit.records(limit=5) if r.action == "data.build"]
    assert audit and audit[0].outcome == "success" and audit[0].details["counts"]


def test_failures_are_reported_with_their_dependants_skipped(built_ws, clone) -> None:  # type: ignore[no-untyped-def]
    from aiw.data._warehouse import warehouse

    ws = clone(built_ws)
    with warehouse(ws, read_only=False) as conn:
        conn.execute("INSERT INTO main.claims SELECT * FROM main.claims WHERE claim_id = 1")  # a duplicate key
        conn.execute("UPDATE main.claims SET reported_at = reported_at - INTERVAL 30 DAY")  # and stale
    result = DbtRunner(ws).build(actor="tests")
    assert not result.success
    by_name = {n.name: n for n in result.nodes}
    assert by_name["raw.claims"].status == "error" and "h old" in by_name["raw.claims"].message
    assert by_name["source_unique_raw_claims_claim_id"].status == "fail"
    assert by_name["source_unique_raw_claims_claim_id"].failures == 1
    assert by_name["stg_claims"].status == "skipped"  # downstream of the failed source test
    assert by_name["claim_features"].status == "skipped"
    assert by_name["stg_customers"].status == "success"  # independent of it
    assert ws.audit.records(limit=1)[0].outcome == "failure"


def test_docs_are_generated_under_the_workspace(built_ws, clone) -> None:  # type: ignore[no-untyped-def]
    ws = clone(built_ws)
    path = DbtRunner(ws).docs()
    assert path == ws.path("artifacts") / "dbt" / "static_index.html"
    assert path.stat().st_size > 100_000
    assert (path.parent / "catalog.json").is_file()
    assert "claim_features" in (path.parent / "catalog.json").read_text()


def test_missing_warehouse_and_bad_arguments(workspace) -> None:  # type: ignore[no-untyped-def]
    from aiw.errors import InvalidInputError, NotFoundError

    with pytest.raises(NotFoundError, match="does not exist yet"):
        DbtRunner(workspace).build()
    with pytest.raises(InvalidInputError, match="'threads'"):
        DbtRunner(workspace, threads=0)
