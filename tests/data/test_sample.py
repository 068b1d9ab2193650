"""The insurer's sample data: schema, determinism, learnable fraud, varied notes, visible anomalies,
packaged documents, atomic replacement on failure, audit, CLI and tour step."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aiw.data import sample
from aiw.data.sample import TABLES, SampleSummary, generate
from aiw.errors import InvalidInputError
from aiw.rag.loaders import parse_front_matter

pytestmark = pytest.mark.unit

END = date(2025, 6, 30)
ROWS = 20_000

_POSITIVE = ("polite", "cooperative", "grateful", "helpful", "friendly", "pleased", "great", "excellent")
_NEGATIVE = ("angry", "frustrated", "rude", "upset", "hostile", "unhappy", "furious", "dissatisfied")


def _workspace(home: Path):  # type: ignore[no-untyped-def]
    from aiw.settings import build_settings
    from aiw.workspace import Workspace

    return Workspace(build_settings(home=home)).init()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, SampleSummary]]:
    """One workspace with 20,000 claims ending on 2025-06-30, shared read-only by this module."""
    with pytest.MonkeyPatch.context() as mp:
        for var in list(os.environ):
            if var.startswith("AIW_") and not var.startswith("AIW_TEST_"):
                mp.delenv(var)
        ws = _workspace(tmp_path_factory.mktemp("sample") / "ws")
        summary = generate(ws, rows=ROWS, seed=7, end_date=END)
        yield ws, summary
        ws.db.dispose()


@pytest.fixture(scope="module")
def claims(generated):  # type: ignore[no-untyped-def]
    ws, _ = generated
    conn = ws.connect_warehouse(read_only=True, ai_functions=False)
    try:
        return conn.execute("""
            SELECT c.*, p.coverage_limit, p.start_date AS policy_start,
                   date_diff('day', p.start_date, c.incident_date) AS policy_age, cu.gender
            FROM claims c JOIN policies p USING (policy_id) JOIN customers cu ON cu.customer_id = c.customer_id
            ORDER BY c.claim_id""").df()
    finally:
        conn.close()


def _query(ws, sql: str) -> list[tuple[Any, ...]]:  # type: ignore[no-untyped-def]
    conn = ws.connect_warehouse(read_only=True, ai_functions=False)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _snapshot(ws) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Every table's exact contents, in stored order, as Arrow tables."""
    conn = ws.connect_warehouse(read_only=True, ai_functions=False)
    try:
        return {t: conn.execute(f"SELECT * FROM {t}").fetch_arrow_table() for t in TABLES}
    finally:
        conn.close()


# -- schema and relations ------------------------------------------------------------------------
def test_tables_columns_and_types(generated) -> None:  # type: ignore[no-untyped-def]
    ws, summary = generated
    for table, columns in TABLES.items():
        described = [(r[0], r[1]) for r in _query(ws, f"DESCRIBE {table}")]
        assert described == list(columns), table
        assert _query(ws, f"SELECT count(*) FROM {table}")[0][0] == summary.rows[table] > 0
    assert summary.rows["claims"] == ROWS
    assert summary.rows["customers"] == ROWS // 2 and summary.rows["policies"] == ROWS * 3 // 4
    values = {
        ("customers", "gender"): {"F", "M"},
        ("customers", "region"): {"north", "south", "east", "west", "central"},
        ("customers", "segment"): {"retail", "sme", "corporate"},
        ("policies", "line_of_business"): {"auto", "home", "health", "travel", "life"},
        ("policies", "status"): {"active", "lapsed", "cancelled"},
        ("claims", "channel"): {"web", "phone", "agent", "app"},
        ("claims", "status"): {"open", "under_review", "approved", "denied", "paid"},
        ("sample_anomalies", "kind"): {"spike", "drop"},
    }
    for (table, column), expected in values.items():
        assert {r[0] for r in _query(ws, f"SELECT DISTINCT {column} FROM {table}")} == expected
    assert len(_query(ws, "SELECT * FROM information_schema.tables WHERE table_name LIKE '_aiw_stage_%'")) == 0


def test_relations_dates_and_amounts_are_consistent(generated) -> None:  # type: ignore[no-untyped-def]
    ws, summary = generated
    assert (summary.start_date, summary.end_date) == (date(2022, 7, 1), END)
    broken = {
        "claim outside its policy's term": """SELECT count(*) FROM claims c JOIN policies p USING (policy_id)
            WHERE c.incident_date NOT BETWEEN p.start_date AND p.end_date OR c.customer_id <> p.customer_id
               OR c.line_of_business <> p.line_of_business""",
        "claim outside the window": f"""SELECT count(*) FROM claims WHERE incident_date < DATE '{summary.start_date}'
            OR reported_at >= DATE '{END}' + 1 OR reported_at < incident_date OR updated_at < reported_at
            OR updated_at >= DATE '{END}' + 1""",
        "days_to_report disagrees": """SELECT count(*) FROM claims
            WHERE days_to_report <> date_diff('day', incident_date, reported_at::DATE)""",
        "claim region is not the customer's": """SELECT count(*) FROM claims c JOIN customers cu USING (customer_id)
            WHERE c.region <> cu.region""",
        "bad amount": "SELECT count(*) FROM claims WHERE amount <= 0 OR amount IS NULL OR adjuster_notes IS NULL",
        "payment for an unpaid claim": """SELECT count(*) FROM payments JOIN claims c USING (claim_id)
            WHERE c.status NOT IN ('paid', 'approved')""",
        "payment outside the window": f"""SELECT count(*) FROM payments JOIN claims c USING (claim_id)
            WHERE paid_at < c.reported_at OR paid_at >= DATE '{END}' + 1 OR payments.amount <= 0""",
        "paid claim without payments": """SELECT count(*) FROM claims c WHERE status = 'paid'
            AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.claim_id = c.claim_id)""",
        "payments above the limit": """SELECT count(*) FROM (SELECT claim_id, sum(amount) s FROM payments GROUP BY 1)
            JOIN claims USING (claim_id) JOIN policies p USING (policy_id) WHERE s > p.coverage_limit + 0.01""",
        "prior_claims disagrees": """SELECT count(*) FROM (SELECT prior_claims,
            row_number() OVER (PARTITION BY customer_id ORDER BY claim_id) - 1 AS expected FROM claims)
            WHERE prior_claims <> expected""",
        "claim ids not in reporting order": """SELECT count(*) FROM (SELECT reported_at,
            lag(reported_at) OVER (ORDER BY claim_id) AS before FROM claims) WHERE reported_at < before""",
        "customer without a policy": """SELECT count(*) FROM customers cu
            WHERE NOT EXISTS (SELECT 1 FROM policies p WHERE p.customer_id = cu.customer_id)""",
        "signup after first policy": """SELECT count(*) FROM customers cu JOIN (SELECT customer_id,
            min(start_date) s FROM policies GROUP BY 1) USING (customer_id) WHERE cu.signup_date > s""",
        "minor customer or policyholder": """SELECT count(*) FROM customers cu JOIN policies p USING (customer_id)
            WHERE p.start_date < cu.birth_date + INTERVAL 18 YEAR - INTERVAL 1 DAY
               OR cu.signup_date < cu.birth_date + INTERVAL 18 YEAR - INTERVAL 1 DAY
               OR cu.birth_date > DATE '2025-06-30' - INTERVAL 19 YEAR + INTERVAL 1 DAY""",
    }
    for what, sql in broken.items():
        assert _query(ws, sql)[0][0] == 0, what
    paid_share = _query(ws, "SELECT avg((status = 'paid')::INT) FROM claims")[0][0]
    assert 0.5 < paid_share < 0.9
    # instalments: some paid claims are settled in two or three payments
    per_claim = dict(
        _query(ws, "SELECT n, count(*) FROM (SELECT count(*) n FROM payments GROUP BY claim_id) GROUP BY n")
    )
    assert set(per_claim) == {1, 2, 3} and per_claim[1] > per_claim[2] > per_claim[3]


def test_weekly_and_yearly_seasonality_and_trend(claims) -> None:  # type: ignore[no-untyped-def]
    df = claims
    day = df.incident_date.dt
    weekend = day.dayofweek >= 5
    per_day = df.groupby(df.incident_date).size()
    by_dow = per_day.groupby(per_day.index.dayofweek).mean()
    assert by_dow[[5, 6]].max() < 0.75 * by_dow[[0, 1, 2]].min()
    assert weekend.mean() < 2 / 7
    month = day.month
    for line, high, low in (("home", (12, 1, 2), (6, 7, 8)), ("travel", (6, 7, 8), (12, 1, 2))):
        sub = df.line_of_business == line
        assert (sub & month.isin(high)).sum() > 1.5 * (sub & month.isin(low)).sum(), line
    first = ((df.incident_date >= "2022-07-01") & (df.incident_date < "2023-07-01")).sum()
    last = (df.incident_date >= "2024-07-01").sum()
    assert 1.03 < last / first < 1.3
    # amounts follow the claim type: windscreens are cheap, fires are dear
    medians = df.groupby("claim_type").amount.median()
    assert medians["windscreen"] < 1000 < 10_000 < medians["fire"]


# -- determinism -----------------------------------------------------------------------------------
def test_same_seed_same_bytes_and_other_seed_differs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in list(os.environ):
        if var.startswith("AIW_") and not var.startswith("AIW_TEST_"):
            monkeypatch.delenv(var)
    snaps = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        ws = _workspace(tmp_path / name)
        generate(ws, rows=2500, seed=seed, end_date=END)
        snaps.append(_snapshot(ws))
        ws.db.dispose()
    a, b, c = snaps
    for table in TABLES:
        assert a[table].equals(b[table]), table
    for table in ("customers", "policies", "claims", "payments"):
        assert not a[table].equals(c[table]), table
    assert a["documents"].equals(c["documents"])  # fixed text, whatever the seed
    notes_a = set(a["claims"].column("adjuster_notes").to_pylist())
    notes_c = set(c["claims"].column("adjuster_notes").to_pylist())
    assert len(notes_a & notes_c) < 25


# -- fraud ---------------------------------------------------------------------------------------
def test_fraud_rate_and_learnable_signal(claims) -> None:  # type: ignore[no-untyped-def]
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    assert 0.03 <= claims.is_fraud.mean() <= 0.06
    df = claims.iloc[:5000]
    y = df.is_fraud.astype(int)
    features = pd.get_dummies(df[["channel", "claim_type"]]).astype(float)
    features["log_amount"] = np.log(df.amount)
    features["amount_to_limit"] = df.amount / df.coverage_limit
    features["late_report"] = (df.days_to_report > 10).astype(float)
    features["days_to_report"] = np.log1p(df.days_to_report)
    features["prior_claims"] = df.prior_claims.clip(upper=5)
    features["new_policy"] = (df.policy_age < 60).astype(float)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    auc = cross_val_score(model, features, y, cv=cv, scoring="roc_auc").mean()
    assert auc > 0.75, auc
    # gender is usable as a sensitive attribute but is not a feature of the label on its own
    assert set(claims.gender) == {"F", "M"}
    assert 0.4 < (claims.gender == "F").mean() < 0.6
    gender_only = cross_val_score(
        LogisticRegression(),
        (claims[["gender"]] == "F").astype(float),
        claims.is_fraud.astype(int),
        cv=cv,
        scoring="roc_auc",
    ).mean()
    assert gender_only < 0.56
    # fraud is denied more often, which makes status a consequence, not a feature
    denied = claims.status == "denied"
    assert denied[claims.is_fraud].mean() > 2 * denied[~claims.is_fraud].mean()


# -- notes ---------------------------------------------------------------------------------------
def test_notes_are_varied_and_follow_status(claims) -> None:  # type: ignore[no-untyped-def]
    notes = claims.adjuster_notes.iloc[:5000]
    assert notes.nunique() / len(notes) > 0.9
    # not a handful of templates: even with numbers, dates and references masked, many shapes remain
    shapes = notes.str.replace(r"\d", "#", regex=True).str.replace(r"\S+@\S+", "@", regex=True)
    assert shapes.nunique() > 2000
    lower = claims.adjuster_notes.str.lower()
    positive = lower.str.contains("|".join(_POSITIVE))
    negative = lower.str.contains("|".join(_NEGATIVE))
    assert positive.mean() > 0.15 and negative.mean() > 0.1
    denied, paid = claims.status == "denied", claims.status == "paid"
    assert negative[denied].mean() > 2 * negative[paid].mean()
    assert positive[paid].mean() > 2 * positive[denied].mean()
    # subtle fraud cues appear on some fraud claims, rarely on honest ones
    cue = lower.str.contains("inconsistent|story changed|do not match|altered|reluctant")
    assert cue[claims.is_fraud].mean() > 5 * cue[~claims.is_fraud].mean()
    # contact details for ai_redact to find
    email = claims.adjuster_notes.str.contains(r"[\w.]+@[\w.]+\.\w+", regex=True)
    phone = claims.adjuster_notes.str.contains(r"\+\d[\d -]{8,}", regex=True)
    assert 0.01 < email.mean() < 0.08 and 0.01 < phone.mean() < 0.08
    # typos now and then
    typos = r"\bteh\b|recieved|custmer|damgae|insurd|documnets|paymnet|claimnat"
    assert lower.str.contains(typos, regex=True).sum() > 20


# -- anomalies -----------------------------------------------------------------------------------
def test_injected_anomalies_are_visible_in_daily_counts(generated, claims) -> None:  # type: ignore[no-untyped-def]
    ws, summary = generated
    anomalies = _query(
        ws, "SELECT day, line_of_business, kind, expected_claims, injected_claims FROM sample_anomalies ORDER BY day"
    )
    assert 5 <= len(anomalies) == summary.anomalies <= 9
    kinds = [a[2] for a in anomalies]
    assert kinds.count("spike") >= 4 and kinds.count("drop") >= 1
    for column in ("incident_date", "reported_day"):
        df = claims.assign(reported_day=claims.reported_at.dt.normalize())
        counts = df.groupby([column, "line_of_business"]).size()
        for day, line, kind, expected, injected in anomalies:
            series = counts.xs(line, level="line_of_business")
            median = float(series.median())
            seen = int(series.get(np.datetime64(day), 0))
            if column == "incident_date":
                assert seen == injected, (day, line)
            if kind == "spike":
                assert seen >= 3 * median and injected >= 3 * expected, (column, day, line, seen, median)
            else:
                assert seen <= 0.35 * median and injected <= 0.25 * expected, (column, day, line, seen, median)
            assert 0.3 * median < expected < 3 * median


# -- documents -----------------------------------------------------------------------------------
def test_documents_are_packaged_copied_and_indexed(generated) -> None:  # type: ignore[no-untyped-def]
    ws, summary = generated
    rows = _query(
        ws,
        "SELECT doc_id, title, line_of_business, doc_type, path, content, content_hash, access_tags "
        "FROM documents ORDER BY doc_id",
    )
    assert len(rows) >= 25 and summary.rows["documents"] == len(rows)
    assert {r[2] for r in rows} == {"auto", "home", "health", "travel", "life", "general"}
    assert {
        "policy_wording",
        "coverage_summary",
        "exclusions",
        "claims_process",
        "faq",
        "glossary",
        "complaints_procedure",
        "privacy_notice",
        "fraud_policy",
    } <= {r[3] for r in rows}
    for doc_id, title, _line, _type, path, content, digest, tags in rows:
        file = ws.documents_dir / path
        data = file.read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest and data.decode() == content
        assert parse_front_matter(content)[1].startswith(f"# {title}\n") and "\n## " in content, doc_id
        assert 300 <= len(content.split()) <= 1200, (doc_id, len(content.split()))
        assert re.search(r"\d", content), doc_id  # concrete numbers: limits, days, deadlines
        assert tags == ("internal" if doc_id in sample.INTERNAL_DOCUMENTS else "public")
    assert sum(bool(re.search(r"€\d", r[5])) for r in rows) >= 25  # and money amounts in most
    by_id = {r[0]: r for r in rows}
    assert "Flood damage is excluded unless the Flood Extension endorsement is purchased" in by_id["home-exclusions"][5]
    assert by_id["general-fraud-policy"][7] == "internal"
    assert sorted(p.name for p in ws.documents_dir.glob("*.md")) == sorted(r[4] for r in rows)


def test_rewriting_identical_documents_keeps_their_mtime(tmp_path: Path) -> None:
    docs = sample.sample_documents()
    sample._write_documents(tmp_path, docs)
    first = tmp_path / docs[0].filename
    os.utime(first, (1_000_000, 1_000_000))
    (tmp_path / docs[1].filename).write_text("# Changed\n\nedited by hand\n")
    sample._write_documents(tmp_path, docs)
    assert first.stat().st_mtime == 1_000_000
    assert (tmp_path / docs[1].filename).read_text() == docs[1].content
    assert not list(tmp_path.glob(".*.tmp"))


# -- failure, audit, validation --------------------------------------------------------------------
def test_failure_midway_keeps_the_previous_tables(workspace, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    generate(workspace, rows=600, seed=1, end_date=END)
    before = _snapshot(workspace)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(sample, "_build_payments", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        generate(workspace, rows=900, seed=2, end_date=END)
    after = _snapshot(workspace)
    for table in TABLES:
        assert after[table].equals(before[table]), table
    assert after["claims"].num_rows == 600
    assert not _query(workspace, "SELECT * FROM information_schema.tables WHERE table_name LIKE '_aiw_stage_%'")
    failed = workspace.audit.records(action="data.generate", outcome="failure")
    assert len(failed) == 1 and "disk on fire" in failed[0].details["error"]


def test_generation_is_audited(workspace) -> None:  # type: ignore[no-untyped-def]
    generate(workspace, rows=300, seed=9, end_date="2025-01-31")
    generate(workspace, rows=300, seed=9, end_date=END, actor="alice")
    records = workspace.audit.records(action="data.generate")
    assert [r.actor for r in records] == ["alice", "system"]
    assert records[1].resource == "warehouse" and records[1].outcome == "success"
    assert {k: records[1].details[k] for k in ("rows", "seed", "end_date")} == {
        "rows": 300,
        "seed": 9,
        "end_date": "2025-01-31",
    }
    assert workspace.audit.verify().ok


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rows": 99}, "'rows'"),
        ({"rows": 50_000_001}, "'rows'"),
        ({"rows": True}, "'rows'"),
        ({"rows": 1000.0}, "'rows'"),
        ({"seed": -1}, "'seed'"),
        ({"seed": "1"}, "'seed'"),
        ({"end_date": "2025/06/30"}, "'end_date'"),
        ({"end_date": 20250630}, "'end_date'"),
        ({"end_date": "1800-01-01"}, "'end_date'"),
        ({"actor": " "}, "'actor'"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(settings, kwargs: dict[str, Any], match: str) -> None:  # type: ignore[no-untyped-def]
    from aiw.workspace import Workspace

    ws = Workspace(settings)
    with pytest.raises(InvalidInputError, match=match):
        generate(ws, **{"rows": 200, **kwargs})
    assert not ws.warehouse_path.exists()


def test_progress_reports_every_step(workspace) -> None:  # type: ignore[no-untyped-def]
    seen: list[tuple[str, int, int]] = []
    generate(workspace, rows=300, seed=1, end_date=END, progress=lambda *a: seen.append(a))
    steps = list(dict.fromkeys(s for s, _, _ in seen))
    assert steps == ["customers", "policies", "claims", "payments", "sample_anomalies", "documents", "publish"]
    for step in steps:
        last = [(d, t) for s, d, t in seen if s == step][-1]
        assert last[0] == last[1] > 0
    assert ("claims", 300, 300) in seen and ("customers", 150, 150) in seen and ("publish", 6, 6) in seen


# -- shells ----------------------------------------------------------------------------------------
def test_cli_generate(settings) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from aiw.cli import app
    from aiw.settings import load_settings
    from aiw.workspace import Workspace

    load_settings.cache_clear()
    try:
        runner = CliRunner()
        ok = runner.invoke(app, ["data", "generate", "--rows", "400", "--seed", "5", "--end-date", "2025-06-30"])
        assert ok.exit_code == 0, ok.output
        for table in TABLES:
            assert table in ok.output
        assert "400" in ok.output and "2025-06-30" in ok.output
        ws = Workspace(settings)
        count, last = _query(ws, "SELECT count(*), max(incident_date) FROM claims")[0]
        assert count == 400 and date(2025, 5, 31) < last <= END
        assert ws.audit.records(action="data.generate")[0].actor.startswith("cli:")
        too_few = runner.invoke(app, ["data", "generate", "--rows", "99"])
        assert too_few.exit_code == 2 and "between 100 and 50,000,000" in too_few.output
        bad_date = runner.invoke(app, ["data", "generate", "--rows", "200", "--end-date", "30/06/2025"])
        assert bad_date.exit_code != 0 and isinstance(bad_date.exception, InvalidInputError)
        ws.db.dispose()
    finally:
        load_settings.cache_clear()


def test_tour_step(workspace, settings) -> None:  # type: ignore[no-untyped-def]
    from rich.console import Console

    from aiw.tour import TourContext

    console = Console(record=True, width=120)
    ctx = TourContext(workspace, settings, console, rows=500, seed=2)
    sample.tour_step(ctx)
    summary = ctx.facts["sample"]
    assert isinstance(summary, SampleSummary) and summary.rows["claims"] == 500
    text = console.export_text()
    for table in TABLES:
        assert re.search(rf"{table}\s+[\d,]+ rows", text), table
    assert workspace.audit.records(action="data.generate")[0].actor == "tour"
