"""Quality gates: volume z-score, freshness, schema changes; injected faults are each caught."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from aiw.data._warehouse import warehouse
from aiw.data.quality import DEFAULT_MONITORS, QualityGates, TableMonitor, volume_band
from aiw.errors import InvalidInputError

pytestmark = pytest.mark.unit

CLAIMS = TableMonitor("main.claims", volume_column="reported_at", freshness_column="reported_at")


def _by(report, table: str, check: str):  # type: ignore[no-untyped-def]
    [result] = [r for r in report.results if r.table == table and r.check == check]
    return result


def test_volume_band_math() -> None:
    mean, std, lower, upper = volume_band([10, 12, 8, 10], sensitivity=3)
    assert mean == 10 and std == pytest.approx(max(1.633, 10**0.5), rel=1e-3)
    assert (lower, upper) == pytest.approx((10 - 3 * std, 10 + 3 * std))
    # a flat, busy history: the Poisson floor keeps a band of sqrt(mean)
    assert volume_band([400] * 14, sensitivity=3)[1] == pytest.approx(20.0)
    with pytest.raises(InvalidInputError, match="at least 2"):
        volume_band([1], sensitivity=3)
    with pytest.raises(InvalidInputError, match="sensitivity"):
        volume_band([1, 2], sensitivity=0)


def _events_table(ws, counts_by_day: dict[date, int]) -> None:  # type: ignore[no-untyped-def]
    with warehouse(ws, read_only=False) as conn:
        conn.execute("CREATE TEMP TABLE days (d DATE, n INTEGER)")
        conn.executemany("INSERT INTO days VALUES (?, ?)", list(counts_by_day.items()))
        conn.execute(
            "CREATE OR REPLACE TABLE main.events AS SELECT row_number() OVER () AS id, "
            "d + to_minutes(k) AS ts FROM days, range(days.n) AS r(k)"
        )


def test_volume_with_and_without_day_of_week_seasonality(workspace) -> None:  # type: ignore[no-untyped-def]
    """Weekdays 100 rows, weekends 20: a Saturday with 100 is normal overall but a weekly anomaly."""
    as_of = datetime(2026, 3, 15, 6, 0, tzinfo=UTC)  # a Sunday: the last complete day is Saturday 14th
    saturday = as_of.date() - timedelta(days=1)
    assert saturday.weekday() == 5
    counts = {
        saturday - timedelta(days=k): (20 if (saturday - timedelta(days=k)).weekday() >= 5 else 100)
        for k in range(1, 120)
    }
    counts[saturday] = 100
    _events_table(workspace, counts)
    mon = [TableMonitor("main.events", volume_column="ts")]
    plain = QualityGates(workspace, workspace.settings.quality, mon).run(as_of=as_of, record=False)
    weekly_settings = workspace.settings.quality.model_copy(update={"seasonality": "day_of_week"})
    weekly = QualityGates(workspace, weekly_settings, mon).run(as_of=as_of, record=False)
    assert _by(plain, "main.events", "volume").status == "pass"
    result = _by(weekly, "main.events", "volume")
    assert result.status == "fail" and "spike" in result.message
    assert result.details["mean"] == pytest.approx(20.0)
    assert [p["day"] for p in result.details["series"]][-1] == saturday.isoformat()
    assert len(result.details["series"]) == 15  # 14 Saturdays of history + the day judged


def test_volume_skips_a_short_history(workspace) -> None:  # type: ignore[no-untyped-def]
    as_of = datetime(2026, 3, 15, tzinfo=UTC)
    _events_table(workspace, {as_of.date() - timedelta(days=k): 50 for k in range(1, 4)})
    report = QualityGates(workspace, workspace.settings.quality, [TableMonitor("main.events", volume_column="ts")]).run(
        as_of=as_of, record=False
    )
    assert _by(report, "main.events", "volume").status == "skipped"


def test_clean_sample_passes_and_is_recorded(big_ws, clone) -> None:  # type: ignore[no-untyped-def]
    ws = clone(big_ws)
    gates = QualityGates(ws, ws.settings.quality, [CLAIMS, *DEFAULT_MONITORS[:2], DEFAULT_MONITORS[4]])
    first = gates.run(actor="tests")
    assert first.status == "pass", [(r.table, r.check, r.message) for r in first.failures]
    assert _by(first, "main.claims", "volume").details["series"]
    assert all(r.details.get("baseline") for r in first.results if r.check == "schema")
    second = gates.run(actor="tests")
    assert _by(second, "main.claims", "schema").message == "unchanged"
    stored = gates.results(second.run_id)
    assert [(r.table, r.check, r.status) for r in stored] == [(r.table, r.check, r.status) for r in second.results]
    assert gates.results() == stored  # the latest run by default
    assert [r["id"] for r in gates.runs()] == [second.run_id, first.run_id]
    assert [n for _, n in gates.row_counts("main.claims")] == [60_000, 60_000]
    audit = ws.audit.records(limit=1)[0]
    assert audit.action == "data.check" and audit.outcome == "success"


def test_injected_faults_are_each_caught(big_ws, clone) -> None:  # type: ignore[no-untyped-def]
    ws = clone(big_ws)
    monitors = [CLAIMS, TableMonitor("main.payments"), TableMonitor("main.documents", freshness_column="updated_at")]
    gates = QualityGates(ws, ws.settings.quality, monitors)
    assert gates.run(actor="tests").status == "pass"  # baseline schemas recorded
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
    with warehouse(ws, read_only=False) as conn:
        # a volume drop: 90% of yesterday's claims lost
        conn.execute("DELETE FROM main.claims WHERE reported_at::date = ? AND claim_id % 10 <> 0", [yesterday])
        # a stale table: the documents stopped updating ten days ago
        conn.execute("UPDATE main.documents SET updated_at = now()::timestamp - INTERVAL 10 DAY")
        # a dropped column
        conn.execute("ALTER TABLE main.payments DROP COLUMN method")
    report = gates.run(actor="tests")
    assert report.status == "fail"
    failed = {(r.table, r.check) for r in report.failures}
    assert failed == {("main.claims", "volume"), ("main.documents", "freshness"), ("main.payments", "schema")}
    volume = _by(report, "main.claims", "volume")
    assert "drop" in volume.message and volume.details["z"] < -3 and volume.details["observed"] < 20
    assert volume.observed.startswith(yesterday.isoformat())
    stale = _by(report, "main.documents", "freshness")
    assert stale.details["age_hours"] > 239 and "48" in stale.expected
    schema = _by(report, "main.payments", "schema")
    assert schema.details["dropped"] == ["method"] and "dropped method" in schema.observed
    assert ws.audit.records(limit=1)[0].outcome == "failure"


def test_schema_added_warns_retyped_fails_and_accepting_clears(big_ws, clone) -> None:  # type: ignore[no-untyped-def]
    ws = clone(big_ws)
    gates = QualityGates(ws, ws.settings.quality, [TableMonitor("main.payments"), TableMonitor("main.policies")])
    gates.run(actor="tests")
    with warehouse(ws, read_only=False) as conn:
        conn.execute("ALTER TABLE main.payments ADD COLUMN currency VARCHAR")
        conn.execute("ALTER TABLE main.policies ALTER COLUMN deductible TYPE VARCHAR")
    report = gates.run(actor="tests")
    added = _by(report, "main.payments", "schema")
    retyped = _by(report, "main.policies", "schema")
    assert added.status == "warn" and added.details["added"] == ["currency"]
    assert retyped.status == "fail" and retyped.details["retyped"] == ["deductible: DOUBLE -> VARCHAR"]
    assert gates.accept_schema(["main.policies"], actor="tests", reason="deductible is text now") == ["main.policies"]
    after = gates.run(actor="tests")
    assert _by(after, "main.policies", "schema").status == "pass"
    assert _by(after, "main.payments", "schema").status == "warn"  # not accepted
    assert any(r.action == "data.schema.accept" for r in ws.audit.records(limit=5))


def test_missing_tables(workspace) -> None:  # type: ignore[no-untyped-def]
    with warehouse(workspace, read_only=False) as conn:
        conn.execute("CREATE TABLE main.t (a INTEGER)")
    report = QualityGates(
        workspace,
        workspace.settings.quality,
        [TableMonitor("main.nope"), TableMonitor("marts.later", required=False), TableMonitor("t")],
    ).run(record=False)
    assert _by(report, "main.nope", "exists").status == "fail"
    assert _by(report, "marts.later", "exists").status == "skipped"
    assert _by(report, "main.t", "schema").status == "pass"
    with pytest.raises(InvalidInputError):
        QualityGates(workspace, workspace.settings.quality, [])
