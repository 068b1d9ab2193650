"""Monitoring: the latest drift report of each model and table, its drifted columns, and alerts."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from aiw.dashboard._common import get_workspace, page_header
from aiw.mlops.monitoring.alerts import AlertManager, OutboxWorker
from aiw.mlops.monitoring.service import MonitoringService

page_header("Monitoring", "Data and embedding drift per model and table, and the alerts they raised.")
ws = get_workspace()
service = MonitoringService(ws)
latest = service.latest_reports()

st.subheader("Latest drift reports")
if not latest:
    st.info(
        "No drift report yet. Run `aiw monitor drift --reference T1 --current T2` or `aiw monitor drift --model NAME`."
    )
else:
    drifting = sum(r.dataset_drift for r in latest)
    c1, c2, c3 = st.columns(3)
    c1.metric("Subjects monitored", len(latest))
    c2.metric("With dataset drift", drifting)
    c3.metric("Drifted columns", sum(r.n_drifted for r in latest))
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "report": r.id,
                    "subject": r.subject,
                    "kind": r.kind,
                    "time (UTC)": r.created_at[:19].replace("T", " "),
                    "dataset drift": "DRIFT" if r.dataset_drift else "ok",
                    "drifted": f"{r.n_drifted}/{r.n_columns}",
                    "drifted columns": ", ".join(r.drifted_columns[:12]),
                }
                for r in latest
            ]
        ),
        hide_index=True,
        use_container_width=True,
    )

    labels = {f"#{r.id} {r.subject} ({r.kind})": r for r in latest}
    chosen = labels[st.selectbox("Report", list(labels), key="monitor_report")]
    body = chosen.report
    if chosen.kind == "embedding":
        st.dataframe(pd.DataFrame(body.get("metrics", [])), hide_index=True, use_container_width=True)
    else:
        cols = pd.DataFrame(
            [
                {
                    "column": c["column"],
                    "kind": c["kind"],
                    "method": c["method"],
                    "score": c["score"],
                    "threshold": c["threshold"],
                    "drift": "DRIFT" if c["drifted"] else "ok",
                    "exact": c["exact"],
                }
                for c in body.get("columns", [])
            ]
        )
        st.dataframe(cols, hide_index=True, use_container_width=True)
        drifted = [c for c in body.get("columns", []) if c["drifted"]]
        for col in drifted[:6]:
            plot = col.get("plot", {})
            if not plot.get("reference"):
                continue
            index = plot.get("categories") or [f"{e:.3g}" for e in plot.get("edges", [])[:-1]]
            st.caption(f"{col['column']}: {col['method']} = {col['score']:.4g} (threshold {col['threshold']:g})")
            st.bar_chart(
                pd.DataFrame(
                    {"reference": plot["reference"], "current": plot["current"]}, index=index[: len(plot["reference"])]
                )
            )
        if chosen.html_path:
            st.caption(f"Full HTML report: `{chosen.html_path}`")

st.subheader("Alerts")
found = AlertManager(ws.db, ws.audit, ws.settings.alerts).list_alerts(limit=100)
if not found:
    st.success("No alerts.")
else:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "id": a.id,
                    "time (UTC)": a.created_at[:19].replace("T", " "),
                    "severity": a.severity,
                    "rule": a.rule,
                    "subject": a.subject,
                    "message": a.message,
                    "acknowledged by": a.acknowledged_by or "",
                }
                for a in found
            ]
        ),
        hide_index=True,
        use_container_width=True,
    )
pending = OutboxWorker(ws.db, ws.settings.alerts).pending()
if pending:
    st.warning(f"{len(pending)} webhook deliveries pending (last error: {pending[-1]['last_error'] or 'none yet'}).")
