"""Quality gates over the warehouse: volume anomalies, freshness and schema changes.

Three checks per monitored table, with the defaults of Elementary's tests:

* **volume**: the table's row count on the last complete day (by its timestamp column) against
  the same count over the trailing ``training_days`` days (or, with ``day_of_week`` seasonality,
  the same weekday of the trailing ``training_days`` weeks), as a z-score; beyond
  ``sensitivity`` standard deviations (3) it fails. Days with no rows count as zero, days before
  the table's first row are not history. Counts are Poisson-like, so the standard deviation used
  is at least the square root of the mean: a short, quiet history would otherwise give a band
  narrower than chance alone and fail on noise.
* **freshness**: the age of the newest row against a limit in hours.
* **schema**: the columns (name, type, in order) against the last accepted snapshot; a dropped
  or retyped column fails, an added one warns. The first run records the baseline;
  :meth:`QualityGates.accept_schema` accepts a deliberate change.

Every run is stored with its results (observed, expected, the series and band) in the metadata
database and audited.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from aiw.data._warehouse import quote_ident, split_table, table_exists, warehouse
from aiw.db.schema import data_check_results, data_check_runs, data_row_counts, data_schema_snapshots
from aiw.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from aiw.settings import QualitySettings
    from aiw.workspace import Workspace

__all__ = [
    "DEFAULT_MONITORS",
    "CheckResult",
    "QualityGates",
    "QualityReport",
    "TableMonitor",
    "volume_band",
]

Status = Literal["pass", "warn", "fail", "skipped"]
_RANK = {"skipped": 0, "pass": 0, "warn": 1, "fail": 2}


@dataclass(frozen=True)
class TableMonitor:
    """What to check on one warehouse table.

    Attributes:
        table: ``schema.table`` (a bare name is in ``main``).
        volume_column: Timestamp or date column that buckets rows by day for the volume check;
            ``None`` skips the volume check.
        freshness_column: Timestamp or date column whose newest value must be recent; ``None``
            skips the freshness check.
        freshness_hours: This table's freshness limit; ``None`` uses the settings' default.
        schema: Whether to check the table's columns against the accepted snapshot.
        required: Whether a missing table fails (raw tables) or is skipped (marts not built yet).
    """

    table: str
    volume_column: str | None = None
    freshness_column: str | None = None
    freshness_hours: float | None = None
    schema: bool = True
    required: bool = True


DEFAULT_MONITORS: tuple[TableMonitor, ...] = (
    TableMonitor("main.customers", freshness_column="updated_at"),
    TableMonitor("main.policies", freshness_column="updated_at"),
    TableMonitor("main.claims", volume_column="reported_at", freshness_column="reported_at"),
    TableMonitor("main.payments", volume_column="paid_at", freshness_column="paid_at"),
    TableMonitor("main.documents", freshness_column="updated_at"),
    TableMonitor("marts.claims_daily", required=False),
    TableMonitor("marts.customer_360", required=False),
    TableMonitor("marts.claim_features", required=False),
    TableMonitor("marts.customer_features", required=False),
    TableMonitor("marts.document_index", required=False),
)
"""The sample warehouse's tables: event tables get volume checks, every raw table freshness,
every table (raw and marts) a schema check."""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one table.

    Attributes:
        table: ``schema.table``.
        check: ``volume``, ``freshness`` or ``schema``.
        status: ``pass``, ``warn``, ``fail`` or ``skipped``.
        observed: What was measured, in words (``"2026-11-22: 3 rows"``).
        expected: What was expected, in words (``"27.1 rows, band [10.2, 44.0]"``).
        message: One line for people.
        details: JSON-ready facts: the series and band, the column diff, the age in hours.
    """

    table: str
    check: str
    status: Status
    observed: str
    expected: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data."""
        return asdict(self)


@dataclass
class QualityReport:
    """Every check of one run.

    Attributes:
        run_id: The run's id in the metadata database.
        started_at: When the run began (UTC).
        as_of: The moment the checks judged against (UTC): freshness ages and the last complete day.
        results: One entry per table and check.
    """

    run_id: str
    started_at: datetime
    as_of: datetime
    results: list[CheckResult]

    @property
    def status(self) -> Status:
        """``fail`` when any check failed, else ``warn`` when any warned, else ``pass``."""
        worst = max((_RANK[r.status] for r in self.results), default=0)
        return "fail" if worst == 2 else "warn" if worst == 1 else "pass"

    @property
    def failures(self) -> list[CheckResult]:
        """The checks that failed."""
        return [r for r in self.results if r.status == "fail"]

    @property
    def warnings(self) -> list[CheckResult]:
        """The checks that warned."""
        return [r for r in self.results if r.status == "warn"]

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "run_id": self.run_id,
            "started_at": self.started_at.isoformat(),
            "as_of": self.as_of.isoformat(),
            "status": self.status,
            "results": [r.as_dict() for r in self.results],
        }


def volume_band(history: Sequence[float], *, sensitivity: float) -> tuple[float, float, float, float]:
    """Mean, effective standard deviation, lower and upper bound of a volume band.

    The standard deviation is the sample one (ddof=1), but at least ``sqrt(mean)`` (Poisson noise)
    and at least a tiny positive number, so a perfectly flat history still has a band.

    Raises:
        InvalidInputError: fewer than two history points, or a non-positive sensitivity.
    """
    if len(history) < 2:
        raise InvalidInputError(f"A volume band needs at least 2 history points. Got {len(history)}.")
    if not sensitivity > 0:
        raise InvalidInputError(f"The 'sensitivity' parameter of volume_band must be > 0. Got {sensitivity!r}.")
    n = len(history)
    mean = sum(history) / n
    var = sum((x - mean) ** 2 for x in history) / (n - 1)
    std = max(math.sqrt(var), math.sqrt(max(mean, 0.0)), 1e-9)
    return mean, std, mean - sensitivity * std, mean + sensitivity * std


class QualityGates:
    """Runs the quality checks of a workspace's warehouse and keeps their history.

    Args:
        workspace: The workspace (warehouse to check, metadata database to record in).
        settings: The quality settings (training days, sensitivity, seasonality, freshness limit).
        monitors: The tables to check; default :data:`DEFAULT_MONITORS`.
    """

    def __init__(
        self, workspace: Workspace, settings: QualitySettings, monitors: Sequence[TableMonitor] = DEFAULT_MONITORS
    ) -> None:
        if not monitors:
            raise InvalidInputError("The 'monitors' parameter of QualityGates must name at least one table.")
        self.workspace = workspace
        self.settings = settings
        self.monitors = tuple(monitors)

    # -- running ---------------------------------------------------------------------------
    def run(self, *, as_of: datetime | None = None, actor: str = "system", record: bool = True) -> QualityReport:
        """Run every check of every monitored table.

        Args:
            as_of: Judge as if it were this moment (UTC); default now. The volume check looks at
                the last complete day before it.
            actor: Who asked, for the run record and the audit log.
            record: Store the run, its results and row counts in the metadata database. A
                first-seen table's schema becomes its baseline only when recording.

        Returns:
            The report; :attr:`QualityReport.status` is ``fail`` when any check failed.
        """
        started = datetime.now(UTC)
        moment = _utc(as_of) if as_of is not None else started
        baselines = self._baselines()
        results: list[CheckResult] = []
        counts: dict[str, int] = {}
        new_baselines: dict[str, list[list[str]]] = {}
        with warehouse(self.workspace) as conn:
            for mon in self.monitors:
                table = _qualified(mon.table)
                if not table_exists(conn, table):
                    results.extend(self._missing(mon, table, baselines.get(table)))
                    continue
                counts[table] = int(conn.execute(f"SELECT count(*) FROM {_sql_name(table)}").fetchone()[0])  # type: ignore[index]
                if mon.volume_column:
                    results.append(self._volume(conn, table, mon.volume_column, moment))
                if mon.freshness_column:
                    limit = mon.freshness_hours if mon.freshness_hours is not None else self.settings.freshness_hours
                    results.append(_freshness(conn, table, mon.freshness_column, limit, moment))
                if mon.schema:
                    columns = _columns(conn, table)
                    result = _schema(table, columns, baselines.get(table))
                    if table not in baselines:
                        new_baselines[table] = columns
                    results.append(result)
        report = QualityReport(uuid.uuid4().hex, started, moment, results)
        if record:
            self._record(report, counts, new_baselines, actor)
        return report

    def accept_schema(self, tables: Sequence[str] | None = None, *, actor: str, reason: str = "accepted") -> list[str]:
        """Accept the current columns of ``tables`` (default: every monitored one) as their baseline.

        Returns:
            The tables whose snapshot was recorded (only those whose columns differ from the
            accepted snapshot, or that had none).

        Raises:
            NotFoundError: a named table does not exist in the warehouse.
        """
        names = [_qualified(t) for t in (tables or [m.table for m in self.monitors])]
        baselines = self._baselines()
        changed: dict[str, list[list[str]]] = {}
        with warehouse(self.workspace) as conn:
            for table in names:
                if not table_exists(conn, table):
                    if tables:
                        raise NotFoundError(
                            f"The table {table} does not exist in the warehouse",
                            hint="check the name (schema.table) or run 'aiw data build'",
                        )
                    continue
                columns = _columns(conn, table)
                base = baselines.get(table)
                if base is None or base["columns"] != columns:
                    changed[table] = columns
        now = datetime.now(UTC)
        with self.workspace.db.begin() as db:
            for table, columns in changed.items():
                db.execute(
                    data_schema_snapshots.insert().values(
                        table_name=table,
                        columns=json.dumps(columns),
                        fingerprint=_fingerprint(columns),
                        accepted_at=now,
                        accepted_by=actor,
                        reason=reason,
                    )
                )
            self.workspace.audit.append(
                actor,
                "data.schema.accept",
                "warehouse",
                "success",
                {"tables": sorted(changed), "reason": reason},
                conn=db,
            )
        return sorted(changed)

    # -- history ---------------------------------------------------------------------------
    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest check runs, newest first."""
        with self.workspace.db.begin() as db:
            rows = (
                db.execute(sa.select(data_check_runs).order_by(data_check_runs.c.started_at.desc()).limit(limit))
                .mappings()
                .all()
            )
        return [dict(r) for r in rows]

    def results(self, run_id: str | None = None) -> list[CheckResult]:
        """The results of one run (default the latest); empty when no run was recorded.

        Raises:
            NotFoundError: ``run_id`` names no recorded run.
        """
        with self.workspace.db.begin() as db:
            if run_id is None:
                run_id = db.execute(
                    sa.select(data_check_runs.c.id).order_by(data_check_runs.c.started_at.desc()).limit(1)
                ).scalar()
                if run_id is None:
                    return []
            elif db.execute(sa.select(data_check_runs.c.id).where(data_check_runs.c.id == run_id)).scalar() is None:
                raise NotFoundError(f"No data check run {run_id!r}", hint="see 'aiw data check --history'")
            rows = (
                db.execute(
                    sa.select(data_check_results)
                    .where(data_check_results.c.run_id == run_id)
                    .order_by(data_check_results.c.id)
                )
                .mappings()
                .all()
            )
        return [
            CheckResult(
                r["table_name"],
                r["check_name"],
                r["status"],
                r["observed"],
                r["expected"],
                r["message"],
                json.loads(r["details"]),
            )
            for r in rows
        ]

    def row_counts(self, table: str, limit: int = 90) -> list[tuple[datetime, int]]:
        """The table's total row count at each recorded run, oldest first."""
        with self.workspace.db.begin() as db:
            rows = db.execute(
                sa.select(data_row_counts.c.measured_at, data_row_counts.c.row_count)
                .where(data_row_counts.c.table_name == _qualified(table))
                .order_by(data_row_counts.c.measured_at.desc())
                .limit(limit)
            ).all()
        return [(r[0], int(r[1])) for r in reversed(rows)]

    # -- checks ----------------------------------------------------------------------------
    def _volume(self, conn: Any, table: str, column: str, moment: datetime) -> CheckResult:
        s = self.settings
        day = moment.date() - timedelta(days=1)  # the last complete day
        step = 7 if s.seasonality == "day_of_week" else 1
        history_days = [day - timedelta(days=step * k) for k in range(1, s.training_days + 1)]
        first = min(history_days)
        col = quote_ident(column)
        rows = conn.execute(
            f"SELECT CAST({col} AS DATE) AS d, count(*) FROM {_sql_name(table)} "
            f"WHERE {col} >= ? AND {col} < ? GROUP BY 1",
            [
                datetime.combine(first, datetime.min.time()),
                datetime.combine(day + timedelta(days=1), datetime.min.time()),
            ],
        ).fetchall()
        by_day = {r[0]: int(r[1]) for r in rows}
        oldest = conn.execute(f"SELECT CAST(min({col}) AS DATE) FROM {_sql_name(table)}").fetchone()[0]
        history = [(d, by_day.get(d, 0)) for d in sorted(history_days) if oldest is not None and d >= oldest]
        observed = by_day.get(day, 0)
        series = [{"day": d.isoformat(), "rows": n} for d, n in history] + [{"day": day.isoformat(), "rows": observed}]
        base = {
            "day": day.isoformat(),
            "observed": observed,
            "series": series,
            "column": column,
            "seasonality": s.seasonality,
            "training_days": s.training_days,
            "sensitivity": s.sensitivity,
        }
        if len(history) < s.min_training_days:
            return CheckResult(
                table,
                "volume",
                "skipped",
                f"{day}: {observed} rows",
                f">= {s.min_training_days} days of history",
                f"only {len(history)} days of history before {day}; not judged",
                base,
            )
        mean, std, lower, upper = volume_band([n for _, n in history], sensitivity=s.sensitivity)
        z = (observed - mean) / std
        base.update(mean=mean, std=std, lower=lower, upper=upper, z=z)
        expected = f"{mean:.1f} rows, band [{max(lower, 0.0):.1f}, {upper:.1f}] ({s.sensitivity:g} sd)"
        if abs(z) > s.sensitivity:
            kind = "drop" if z < 0 else "spike"
            return CheckResult(
                table,
                "volume",
                "fail",
                f"{day}: {observed} rows",
                expected,
                f"volume {kind}: {observed} rows on {day}, z = {z:+.1f}",
                base,
            )
        return CheckResult(
            table,
            "volume",
            "pass",
            f"{day}: {observed} rows",
            expected,
            f"{observed} rows on {day}, z = {z:+.1f}",
            base,
        )

    def _missing(self, mon: TableMonitor, table: str, baseline: dict[str, Any] | None) -> list[CheckResult]:
        if not mon.required and baseline is None:
            return [
                CheckResult(
                    table,
                    "exists",
                    "skipped",
                    "missing",
                    "table present",
                    f"{table} does not exist yet (run 'aiw data build')",
                )
            ]
        return [
            CheckResult(
                table,
                "exists",
                "fail",
                "missing",
                "table present",
                f"{table} does not exist" + (" (it had an accepted schema)" if baseline else ""),
            )
        ]

    # -- storage ---------------------------------------------------------------------------
    def _baselines(self) -> dict[str, dict[str, Any]]:
        """The newest accepted snapshot of every table."""
        latest = (
            sa.select(data_schema_snapshots.c.table_name, sa.func.max(data_schema_snapshots.c.id).label("id"))
            .group_by(data_schema_snapshots.c.table_name)
            .subquery()
        )
        with self.workspace.db.begin() as db:
            rows = (
                db.execute(sa.select(data_schema_snapshots).join(latest, data_schema_snapshots.c.id == latest.c.id))
                .mappings()
                .all()
            )
        return {
            r["table_name"]: {
                "columns": json.loads(r["columns"]),
                "accepted_at": r["accepted_at"],
                "accepted_by": r["accepted_by"],
            }
            for r in rows
        }

    def _record(
        self, report: QualityReport, counts: dict[str, int], new_baselines: dict[str, list[list[str]]], actor: str
    ) -> None:
        now = datetime.now(UTC)
        with self.workspace.db.begin() as db:
            db.execute(
                data_check_runs.insert().values(
                    id=report.run_id,
                    started_at=report.started_at,
                    finished_at=now,
                    status=report.status,
                    actor=actor,
                    checks=len(report.results),
                    failures=len(report.failures),
                    warnings=len(report.warnings),
                )
            )
            if report.results:
                db.execute(
                    data_check_results.insert(),
                    [
                        {
                            "run_id": report.run_id,
                            "checked_at": now,
                            "table_name": r.table,
                            "check_name": r.check,
                            "status": r.status,
                            "observed": r.observed,
                            "expected": r.expected,
                            "message": r.message,
                            "details": json.dumps(r.details, default=str),
                        }
                        for r in report.results
                    ],
                )
            if counts:
                db.execute(
                    data_row_counts.insert(),
                    [
                        {"run_id": report.run_id, "table_name": t, "measured_at": now, "row_count": n}
                        for t, n in counts.items()
                    ],
                )
            for table, columns in new_baselines.items():
                db.execute(
                    data_schema_snapshots.insert().values(
                        table_name=table,
                        columns=json.dumps(columns),
                        fingerprint=_fingerprint(columns),
                        accepted_at=now,
                        accepted_by=actor,
                        reason="baseline: first check of the table",
                    )
                )
            self.workspace.audit.append(
                actor,
                "data.check",
                f"data-check:{report.run_id}",
                "success" if report.status != "fail" else "failure",
                {
                    "status": report.status,
                    "checks": len(report.results),
                    "failures": [f"{r.table}/{r.check}" for r in report.failures],
                    "baselines": sorted(new_baselines),
                },
                conn=db,
            )


def _freshness(conn: Any, table: str, column: str, limit_hours: float, moment: datetime) -> CheckResult:
    col = quote_ident(column)
    newest = conn.execute(f"SELECT max(CAST({col} AS TIMESTAMP)) FROM {_sql_name(table)}").fetchone()[0]
    expected = f"newest row at most {limit_hours:g} h old"
    if newest is None:
        return CheckResult(
            table,
            "freshness",
            "fail",
            "no rows",
            expected,
            f"{table} is empty",
            {"column": column, "limit_hours": limit_hours},
        )
    # Warehouse timestamps are naive UTC by convention.
    newest_utc = newest.replace(tzinfo=UTC) if newest.tzinfo is None else newest.astimezone(UTC)
    age_h = max((moment - newest_utc).total_seconds() / 3600.0, 0.0)
    details = {"column": column, "newest": newest_utc.isoformat(), "age_hours": age_h, "limit_hours": limit_hours}
    observed = f"newest row {age_h:.1f} h old ({newest_utc:%Y-%m-%d %H:%M} UTC)"
    if age_h > limit_hours:
        return CheckResult(
            table,
            "freshness",
            "fail",
            observed,
            expected,
            f"stale: {column} last moved {age_h:.1f} h ago, limit {limit_hours:g} h",
            details,
        )
    return CheckResult(table, "freshness", "pass", observed, expected, f"{age_h:.1f} h old", details)


def _schema(table: str, columns: list[list[str]], baseline: dict[str, Any] | None) -> CheckResult:
    described = f"{len(columns)} columns"
    if baseline is None:
        return CheckResult(
            table,
            "schema",
            "pass",
            described,
            "no snapshot yet",
            "baseline recorded from this run",
            {"columns": columns, "baseline": True},
        )
    before = dict(baseline["columns"])
    now = dict(columns)
    added = [n for n in now if n not in before]
    dropped = [n for n in before if n not in now]
    retyped = [f"{n}: {before[n]} -> {now[n]}" for n in now if n in before and before[n] != now[n]]
    details = {
        "added": added,
        "dropped": dropped,
        "retyped": retyped,
        "columns": columns,
        "accepted_at": str(baseline["accepted_at"]),
        "accepted_by": baseline["accepted_by"],
    }
    expected = f"{len(before)} columns as accepted {str(baseline['accepted_at'])[:19]}"
    parts = (
        ([f"dropped {', '.join(dropped)}"] if dropped else [])
        + ([f"retyped {'; '.join(retyped)}"] if retyped else [])
        + ([f"added {', '.join(added)}"] if added else [])
    )
    if dropped or retyped:
        return CheckResult(
            table,
            "schema",
            "fail",
            f"{described}: " + "; ".join(parts),
            expected,
            "breaking schema change: " + "; ".join(parts),
            details,
        )
    if added:
        return CheckResult(
            table,
            "schema",
            "warn",
            f"{described}: " + "; ".join(parts),
            expected,
            "columns added (accept with 'aiw data check --accept-schema')",
            details,
        )
    return CheckResult(table, "schema", "pass", described, expected, "unchanged", details)


def _columns(conn: Any, table: str) -> list[list[str]]:
    schema, name = split_table(table)
    rows = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [schema, name],
    ).fetchall()
    return [[str(r[0]), str(r[1])] for r in rows]


def _fingerprint(columns: list[list[str]]) -> str:
    return hashlib.sha256(json.dumps(columns, separators=(",", ":")).encode()).hexdigest()


def _qualified(table: str) -> str:
    if not isinstance(table, str) or not table.strip():
        raise InvalidInputError(f"A table name must be a non-empty 'schema.table' string. Got {table!r}.")
    schema, name = split_table(table.strip())
    return f"{schema}.{name}"


def _sql_name(table: str) -> str:
    schema, name = split_table(table)
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def _utc(moment: datetime | date) -> datetime:
    if not isinstance(moment, datetime):
        if isinstance(moment, date):
            return datetime.combine(moment, datetime.min.time(), tzinfo=UTC)
        raise InvalidInputError(f"The 'as_of' parameter must be a datetime. Got {moment!r}.")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
