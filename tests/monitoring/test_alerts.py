"""Alerts: rules, the dashboard sink, and signed webhooks through the durable outbox to a REAL
local HTTP server (retries, restarts, dead letters), and the internal-address URL checks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa

from aiw.db.schema import alert_outbox
from aiw.errors import ConfigError, InvalidInputError, PolicyViolation
from aiw.mlops.monitoring.alerts import (
    DEFAULT_RULES,
    AlertManager,
    AlertRule,
    OutboxWorker,
    check_webhook_url,
    verify_signature,
)
from aiw.settings import AlertSettings

pytestmark = pytest.mark.unit

SECRET = "webhook-test-key-0123456789"


class Receiver:
    """A webhook receiver on 127.0.0.1 answering a scripted list of status codes (then 200)."""

    def __init__(self, script: list[int] | None = None) -> None:
        self.script = list(script or [])
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    outer.requests.append({"headers": dict(self.headers), "body": body})
                    code = outer.script.pop(0) if outer.script else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:  # keep the test output clean
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _settings(url: str, **kw: Any) -> AlertSettings:
    base: dict[str, Any] = {
        "webhooks": [url],
        "webhook_secret": SECRET,
        "allow_private": True,
        "retry_base_s": 0.2,
        "retry_max_s": 1.0,
        "timeout_s": 5.0,
        "poll_s": 0.05,
    }
    return AlertSettings(**{**base, **kw})


def _outbox(workspace) -> list[Any]:  # type: ignore[no-untyped-def]
    with workspace.db.engine.connect() as conn:
        return conn.execute(sa.select(alert_outbox).order_by(alert_outbox.c.id)).all()


def test_webhook_is_signed_and_delivered(workspace, receiver) -> None:  # type: ignore[no-untyped-def]
    settings = _settings(receiver.url)
    manager = AlertManager(workspace.db, workspace.audit, settings)
    alert = manager.raise_alert("dataset-drift", "warning", "table:claims", "drift!", {"share": 0.6}, actor="t")
    assert receiver.requests == []  # raising never sends: it only queues
    stats = OutboxWorker(workspace.db, settings).deliver_pending()
    assert stats.delivered == 1 and len(receiver.requests) == 1
    req = receiver.requests[0]
    headers = {k.lower(): v for k, v in req["headers"].items()}
    assert verify_signature(req["body"], SECRET, headers["x-aiw-signature"])
    assert not verify_signature(req["body"], "wrong-key", headers["x-aiw-signature"])
    assert abs(int(headers["x-aiw-timestamp"]) - time.time()) < 60
    payload = json.loads(req["body"])
    assert payload["id"] == alert.id and payload["severity"] == "warning" and payload["details"] == {"share": 0.6}
    row = _outbox(workspace)[0]
    assert row.status == "delivered" and row.attempts == 1 and headers["x-aiw-delivery"] == str(row.id)
    assert [a.id for a in manager.list_alerts()] == [alert.id]  # the dashboard sink
    assert workspace.audit.records(action="monitor.alert")[0].resource == f"alert:{alert.id}"


def test_failing_receiver_is_retried_with_backoff(workspace) -> None:  # type: ignore[no-untyped-def]
    flaky = Receiver([500, 503])
    try:
        settings = _settings(flaky.url)
        AlertManager(workspace.db, workspace.audit, settings).raise_alert("r", "critical", "s", "m", actor="t")
        worker = OutboxWorker(workspace.db, settings)
        assert worker.backoff(1) == pytest.approx(0.2) and worker.backoff(2) == pytest.approx(0.4)
        assert worker.backoff(10) == pytest.approx(1.0)  # capped
        assert worker.deliver_pending().retried == 1
        assert worker.deliver_pending().attempted == 0  # not due yet: backoff holds it
        first = _outbox(workspace)[0]
        assert first.status == "pending" and first.attempts == 1 and first.last_error == "HTTP 500"
        deadline = time.monotonic() + 10
        while _outbox(workspace)[0].status != "delivered" and time.monotonic() < deadline:
            worker.deliver_pending()
            time.sleep(0.05)
        row = _outbox(workspace)[0]
        assert row.status == "delivered" and row.attempts == 3 and len(flaky.requests) == 3
        assert len({r["body"] for r in flaky.requests}) == 1  # the same signed body every time
    finally:
        flaky.close()


def test_pending_deliveries_survive_a_restart(settings, receiver) -> None:  # type: ignore[no-untyped-def]
    from aiw.workspace import Workspace

    alert_settings = _settings(receiver.url)
    first = Workspace(settings).init()
    AlertManager(first.db, first.audit, alert_settings).raise_alert("r", "info", "s", "m", actor="t")
    crashed = OutboxWorker(first.db, alert_settings, lease_s=0.3)
    assert len(crashed._claim(10, lease_s=0.3)) == 1  # claimed, then the process "dies" mid-send
    first.db.dispose()

    second = Workspace(settings).init()  # a new process: fresh engine, same database
    worker = OutboxWorker(second.db, alert_settings, lease_s=0.3).start()
    try:
        deadline = time.monotonic() + 10
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
    assert len(receiver.requests) == 1
    assert _outbox(second)[0].status == "delivered"
    second.db.dispose()


def test_dead_letter_after_max_attempts(workspace) -> None:  # type: ignore[no-untyped-def]
    broken = Receiver([500] * 10)
    try:
        settings = _settings(broken.url, max_attempts=2, retry_base_s=0.01)
        AlertManager(workspace.db, workspace.audit, settings).raise_alert("r", "info", "s", "m", actor="t")
        worker = OutboxWorker(workspace.db, settings, audit=workspace.audit)
        worker.deliver_pending()
        time.sleep(0.05)
        assert worker.deliver_pending().dead == 1
        assert _outbox(workspace)[0].status == "dead"
        assert workspace.audit.records(action="monitor.alert.webhook_dead")[0].outcome == "failure"
        assert worker.deliver_pending().attempted == 0
    finally:
        broken.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://192.168.0.10/x",
        "http://100.64.0.1/x",
        "http://0.0.0.0/x",
    ],
)
def test_internal_addresses_are_refused_by_default(url: str) -> None:
    with pytest.raises(PolicyViolation, match="internal"):
        check_webhook_url(url)
    assert check_webhook_url(url, allow_private=True) == url


def test_every_resolved_address_is_checked() -> None:
    mixed = lambda host, port: ["93.184.216.34", "10.0.0.7"]  # noqa: E731 - a DNS answer with a private record
    with pytest.raises(PolicyViolation, match=r"10\.0\.0\.7"):
        check_webhook_url("https://hooks.example.com/a", resolver=mixed)
    public = lambda host, port: ["93.184.216.34"]  # noqa: E731
    assert check_webhook_url("https://hooks.example.com/a", resolver=public)
    with pytest.raises(PolicyViolation):
        check_webhook_url("http://localhost:9/x")  # the real resolver: loopback
    with pytest.raises(InvalidInputError, match="http"):
        check_webhook_url("ftp://example.com/x")


def test_internal_webhook_refused_when_raising(workspace) -> None:  # type: ignore[no-untyped-def]
    settings = _settings("http://127.0.0.1:9/hook", allow_private=False)
    with pytest.raises(PolicyViolation):
        AlertManager(workspace.db, workspace.audit, settings).raise_alert("r", "info", "s", "m", actor="t")
    assert _outbox(workspace) == []
    with pytest.raises(ConfigError, match="WEBHOOK_SECRET"):
        AlertManager(workspace.db, workspace.audit, AlertSettings(webhooks=["https://example.com/x"]))


def test_rules_and_severities(workspace) -> None:  # type: ignore[no-untyped-def]
    manager = AlertManager(workspace.db, workspace.audit, AlertSettings())
    fired = {
        r.name: r.severity
        for r, _ in manager.evaluate(
            "table:x", "data", {"drifted_columns": 4, "dataset_drift": True, "share_drifted": 0.8}
        )
    }
    assert fired == {"column-drift": "info", "dataset-drift": "warning", "severe-drift": "critical"}
    assert (
        manager.evaluate("table:x", "data", {"drifted_columns": 0, "dataset_drift": False, "share_drifted": 0.0}) == []
    )
    assert [r.name for r, _ in manager.evaluate("model:m", "performance", {"accuracy_drop": 0.1})] == ["accuracy-drop"]
    custom = AlertRule.from_dict(
        {
            "name": "claims-only",
            "metric": "share_drifted",
            "op": ">",
            "threshold": 0.1,
            "severity": "critical",
            "subject": "table:claims*",
        }
    )
    scoped = AlertManager(workspace.db, workspace.audit, AlertSettings(), rules=[custom])
    assert scoped.evaluate("table:policies", "data", {"share_drifted": 0.5}) == []
    raised = scoped.check("table:claims_2024", "data", {"share_drifted": 0.5}, actor="t")
    assert [a.severity for a in raised] == ["critical"]
    assert scoped.acknowledge(raised[0].id, actor="t").acknowledged_by == "t"
    assert manager.list_alerts(unacknowledged=True) == []
    with pytest.raises(InvalidInputError, match="'op'"):
        AlertRule("x", "m", "=>", 1)
    with pytest.raises(ConfigError):
        AlertRule.from_dict({"name": "x"})
    assert len(DEFAULT_RULES) >= 3


@pytest.mark.integration
def test_outbox_and_traffic_on_postgresql(pg_url, receiver) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime, timedelta

    from aiw.db import MetadataDB
    from aiw.governance.audit import AuditLog
    from aiw.mlops.monitoring import traffic

    db = MetadataDB(pg_url)
    db.upgrade()
    try:
        audit = AuditLog(db)
        settings = _settings(receiver.url)
        AlertManager(db, audit, settings).raise_alert("r", "warning", "s", "m", actor="t")
        first, second = OutboxWorker(db, settings), OutboxWorker(db, settings)
        claimed = first._claim(10, lease_s=60)
        assert len(claimed) == 1 and second.deliver_pending().attempted == 0  # leased by the first
        now = datetime.now(UTC)
        rec = {"model": "m", "version": "1", "request_id": "a", "features": {"x": 1}, "prediction": 1, "ts": now}
        traffic.record_predictions(db, [rec, rec, {**rec, "request_id": "b"}])
        assert traffic.attach_labels(db, audit, "m", {"a": 1, "b": 0}, actor="t") == 2
        frame = traffic.traffic_frame(db, "m", traffic.Window(now - timedelta(minutes=1), now + timedelta(minutes=1)))
        assert sorted(frame.request_id) == ["a", "b"] and sorted(frame.label) == [0, 1]
    finally:
        db.dispose()
