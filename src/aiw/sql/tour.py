"""The tour's "Rapid insights" step: AI in SQL, a claim-volume forecast, and the anomalies found."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiw.tour import TourContext

__all__ = ["DAILY_CLAIMS", "SENTIMENT_BY_TYPE", "tour_step"]

SENTIMENT_BY_TYPE = """
SELECT claim_type, count(*) AS claims, round(avg(ai_sentiment(adjuster_notes)), 3) AS sentiment
FROM claims GROUP BY claim_type ORDER BY sentiment"""
"""Sentiment of the adjusters' notes by claim type: one ai_sentiment call per note, in SQL."""

DAILY_CLAIMS = "SELECT incident_date AS day, line_of_business, count(*) AS n FROM claims GROUP BY ALL"
"""Claims per incident day and line of business (days without claims are filled with 0)."""

_CLASSIFY = """
SELECT ai_classify(adjuster_notes, ['water or storm damage to a home', 'a vehicle collision',
                                    'a medical treatment', 'a travel problem', 'theft']) AS predicted,
       line_of_business, count(*) AS notes
FROM (SELECT * FROM claims ORDER BY claim_id LIMIT 100) GROUP BY ALL ORDER BY notes DESC LIMIT 6"""


def tour_step(ctx: TourContext) -> None:
    """Sentiment by claim type, the next 30 days of claims, and the injected anomalies found."""
    from aiw.sql.forecast import detect_anomalies, forecast
    from aiw.sql.runner import run_query

    ws, out = ctx.workspace, ctx.console
    sentiment = run_query(ws, SENTIMENT_BY_TYPE, timeout_s=120)
    rows = sentiment.rows()
    out.print(
        f"  ai_sentiment over {sum(r[1] for r in rows):,} adjuster notes in "
        f"{sentiment.elapsed_s:.1f} s; by claim type (most negative first):"
    )
    for claim_type, claims, score in rows[:4]:
        out.print(f"    {claim_type:<22} {claims:>7,} claims   sentiment {score:+.3f}")
    if len(rows) > 4:
        out.print(f"    ... and {len(rows) - 4} more claim types")

    classified = run_query(ws, _CLASSIFY, timeout_s=120)
    top = ", ".join(f"{r[0]} / {r[1]} ({r[2]})" for r in classified.rows()[:3])
    out.print(f"  ai_classify (zero-shot) on 100 notes, top label / line: {top}")

    history = run_query(ws, DAILY_CLAIMS, row_limit=1_000_000).table.to_pandas()
    total = history.groupby("day", as_index=False)["n"].sum()
    fc = forecast(total, "day", "n", horizon=30, fill="zero")
    out.print(
        f"  forecast of daily claims ({fc['model'].iloc[0]}, 95% interval): next 30 days "
        f"{fc['forecast'].sum():,.0f} claims (interval per day e.g. {fc['lower'].iloc[0]:.0f} to "
        f"{fc['upper'].iloc[0]:.0f} on {fc['ts'].iloc[0]:%Y-%m-%d})"
    )

    anomalies = detect_anomalies(history, "day", "n", "line_of_business", level=99.9, fill="zero")
    found = anomalies[anomalies["is_anomaly"]]
    truth = run_query(
        ws, "SELECT CAST(day AS TIMESTAMP) AS day, line_of_business, kind FROM sample_anomalies ORDER BY day"
    ).table.to_pandas()
    hits = found.merge(truth.rename(columns={"day": "ts", "line_of_business": "series"}), on=["series", "ts"])
    out.print(
        f"  anomalies (99.9% interval, per line of business): {len(found)} flagged of {len(anomalies):,} "
        f"days; {len(hits)} of the {len(truth)} injected ones found"
    )
    for r in hits.sort_values("ts").itertuples(index=False):
        out.print(
            f"    {r.ts:%Y-%m-%d} {r.series:<7} {r.kind:<6} {r.y:>5.0f} claims vs {r.forecast:>6.1f} "
            f"expected ({r.distance:+.1f} sd)"
        )
    ctx.facts["insights"] = {
        "sentiment_by_type": rows,
        "forecast_30d": float(fc["forecast"].sum()),
        "anomalies_flagged": len(found),
        "anomalies_injected": len(truth),
        "anomalies_found": len(hits),
    }
