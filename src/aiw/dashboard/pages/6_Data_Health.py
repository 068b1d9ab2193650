"""Data health: the latest pipeline runs, the quality gates and each table's row counts in their band."""

from __future__ import annotations

import altair as alt
import streamlit as st

from aiw.dashboard._common import get_workspace, page_header
from aiw.data.analytics import data_health

page_header("Data health", "Pipelines, quality gates (volume, freshness, schema) and row-count bands.")
ws = get_workspace()
health = data_health(ws)

st.subheader("Quality gates")
if health.checks.empty:
    st.info("No quality check has run yet. Run `aiw data check` or `aiw pipelines run daily-validation`.")
else:
    run = health.check_run
    verdict = {"pass": st.success, "warn": st.warning, "fail": st.error}.get(run["status"], st.info)
    verdict(
        f"Latest gates ({str(run['started_at'])[:19]} UTC): {run['status'].upper()}, "
        f"{run['failures']} failed, {run['warnings']} warned."
    )
    st.dataframe(health.checks, hide_index=True, use_container_width=True)

st.subheader("Row-count bands")
if not health.bands:
    st.caption("No volume check with enough history yet.")
for table, frame in health.bands.items():
    st.markdown(f"**{table}**: daily rows against the trailing mean and its band")
    band = alt.Chart(frame).mark_area(opacity=0.2).encode(x=alt.X("day:T", title=None), y="lower:Q", y2="upper:Q")
    mean = alt.Chart(frame).mark_line(strokeDash=[4, 3]).encode(x="day:T", y="mean:Q")
    rows = (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(x="day:T", y=alt.Y("rows:Q", title="rows"), tooltip=["day:T", "rows:Q"])
    )
    st.altair_chart(band + mean + rows, use_container_width=True)

st.subheader("Pipeline runs")
if health.runs.empty:
    st.info("No pipeline has run yet. Run `aiw pipelines run daily-validation`.")
else:
    st.dataframe(health.runs, hide_index=True, use_container_width=True)

st.subheader("dbt")
if health.dbt:
    counts = ", ".join(f"{v} {k}" for k, v in sorted(health.dbt["counts"].items()))
    st.markdown(
        f"Last build {str(health.dbt['generated_at'])[:19]} UTC: {counts} "
        f"in {health.dbt['seconds'] or 0:.1f} s. Docs: `aiw data docs`."
    )
else:
    st.caption("No dbt build yet: `aiw data build`.")
