"""SQL & Insights: a read-only SQL editor with the ai_* functions, and forecasts with their intervals."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from aiw.dashboard._common import get_workspace, page_header
from aiw.errors import AiwError
from aiw.sql.forecast import forecast, load_history
from aiw.sql.runner import run_query
from aiw.sql.tour import SENTIMENT_BY_TYPE

page_header("SQL & Insights", "Read-only SQL with AI functions inline; forecasts with their prediction intervals.")
ws = get_workspace()


st.subheader("SQL")
st.caption(
    "One SELECT statement; writes are refused. Functions: ai_sentiment, ai_classify, ai_embed, "
    "ai_similarity, ai_summarize, ai_extract_answer, ai_redact, ai_complete, ai_filter, ai_translate; "
    "table macros ai_forecast and ai_detect_anomalies."
)
sql = st.text_area("Query", value=SENTIMENT_BY_TYPE.strip(), height=180, key="sql_text")
col_limit, col_timeout = st.columns(2)
limit = col_limit.number_input(
    "Row limit", min_value=1, max_value=1_000_000, value=min(1000, ws.settings.sql.row_limit), step=100
)
timeout = col_timeout.number_input(
    "Timeout (s)", min_value=1.0, max_value=3600.0, value=float(ws.settings.sql.timeout_s), step=5.0
)
if st.button("Run query", type="primary", key="run_sql"):
    try:
        st.session_state["sql_result"] = run_query(ws, sql, row_limit=int(limit), timeout_s=float(timeout))
    except AiwError as exc:
        st.error(str(exc))
shown = st.session_state.get("sql_result")
if shown is not None:
    st.dataframe(shown.table.to_pandas(), hide_index=True, width="stretch")
    st.caption(
        f"{shown.row_count:,} rows in {shown.elapsed_s * 1000:.0f} ms"
        + (" (truncated at the row limit)" if shown.truncated else "")
    )
    for warning in shown.warnings[:10]:
        st.warning(warning)

st.subheader("Forecast")
with st.form("forecast_form"):
    c1, c2, c3 = st.columns(3)
    source = c1.text_input("Table or SELECT", value="claims")
    ts_col = c2.text_input("Timestamp column", value="incident_date")
    value_col = c3.text_input("Value column (empty with count)", value="")
    c4, c5, c6, c7 = st.columns(4)
    agg = c4.selectbox("Aggregate", ["count", "sum", "mean", "none"], index=0)
    grain = c5.selectbox("Grain", ["day", "hour", "week", "month", "none"], index=0)
    series_col = c6.text_input("Series column (optional)", value="")
    horizon = c7.number_input("Horizon", min_value=1, max_value=1000, value=30)
    fill = st.selectbox(
        "Gaps", ["zero", "interpolate", "none"], index=0, help="zero for counts: a missing day had no events"
    )
    submitted = st.form_submit_button("Forecast")
if submitted:
    try:
        history = load_history(
            ws, source, ts_col, value_col or None, series_col or None, agg=agg, grain=None if grain == "none" else grain
        )
        fc = forecast(
            history,
            "ts",
            "y",
            "series" if series_col else None,
            horizon=int(horizon),
            fill="zero" if fill == "zero" else "none" if fill == "none" else "interpolate",
        )
    except AiwError as exc:
        st.error(str(exc))
    else:
        st.session_state["forecast"] = (history, fc)
if "forecast" in st.session_state:
    history, fc = st.session_state["forecast"]
    names = sorted(fc["series"].unique())
    name = st.selectbox("Series", names) if len(names) > 1 else names[0]
    hist = history if "series" not in history else history[history["series"] == name]
    hist = hist.sort_values("ts").tail(max(90, 3 * len(fc[fc["series"] == name])))
    future = fc[fc["series"] == name]
    past = pd.DataFrame({"ts": pd.to_datetime(hist["ts"]), "value": hist["y"], "kind": "history"})
    ahead = pd.DataFrame({"ts": pd.to_datetime(future["ts"]), "value": future["forecast"], "kind": "forecast"})
    band = (
        alt.Chart(future.assign(ts=pd.to_datetime(future["ts"])))
        .mark_area(opacity=0.25)
        .encode(x="ts:T", y=alt.Y("lower:Q", title="value"), y2="upper:Q")
    )
    lines = (
        alt.Chart(pd.concat([past, ahead])).mark_line().encode(x=alt.X("ts:T", title=None), y="value:Q", color="kind:N")
    )
    st.altair_chart(band + lines, width="stretch")
    st.dataframe(future, hide_index=True, width="stretch")
    for note in fc.attrs.get("notes", []):
        st.info(note)
