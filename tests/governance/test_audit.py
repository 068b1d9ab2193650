"""The audit log: appends, filters, and verification that catches each kind of tampering."""

from __future__ import annotations

import os
import threading

import pytest
import sqlalchemy as sa

from aiw.errors import InvalidInputError
from aiw.governance.audit import AuditLog, record_hash
from aiw.settings import build_settings
from aiw.workspace import Workspace

pytestmark = pytest.mark.unit


@pytest.fixture(params=["sqlite", "postgresql"])
def audit(request: pytest.FixtureRequest, tmp_path) -> AuditLog:  # type: ignore[no-untyped-def]
    url = "" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    ws = Workspace(build_settings(home=tmp_path / "ws", metadata={"url": url})).init()
    log = ws.audit
    for i in range(6):
        log.append(f"user{i % 2}", "models.approve" if i % 3 == 0 else "keys.create", f"thing:{i}", details={"i": i})
    yield log
    ws.db.dispose()


def _unlock(log: AuditLog, conn: sa.Connection) -> None:
    """Tests must tamper deliberately: lift the append-only triggers first."""
    if log.db.dialect == "postgresql":
        conn.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
    else:
        conn.execute(sa.text("DROP TRIGGER audit_log_no_update"))
        conn.execute(sa.text("DROP TRIGGER audit_log_no_delete"))


def test_intact_chain_verifies(audit: AuditLog) -> None:
    report = audit.verify()
    assert report.ok and report.checked == 6


def test_records_filter_and_order(audit: AuditLog) -> None:
    newest = audit.records(limit=10)
    assert [r.seq for r in newest] == [6, 5, 4, 3, 2, 1]
    approvals = audit.records(action="models.", newest_first=False)
    assert [r.details["i"] for r in approvals] == [0, 3]
    assert {r.actor for r in audit.records(actor="user1")} == {"user1"}
    assert audit.records(resource="thing:5")[0].seq == 6
    assert audit.records(since="2999-01-01") == []
    with pytest.raises(InvalidInputError, match="ISO-8601"):
        audit.records(since="yesterday")


def test_database_refuses_updates_and_deletes(audit: AuditLog) -> None:
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), audit.db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2"))
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), audit.db.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_log WHERE seq = 2"))
    assert audit.verify().ok


def test_edited_record_is_named(audit: AuditLog) -> None:
    with audit.db.engine.begin() as conn:
        _unlock(audit, conn)
        conn.execute(sa.text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3"))
    report = audit.verify()
    assert not report.ok and report.first_bad_seq == 3 and "edited" in report.reason


def test_deleted_record_is_named(audit: AuditLog) -> None:
    with audit.db.engine.begin() as conn:
        _unlock(audit, conn)
        conn.execute(sa.text("DELETE FROM audit_log WHERE seq = 3"))
    report = audit.verify()
    assert not report.ok and report.first_bad_seq == 3 and "missing" in report.reason


def test_deleted_tail_is_caught_by_the_head(audit: AuditLog) -> None:
    with audit.db.engine.begin() as conn:
        _unlock(audit, conn)
        conn.execute(sa.text("DELETE FROM audit_log WHERE seq = 6"))
    report = audit.verify()
    assert not report.ok and "head" in report.reason


def test_inserted_record_is_caught(audit: AuditLog) -> None:
    # A forger renumbers records 3.. and slips a well-formed record in at 3, chained to record 2.
    with audit.db.engine.begin() as conn:
        _unlock(audit, conn)
        conn.execute(sa.text("UPDATE audit_log SET seq = seq + 100 WHERE seq >= 3"))
        conn.execute(sa.text("UPDATE audit_log SET seq = seq - 99 WHERE seq >= 103"))
        prev = conn.execute(sa.text("SELECT hash FROM audit_log WHERE seq = 2")).scalar_one()
        ts = "2026-01-01T00:00:00.000000+00:00"
        digest = record_hash(3, ts, "mallory", "keys.create", "key:x", "success", "{}", prev)
        conn.execute(
            sa.text(
                "INSERT INTO audit_log VALUES (3, :ts, 'mallory', 'keys.create', 'key:x', 'success', '{}', :prev, :h)"
            ),
            {"ts": ts, "prev": prev, "h": digest},
        )
    report = audit.verify()
    assert not report.ok and report.first_bad_seq == 4


def test_appended_forgery_is_caught(audit: AuditLog) -> None:
    with audit.db.engine.begin() as conn:
        prev = conn.execute(sa.text("SELECT hash FROM audit_log WHERE seq = 6")).scalar_one()
        ts = "2026-01-01T00:00:00.000000+00:00"
        digest = record_hash(7, ts, "mallory", "keys.create", "key:x", "success", "{}", prev)
        conn.execute(
            sa.text(
                "INSERT INTO audit_log VALUES (7, :ts, 'mallory', 'keys.create', 'key:x', 'success', '{}', :prev, :h)"
            ),
            {"ts": ts, "prev": prev, "h": digest},
        )
    report = audit.verify()
    assert not report.ok and "head" in report.reason


def test_reordered_records_are_caught(audit: AuditLog) -> None:
    with audit.db.engine.begin() as conn:
        _unlock(audit, conn)
        conn.execute(sa.text("UPDATE audit_log SET seq = 100 WHERE seq = 3"))
        conn.execute(sa.text("UPDATE audit_log SET seq = 3 WHERE seq = 4"))
        conn.execute(sa.text("UPDATE audit_log SET seq = 4 WHERE seq = 100"))
    report = audit.verify()
    assert not report.ok and report.first_bad_seq == 3


def test_concurrent_appends_keep_one_chain(audit: AuditLog) -> None:
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(15):
                audit.append(f"w{n}", "test.concurrent", f"r:{n}:{i}")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    report = audit.verify()
    assert report.ok and report.checked == 6 + 60


def test_bad_arguments_are_refused(audit: AuditLog) -> None:
    with pytest.raises(InvalidInputError, match="actor"):
        audit.append(" ", "x", "y")
    with pytest.raises(InvalidInputError, match="outcome"):
        audit.append("a", "x", "y", outcome="maybe")  # type: ignore[arg-type]


def _rewrite_from(audit: AuditLog, conn: sa.Connection, start: int) -> None:
    """A forger with write access rewrites records start.. and the head consistently."""
    rows = conn.execute(sa.text("SELECT * FROM audit_log WHERE seq >= :s ORDER BY seq"), {"s": start}).all()
    prev = conn.execute(sa.text("SELECT hash FROM audit_log WHERE seq = :p"), {"p": start - 1}).scalar_one()
    for r in rows:
        actor = "mallory" if r.seq == start else r.actor
        digest = record_hash(r.seq, r.ts, actor, r.action, r.resource, r.outcome, r.details, prev)
        conn.execute(
            sa.text("UPDATE audit_log SET actor = :a, prev_hash = :p, hash = :h WHERE seq = :s"),
            {"a": actor, "p": prev, "h": digest, "s": r.seq},
        )
        prev = digest
    conn.execute(sa.text("UPDATE audit_head SET hash = :h WHERE id = 1"), {"h": prev})


def test_a_consistent_rewrite_is_caught_only_by_an_anchor(audit: AuditLog) -> None:
    anchor = audit.anchor()
    assert anchor.seq == 6 and audit.verify([anchor]).ok
    audit.append("user0", "keys.create", "thing:7")
    assert audit.verify([anchor]).ok  # appends after an anchor are fine
    with audit.db.engine.begin() as conn:
        _unlock(audit, conn)
        _rewrite_from(audit, conn, 4)
    assert audit.verify().ok  # the chain alone cannot tell
    report = audit.verify([anchor])
    assert not report.ok and report.first_bad_seq == 6 and "differs from the anchor" in report.reason


def test_truncation_below_an_anchor_is_caught(audit: AuditLog) -> None:
    from aiw.governance.audit import Anchor

    with audit.db.engine.begin() as conn:
        _unlock(audit, conn)
        prev = conn.execute(sa.text("SELECT hash FROM audit_log WHERE seq = 5")).scalar_one()
        conn.execute(sa.text("DELETE FROM audit_log WHERE seq = 6"))
        conn.execute(sa.text("UPDATE audit_head SET seq = 5, hash = :h WHERE id = 1"), {"h": prev})
    assert audit.verify().ok
    report = audit.verify([Anchor(6, "a" * 64, "2026-11-01T00:00:00+00:00")])
    assert not report.ok and "log ends at record 5" in report.reason


def test_anchor_files_are_checked_and_used_by_the_cli(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from aiw.cli import app as cli
    from aiw.governance.audit import load_anchors
    from aiw.settings import load_settings

    with pytest.raises(InvalidInputError, match="line 2 is not JSON"):
        load_anchors('{"seq": 1, "hash": "' + "0" * 64 + '", "taken_at": ""}\nnot json')
    with pytest.raises(InvalidInputError, match="hash must be 64 lowercase hex"):
        load_anchors('{"seq": 1, "hash": "xyz", "taken_at": ""}')
    with pytest.raises(InvalidInputError, match="holds no anchors"):
        load_anchors("\n")
    for var in [v for v in os.environ if v.startswith("AIW_") and not v.startswith("AIW_TEST_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("AIW_HOME", str(tmp_path / "ws"))
    load_settings.cache_clear()
    runner = CliRunner()
    anchors = tmp_path / "anchors.jsonl"
    assert runner.invoke(cli, ["init"]).exit_code == 0
    for _ in range(2):
        out = runner.invoke(cli, ["audit", "anchor", "--out", str(anchors)])
        assert out.exit_code == 0, out.output
    assert len(load_anchors(anchors.read_text())) == 2
    ok = runner.invoke(cli, ["audit", "verify", "--anchors", str(anchors)])
    assert ok.exit_code == 0 and "consistent with 2 anchor(s)" in ok.output
    missing = runner.invoke(cli, ["audit", "verify", "--anchors", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "no anchors file" in missing.output
    load_settings.cache_clear()
