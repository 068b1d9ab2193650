"""Analytics over the marts and the platform's data health, for the dashboard and the API.

Every function reads the warehouse (or the metadata database) and returns plain pandas frames
or dataclasses; the dashboard pages only render them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from aiw.data._warehouse import table_exists, warehouse
from aiw.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    import pandas as pd

    from aiw.workspace import Workspace

__all__ = [
    "DataHealth",
    "Kpis",
    "Period",
    "breakdown",
    "claims_trend",
    "data_health",
    "document_corpus",
    "kpis",
    "trend_forecast",
]

Period = Literal["day", "week", "month"]
_BREAKDOWNS = ("line_of_business", "region", "channel", "claim_type")


@dataclass(frozen=True)
class Kpis:
    """Headline figures of the claims book.

    Attributes:
        claims: Claims reported.
        claimed_amount: Sum of claimed amounts.
        paid_amount: Sum of payments made.
        earned_premium: Premium earned over the claims window (each policy's annual premium times
            the share of a year it was in force inside the window).
        loss_ratio: ``paid_amount / earned_premium``.
        open_claims: Claims open or under review.
        fraud_rate: Share of claims labelled fraud.
        first_day: First reporting day.
        last_day: Last reporting day.
    """

    claims: int
    claimed_amount: float
    paid_amount: float
    earned_premium: float
    loss_ratio: float | None
    open_claims: int
    fraud_rate: float
    first_day: Any
    last_day: Any


def _require(conn: Any, *tables: str) -> None:
    missing = [t for t in tables if not table_exists(conn, t)]
    if missing:
        raise NotFoundError(
            f"The warehouse has no {', '.join(missing)} yet", hint="run 'aiw data generate' and 'aiw data build'"
        )


def kpis(workspace: Workspace) -> Kpis:
    """The headline figures, from ``marts.claims_daily`` and the policies.

    Raises:
        NotFoundError: the marts are not built yet.
    """
    with warehouse(workspace) as conn:
        _require(conn, "marts.claims_daily", "staging.stg_policies")
        row = conn.execute("""
            WITH w AS (SELECT min(day) AS d0, max(day) AS d1 FROM marts.claims_daily),
            earned AS (
                SELECT sum(p.annual_premium * greatest(0, least(p.end_date, w.d1) - greatest(p.start_date, w.d0))
                           / 365.0) AS premium
                FROM staging.stg_policies p, w)
            SELECT sum(claims), sum(claimed_amount), sum(paid_amount), (SELECT premium FROM earned),
                   sum(open_claims), sum(fraud_claims), min(day), max(day)
            FROM marts.claims_daily""").fetchone()
    claims, claimed, paid, premium, open_, fraud, d0, d1 = row  # type: ignore[misc]
    claims = int(claims or 0)
    premium = float(premium or 0.0)
    return Kpis(
        claims,
        float(claimed or 0.0),
        float(paid or 0.0),
        premium,
        float(paid or 0.0) / premium if premium > 0 else None,
        int(open_ or 0),
        float(fraud or 0) / claims if claims else 0.0,
        d0,
        d1,
    )


def claims_trend(workspace: Workspace, *, period: Period = "week", line_of_business: str | None = None) -> pd.DataFrame:
    """Claims and amounts per ``period`` (day, week or month), optionally for one line of business.

    Returns:
        Columns ``period`` (its first day), ``claims``, ``claimed_amount``, ``paid_amount``.
    """
    if period not in ("day", "week", "month"):
        raise InvalidInputError(f"The 'period' parameter must be day, week or month. Got {period!r}.")
    with warehouse(workspace) as conn:
        _require(conn, "marts.claims_daily")
        where, params = ("WHERE line_of_business = ?", [line_of_business]) if line_of_business else ("", [])
        return conn.execute(
            f"""
            SELECT date_trunc('{period}', day)::DATE AS period, sum(claims)::BIGINT AS claims,
                   sum(claimed_amount) AS claimed_amount, sum(paid_amount) AS paid_amount
            FROM marts.claims_daily {where} GROUP BY 1 ORDER BY 1""",
            params,
        ).df()


def trend_forecast(trend: pd.DataFrame, *, horizon: int = 12, level: int = 95) -> pd.DataFrame | None:
    """A forecast band for a trend from :func:`claims_trend`, when the forecasting capability exists.

    Returns:
        Columns ``period``, ``forecast``, ``lower``, ``upper``; ``None`` when ``aiw.sql.forecast``
        is not part of this build or the trend is too short.
    """
    try:
        from aiw.sql.forecast import forecast
    except ImportError:  # the rapid-insights capability is not installed
        return None
    if len(trend) < 12:
        return None
    import warnings

    # the last period is usually partial; leave it out of the fit
    history = trend.iloc[:-1][["period", "claims"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = forecast(history, "period", "claims", horizon=horizon, level=level)
    return out.rename(columns={"ts": "period"})[["period", "forecast", "lower", "upper"]]


def breakdown(workspace: Workspace, by: str = "line_of_business") -> pd.DataFrame:
    """Claims, amounts and fraud rate per ``by`` (line_of_business, region, channel or claim_type)."""
    if by not in _BREAKDOWNS:
        raise InvalidInputError(f"The 'by' parameter must be one of {', '.join(_BREAKDOWNS)}. Got {by!r}.")
    with warehouse(workspace) as conn:
        _require(conn, "marts.claim_features")
        return conn.execute(f"""
            SELECT {by}, count(*) AS claims, sum(amount) AS claimed_amount, avg(amount) AS avg_amount,
                   avg(is_fraud::INTEGER) AS fraud_rate
            FROM marts.claim_features GROUP BY 1 ORDER BY claims DESC""").df()


def document_corpus(workspace: Workspace) -> pd.DataFrame:
    """One row per document of ``marts.document_index``: title, line, type, size and freshness."""
    with warehouse(workspace) as conn:
        _require(conn, "marts.document_index")
        return conn.execute("""
            SELECT doc_id, title, line_of_business, doc_type, chars, words, access_tags, updated_at
            FROM marts.document_index ORDER BY line_of_business, doc_type, doc_id""").df()


@dataclass
class DataHealth:
    """What the data-health page shows.

    Attributes:
        runs: The latest pipeline runs (pipeline, status, trigger, started, seconds, error).
        checks: The latest quality-gate results (table, check, status, observed, expected).
        check_run: When the latest gates ran, and their verdict.
        bands: Per table with a volume check: its daily row counts and band (mean, lower, upper).
        dbt: The latest dbt build's node counts and when it ran (from run_results.json).
    """

    runs: pd.DataFrame
    checks: pd.DataFrame
    check_run: dict[str, Any]
    bands: dict[str, pd.DataFrame] = field(default_factory=dict)
    dbt: dict[str, Any] = field(default_factory=dict)


def data_health(workspace: Workspace, *, runs: int = 20) -> DataHealth:
    """The latest pipeline runs, quality gates, volume bands and dbt build of the workspace."""
    import pandas as pd

    from aiw.data.quality import QualityGates
    from aiw.pipelines.runner import PipelineRunner

    records = PipelineRunner(workspace, workspace.settings).runs(limit=runs)
    run_frame = pd.DataFrame(
        [
            {
                "run": r.id[:12],
                "pipeline": r.pipeline,
                "status": r.status,
                "trigger": r.trigger,
                "started (UTC)": r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                "seconds": round(r.seconds, 1) if r.seconds is not None else None,
                "failed steps": ", ".join(s.step for s in r.failed_steps),
                "error": r.error,
            }
            for r in records
        ]
    )
    gates = QualityGates(workspace, workspace.settings.quality)
    latest = gates.runs(limit=1)
    results = gates.results() if latest else []
    checks = pd.DataFrame(
        [
            {"table": r.table, "check": r.check, "status": r.status, "observed": r.observed, "expected": r.expected}
            for r in results
        ]
    )
    bands: dict[str, pd.DataFrame] = {}
    for r in results:
        if r.check == "volume" and r.details.get("series") and "mean" in r.details:
            frame = pd.DataFrame(r.details["series"])
            frame["day"] = pd.to_datetime(frame["day"])
            frame["mean"] = r.details["mean"]
            frame["lower"] = max(r.details["lower"], 0.0)
            frame["upper"] = r.details["upper"]
            bands[r.table] = frame
    check_run = {}
    if latest:
        check_run = {
            "started_at": latest[0]["started_at"],
            "status": latest[0]["status"],
            "failures": latest[0]["failures"],
            "warnings": latest[0]["warnings"],
        }
    return DataHealth(run_frame, checks, check_run, bands, _dbt_summary(workspace))


def _dbt_summary(workspace: Workspace) -> dict[str, Any]:
    path = Path(workspace.path("artifacts")) / "dbt" / "run_results.json"
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    counts: dict[str, int] = {}
    for item in data.get("results", []):
        counts[item.get("status", "?")] = counts.get(item.get("status", "?"), 0) + 1
    generated = data.get("metadata", {}).get("generated_at", "")
    when = None
    if generated:
        try:
            when = datetime.fromisoformat(generated.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            when = None
    return {"generated_at": when, "counts": counts, "seconds": data.get("elapsed_time")}
