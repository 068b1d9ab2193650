"""Alerts: rules with a severity, and three sinks - the log, the dashboard, signed webhooks.

A check (data drift, embedding drift, performance) yields a summary of named figures. Each
:class:`AlertRule` compares one figure with a threshold; every rule that fires becomes an
:class:`Alert` row (what the dashboard lists), a log record (logger ``aiw.alerts``), and one
outbox row per configured webhook - all inside the caller's transaction, so an alert is never
half-recorded and raising one never waits on the network.

Webhooks are delivered later by :class:`OutboxWorker` (a background thread, or one
:meth:`OutboxWorker.deliver_pending` pass): POST of the stored JSON body, signed with
HMAC-SHA256 of the raw body (``X-AIW-Signature: sha256=<hex>``), with ``X-AIW-Timestamp`` (Unix
seconds at sending) and ``X-AIW-Delivery`` (the outbox id, for receivers to drop duplicates:
delivery is at least once). Failures are retried with exponential backoff; pending rows survive
a restart because they live in the metadata database. A URL must resolve only to public
addresses (not loopback, private, link-local, cloud metadata ...) unless
``settings.alerts.allow_private``; it is checked when the alert is queued and again before
each attempt, and redirects are never followed.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

import sqlalchemy as sa

from aiw.db import MetadataDB
from aiw.db.schema import alert_outbox, alerts
from aiw.errors import ConfigError, InvalidInputError, NotFoundError, PolicyViolation
from aiw.governance.audit import AuditLog
from aiw.settings import AlertSettings

__all__ = [
    "DEFAULT_RULES",
    "SEVERITIES",
    "Alert",
    "AlertManager",
    "AlertRule",
    "DeliveryStats",
    "OutboxWorker",
    "Severity",
    "check_webhook_url",
    "new_id",
    "sign_body",
    "verify_signature",
]

log = logging.getLogger("aiw.alerts")

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
_LOG_LEVEL = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.CRITICAL}
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}
# Cloud metadata services that are not all covered by "not globally routable" on every Python.
_METADATA_IPS = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "192.0.0.192", "fd00:ec2::254")
)


@dataclass(frozen=True)
class AlertRule:
    """Fire when ``summary[metric] <op> threshold`` for a matching subject and kind.

    Args:
        name: Unique rule name (shown in alerts).
        metric: A key of the check's summary (``share_drifted``, ``dataset_drift``,
            ``drifted_columns``, ``accuracy_drop``, ``domain_auc`` ...); booleans count as 0/1.
        op: One of ``>=``, ``>``, ``<=``, ``<``, ``==``, ``!=``.
        threshold: The value compared with.
        severity: ``info``, ``warning`` or ``critical``.
        kinds: Check kinds the rule applies to (``data``, ``embedding``, ``performance``).
        subject: Glob over subjects (``model:claims-*``); ``*`` for all.
    """

    name: str
    metric: str
    op: str
    threshold: float
    severity: str = "warning"
    kinds: tuple[str, ...] = ("data",)
    subject: str = "*"

    def __post_init__(self) -> None:
        if not self.name or not self.metric:
            raise InvalidInputError("An alert rule needs a name and a metric.")
        if self.op not in _OPS:
            raise InvalidInputError(
                f"The 'op' of alert rule {self.name!r} must be one of {', '.join(_OPS)}. Got {self.op!r} instead."
            )
        if self.severity not in SEVERITIES:
            raise InvalidInputError(
                f"The 'severity' of alert rule {self.name!r} must be one of "
                f"{', '.join(SEVERITIES)}. Got {self.severity!r} instead."
            )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AlertRule:
        """A rule from settings (``{"name": ..., "metric": ..., "op": ..., "threshold": ...}``)."""
        try:
            kinds = d.get("kinds", ("data",))
            return cls(
                str(d["name"]),
                str(d["metric"]),
                str(d["op"]),
                float(d["threshold"]),
                str(d.get("severity", "warning")),
                tuple([kinds] if isinstance(kinds, str) else kinds),
                str(d.get("subject", "*")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"Invalid alert rule {dict(d)!r}: {exc}",
                hint="AIW_ALERTS__RULES entries need name, metric, op and threshold",
            ) from exc

    def matches(self, subject: str, kind: str, summary: Mapping[str, Any]) -> float | None:
        """The figure that made the rule fire, or None when it does not."""
        if kind not in self.kinds or not fnmatch.fnmatchcase(subject, self.subject):
            return None
        value = summary.get(self.metric)
        if value is None or isinstance(value, str):
            return None
        number = float(value)
        return number if _OPS[self.op](number, self.threshold) else None


DEFAULT_RULES: tuple[AlertRule, ...] = (
    AlertRule("column-drift", "drifted_columns", ">=", 1, "info"),
    AlertRule("dataset-drift", "dataset_drift", "==", 1, "warning"),
    AlertRule("severe-drift", "share_drifted", ">=", 0.8, "critical"),
    AlertRule("embedding-drift-warning", "severity_level", "==", 1, "warning", ("embedding",)),
    AlertRule("embedding-drift-critical", "severity_level", "==", 2, "critical", ("embedding",)),
    AlertRule("accuracy-drop", "accuracy_drop", ">=", 0.05, "warning", ("performance",)),
    AlertRule("auc-drop", "auc_drop", ">=", 0.05, "critical", ("performance",)),
)
"""Rules used unless ``settings.alerts.rules`` gives others."""


@dataclass
class Alert:
    """One raised alert, as the dashboard and ``GET /v1/monitor/alerts`` show it."""

    id: int
    created_at: str
    rule: str
    severity: str
    subject: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    acknowledged_at: str | None = None
    acknowledged_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return asdict(self)


# -- signing and URL checks ---------------------------------------------------------------------
def sign_body(body: bytes, secret: str) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of the raw body under ``secret``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, secret: str, header: str) -> bool:
    """Whether ``header`` is the signature of ``body`` (constant-time; for receivers and tests)."""
    return hmac.compare_digest(sign_body(body, secret), header or "")


def _internal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if mapped is not None and _internal(mapped):
            return True
    return (
        ip in _METADATA_IPS
        or not ip.is_global
        or ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


Resolver = Callable[[str, int], Sequence[str]]


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def check_webhook_url(url: str, *, allow_private: bool = False, resolver: Resolver | None = None) -> str:
    """Refuse a webhook URL that is malformed or could reach an internal address.

    Every address the host name resolves to must be globally routable: loopback, private,
    link-local (cloud metadata 169.254.169.254), shared, multicast, reserved and IPv4-mapped
    forms of those are refused unless ``allow_private``.

    Returns:
        The URL, unchanged.

    Raises:
        InvalidInputError: not an http(s) URL with a host, or the host does not resolve.
        PolicyViolation: it resolves to an internal address and ``allow_private`` is off.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError(f"A webhook URL must be http(s)://host/...; got {url!r}.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise InvalidInputError(f"The webhook URL {url!r} has an invalid port.") from exc
    host = parts.hostname
    try:
        addresses = [host] if _is_ip(host) else list((resolver or _resolve)(host, port))
    except OSError as exc:
        raise InvalidInputError(
            f"The webhook host {host!r} does not resolve: {exc}", hint="check the URL in AIW_ALERTS__WEBHOOKS"
        ) from exc
    if not addresses:
        raise InvalidInputError(f"The webhook host {host!r} resolves to no address.")
    if allow_private:
        return url
    bad = [a for a in addresses if _internal(ipaddress.ip_address(a.split("%")[0]))]
    if bad:
        raise PolicyViolation(
            f"The webhook URL {url!r} reaches internal address(es) {', '.join(bad)}; refused.",
            hint="use a public endpoint, or set AIW_ALERTS__ALLOW_PRIVATE=true on purpose",
        )
    return url


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return True


# -- raising alerts -----------------------------------------------------------------------------
def new_id(result: sa.CursorResult[Any]) -> int:
    """The primary key an INSERT just generated."""
    key = result.inserted_primary_key
    if key is None:  # only for statements that are not single-row INSERTs
        raise RuntimeError("the statement generated no primary key")
    return int(key[0])


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:  # SQLite returns naive datetimes
        return value.replace(tzinfo=UTC)
    return value


def _iso(value: datetime | None) -> str | None:
    v = _utc(value)
    return v.isoformat() if v is not None else None


class AlertManager:
    """Evaluates alert rules and records alerts in every sink.

    Args:
        db: The metadata database (the dashboard sink and the webhook outbox).
        audit: Every raised alert is audited, in the same transaction.
        settings: The ``alerts`` settings section (webhooks, secret, rules, allow_private).
        rules: Rules to use instead of ``settings.rules`` or :data:`DEFAULT_RULES`.
        resolver: Host name resolver for URL checks (tests pass a fake one).

    Raises:
        ConfigError: webhooks are configured without a secret to sign them with.
    """

    def __init__(
        self,
        db: MetadataDB,
        audit: AuditLog,
        settings: AlertSettings,
        *,
        rules: Iterable[AlertRule] | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self.db = db
        self.audit = audit
        self.settings = settings
        self.resolver = resolver
        if rules is not None:
            self.rules = tuple(rules)
        elif settings.rules:
            self.rules = tuple(AlertRule.from_dict(r) for r in settings.rules)
        else:
            self.rules = DEFAULT_RULES
        if settings.webhooks and not settings.webhook_secret.get_secret_value():
            raise ConfigError(
                "Webhooks are configured but AIW_ALERTS__WEBHOOK_SECRET is empty",
                hint="set a secret so that receivers can verify each alert",
            )

    def evaluate(self, subject: str, kind: str, summary: Mapping[str, Any]) -> list[tuple[AlertRule, float]]:
        """The rules that fire for this summary, with the figure that fired each."""
        fired = []
        for rule in self.rules:
            value = rule.matches(subject, kind, summary)
            if value is not None:
                fired.append((rule, value))
        return fired

    def check(
        self,
        subject: str,
        kind: str,
        summary: Mapping[str, Any],
        *,
        actor: str,
        details: Mapping[str, Any] | None = None,
        conn: sa.Connection | None = None,
    ) -> list[Alert]:
        """Evaluate the rules and raise an alert for each that fires (in ``conn`` when given)."""
        raised = []
        for rule, value in self.evaluate(subject, kind, summary):
            message = f"{rule.name}: {rule.metric} = {value:g} {rule.op} {rule.threshold:g} on {subject}"
            extra = {
                "metric": rule.metric,
                "value": value,
                "threshold": rule.threshold,
                "op": rule.op,
                "kind": kind,
                **dict(details or {}),
            }
            raised.append(self.raise_alert(rule.name, rule.severity, subject, message, extra, actor=actor, conn=conn))
        return raised

    def raise_alert(
        self,
        rule: str,
        severity: str,
        subject: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        *,
        actor: str,
        conn: sa.Connection | None = None,
    ) -> Alert:
        """Record one alert in every sink; webhook deliveries are queued, never sent here.

        Raises:
            InvalidInputError: unknown severity.
            PolicyViolation: a configured webhook URL reaches an internal address.
        """
        if severity not in SEVERITIES:
            raise InvalidInputError(f"Unknown severity {severity!r}; use one of {', '.join(SEVERITIES)}.")
        urls = [
            check_webhook_url(u, allow_private=self.settings.allow_private, resolver=self.resolver)
            for u in self.settings.webhooks
        ]
        if conn is None:
            with self.db.begin() as own:
                return self._raise(own, rule, severity, subject, message, dict(details or {}), actor, urls)
        return self._raise(conn, rule, severity, subject, message, dict(details or {}), actor, urls)

    def _raise(
        self,
        conn: sa.Connection,
        rule: str,
        severity: str,
        subject: str,
        message: str,
        details: dict[str, Any],
        actor: str,
        urls: list[str],
    ) -> Alert:
        now = _now()
        details_json = json.dumps(details, default=str, sort_keys=True)
        alert_id = new_id(
            conn.execute(
                alerts.insert().values(
                    created_at=now, rule=rule, severity=severity, subject=subject, message=message, details=details_json
                )
            )
        )
        alert = Alert(int(alert_id), now.isoformat(), rule, severity, subject, message, json.loads(details_json))
        if urls:
            body = json.dumps({"type": "aiw.alert", **alert.to_dict()}, separators=(",", ":"), default=str)
            conn.execute(
                alert_outbox.insert(),
                [
                    {
                        "alert_id": alert.id,
                        "url": url,
                        "payload": body,
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                    for url in urls
                ],
            )
        self.audit.append(
            actor,
            "monitor.alert",
            f"alert:{alert.id}",
            details={"rule": rule, "severity": severity, "subject": subject, "webhooks": len(urls)},
            conn=conn,
        )
        log.log(
            _LOG_LEVEL[severity],
            "[%s] %s",
            severity.upper(),
            message,
            extra={"alert_id": alert.id, "subject": subject, "rule": rule},
        )
        return alert

    def list_alerts(
        self, *, limit: int = 100, severity: str | None = None, subject: str | None = None, unacknowledged: bool = False
    ) -> list[Alert]:
        """Alerts, newest first."""
        q = sa.select(alerts).order_by(alerts.c.id.desc()).limit(max(1, min(int(limit), 10_000)))
        if severity:
            q = q.where(alerts.c.severity == severity)
        if subject:
            q = q.where(alerts.c.subject == subject)
        if unacknowledged:
            q = q.where(alerts.c.acknowledged_at.is_(None))
        with self.db.engine.connect() as conn:
            return [_to_alert(r) for r in conn.execute(q)]

    def acknowledge(self, alert_id: int, *, actor: str) -> Alert:
        """Mark an alert as seen (audited)."""
        with self.db.begin() as conn:
            row = conn.execute(sa.select(alerts).where(alerts.c.id == alert_id)).first()
            if row is None:
                raise NotFoundError(f"No alert with id {alert_id}", hint="see 'aiw monitor alerts'")
            if row.acknowledged_at is None:
                conn.execute(
                    alerts.update().where(alerts.c.id == alert_id).values(acknowledged_at=_now(), acknowledged_by=actor)
                )
            self.audit.append(actor, "monitor.alert.ack", f"alert:{alert_id}", conn=conn)
            row = conn.execute(sa.select(alerts).where(alerts.c.id == alert_id)).one()
        return _to_alert(row)


def _to_alert(row: Any) -> Alert:
    return Alert(
        int(row.id),
        _iso(row.created_at) or "",
        row.rule,
        row.severity,
        row.subject,
        row.message,
        json.loads(row.details or "{}"),
        _iso(row.acknowledged_at),
        row.acknowledged_by,
    )


# -- delivering webhooks ------------------------------------------------------------------------
@dataclass
class DeliveryStats:
    """What one :meth:`OutboxWorker.deliver_pending` pass did."""

    delivered: int = 0
    retried: int = 0
    dead: int = 0

    @property
    def attempted(self) -> int:
        """Deliveries tried in the pass."""
        return self.delivered + self.retried + self.dead


class OutboxWorker:
    """Delivers queued webhook alerts: retries with exponential backoff, survives restarts.

    Any number of workers (threads or processes) may run: each claims due rows with a short
    lease (``locked_until``), so a row is sent by one worker at a time, and a worker that dies
    mid-send leaves a lease that simply expires.

    Args:
        db: The metadata database holding the outbox.
        settings: The ``alerts`` settings (secret, timeouts, retries, allow_private).
        audit: When given, dead-lettered deliveries are audited.
        resolver: Host name resolver for the URL check before each attempt.
        transport: An ``httpx`` transport (tests may pass one); the default is the network.
        lease_s: How long a claimed delivery stays reserved for this worker; after that, another
            worker may take it (default: twice the timeout plus 30 s).
    """

    def __init__(
        self,
        db: MetadataDB,
        settings: AlertSettings,
        *,
        audit: AuditLog | None = None,
        resolver: Resolver | None = None,
        transport: Any = None,
        lease_s: float | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.audit = audit
        self.resolver = resolver
        self.transport = transport
        self.lease_s = lease_s if lease_s is not None else settings.timeout_s * 2 + 30
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failure: base * 2**(attempts-1), capped."""
        return float(min(self.settings.retry_base_s * 2 ** max(0, attempts - 1), self.settings.retry_max_s))

    def _claim(self, limit: int, lease_s: float) -> list[Any]:
        now = _now()
        with self.db.begin() as conn:
            q = (
                sa.select(alert_outbox)
                .where(
                    alert_outbox.c.status == "pending",
                    alert_outbox.c.next_attempt_at <= now,
                    sa.or_(alert_outbox.c.locked_until.is_(None), alert_outbox.c.locked_until < now),
                )
                .order_by(alert_outbox.c.id)
                .limit(limit)
            )
            if self.db.dialect == "postgresql":
                q = q.with_for_update(skip_locked=True)
            rows = conn.execute(q).all()
            if rows:
                conn.execute(
                    alert_outbox.update()
                    .where(alert_outbox.c.id.in_([r.id for r in rows]))
                    .values(locked_until=now + timedelta(seconds=lease_s))
                )
        return list(rows)

    def deliver_pending(self, *, limit: int = 50) -> DeliveryStats:
        """Send every due delivery once (up to ``limit``); returns what happened."""
        import httpx

        stats = DeliveryStats()
        rows = self._claim(limit, lease_s=self.lease_s)
        if not rows:
            return stats
        secret = self.settings.webhook_secret.get_secret_value()
        with httpx.Client(timeout=self.settings.timeout_s, follow_redirects=False, transport=self.transport) as client:
            for row in rows:
                error = self._send(client, row, secret)
                self._settle(row, error, stats)
        return stats

    def _send(self, client: Any, row: Any, secret: str) -> str | None:
        import httpx

        try:
            check_webhook_url(row.url, allow_private=self.settings.allow_private, resolver=self.resolver)
        except (InvalidInputError, PolicyViolation) as exc:
            return f"refused: {exc}"
        body = row.payload.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "aiw-alerts/1",
            "X-AIW-Signature": sign_body(body, secret),
            "X-AIW-Timestamp": str(int(time.time())),
            "X-AIW-Delivery": str(row.id),
        }
        try:
            resp = client.post(row.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if 200 <= resp.status_code < 300:
            return None
        return f"HTTP {resp.status_code}"

    def _settle(self, row: Any, error: str | None, stats: DeliveryStats) -> None:
        now = _now()
        attempts = int(row.attempts) + 1
        values: dict[str, Any] = {"attempts": attempts, "locked_until": None, "last_error": error}
        if error is None:
            values.update(status="delivered", delivered_at=now)
            stats.delivered += 1
        elif error.startswith("refused:") or attempts >= self.settings.max_attempts:
            values["status"] = "dead"
            stats.dead += 1
        else:
            values["next_attempt_at"] = now + timedelta(seconds=self.backoff(attempts))
            stats.retried += 1
        with self.db.begin() as conn:
            conn.execute(alert_outbox.update().where(alert_outbox.c.id == row.id).values(**values))
            if values.get("status") == "dead" and self.audit is not None:
                self.audit.append(
                    "system:alerts",
                    "monitor.alert.webhook_dead",
                    f"alert:{row.alert_id}",
                    outcome="failure",
                    details={"delivery": int(row.id), "attempts": attempts, "error": error},
                    conn=conn,
                )
        if error is not None:
            log.warning("webhook delivery %s to %s failed (attempt %d): %s", row.id, row.url, attempts, error)

    def pending(self) -> list[dict[str, Any]]:
        """Deliveries not yet delivered nor dead (for status output)."""
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                sa.select(alert_outbox).where(alert_outbox.c.status == "pending").order_by(alert_outbox.c.id)
            ).all()
        return [
            {
                "id": r.id,
                "alert_id": r.alert_id,
                "url": r.url,
                "attempts": r.attempts,
                "next_attempt_at": _iso(r.next_attempt_at),
                "last_error": r.last_error,
            }
            for r in rows
        ]

    # -- background thread -----------------------------------------------------------------
    def start(self) -> OutboxWorker:
        """Deliver in a daemon thread every ``settings.poll_s`` seconds until :meth:`stop`."""
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="aiw-alert-outbox", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                stats = self.deliver_pending()
            except Exception:  # a database hiccup must not kill the worker; it is logged and retried
                log.exception("alert outbox pass failed; retrying in %.1f s", self.settings.poll_s)
                stats = DeliveryStats()
            if stats.attempted == 0:
                self._stop.wait(self.settings.poll_s)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to finish and wait for it (at most ``timeout`` seconds)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        """Whether the background thread is alive."""
        return self._thread is not None and self._thread.is_alive()
