"""Tour step: a drifted batch of claims is checked against the claims seen so far, and alerts."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiw.tour import TourContext

__all__ = ["tour_step"]

_COLUMNS = "days_to_report, prior_claims, claim_type, region, line_of_business"


def tour_step(ctx: TourContext) -> None:
    """Split the sample claims into a reference and a batch whose amounts, reporting delays and
    channels moved; score drift, store the report, raise the alerts."""
    from aiw.mlops.monitoring.service import MonitoringService

    ws = ctx.workspace
    conn = ws.connect_warehouse(ai_functions=False)
    try:
        conn.execute(
            f"CREATE OR REPLACE TABLE monitor_claims_reference AS SELECT amount, channel, {_COLUMNS} "
            "FROM claims WHERE claim_id % 2 = 0"
        )
        # the batch: amounts up 60%, 'agent' half replaced by 'app', reported a week later,
        # one more prior claim each
        conn.execute(
            "CREATE OR REPLACE TABLE monitor_claims_batch AS SELECT amount * 1.6 AS amount, "
            "CASE WHEN channel = 'agent' AND claim_id % 2 = 1 AND claim_id % 4 = 1 THEN 'app' "
            "ELSE channel END AS channel, days_to_report + 7 AS days_to_report, "
            "prior_claims + 1 AS prior_claims, claim_type, region, line_of_business "
            "FROM claims WHERE claim_id % 2 = 1"
        )
    finally:
        conn.close()
    ws.audit.append(
        "tour", "monitor.tour_batch", "table:monitor_claims_batch", details={"reference": "monitor_claims_reference"}
    )
    check = MonitoringService(ws).check_tables("monitor_claims_reference", "monitor_claims_batch", actor="tour")
    report = check.report
    ctx.facts["drift_check"] = check
    ctx.console.print(
        f"  drift of a claims batch: {report.n_drifted}/{report.n_columns} columns drifted "
        f"({', '.join(report.drifted_columns) or 'none'}); dataset drift: {report.dataset_drift}; "
        f"scored in {report.elapsed_s:.2f} s"
    )
    for alert in check.alerts:
        ctx.console.print(f"  alert #{alert.id} \\[{alert.severity}] {alert.message}")
    ctx.console.print(f"  report: {check.html_path}")
