"""Analytics: KPIs of the claims book, the claims trend with its forecast band, breakdowns by line
of business and region, and the document corpus."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from aiw.dashboard._common import get_workspace, page_header
from aiw.data.analytics import Period, breakdown, claims_trend, document_corpus, kpis, trend_forecast
from aiw.errors import AiwError

page_header("Analytics", "The claims book from the dbt marts: KPIs, trends with a forecast band, breakdowns.")
ws = get_workspace()

try:
    k = kpis(ws)
except AiwError as exc:
    st.info(f"{exc}. Build the marts with `aiw data generate` then `aiw data build`.")
    st.stop()

c1, c2, c3, c4 = st.columns(4)
c1.metric("Claims", f"{k.claims:,}")
c2.metric("Paid amount", f"{k.paid_amount:,.0f}")
c3.metric(
    "Loss ratio",
    "n/a" if k.loss_ratio is None else f"{k.loss_ratio:.1%}",
    help="Payments over the premium earned in the claims window.",
)
c4.metric("Open claims", f"{k.open_claims:,}")
st.caption(
    f"Claims reported {k.first_day} to {k.last_day}; fraud rate {k.fraud_rate:.1%}; "
    f"earned premium {k.earned_premium:,.0f}."
)

st.subheader("Claims trend")
left, right = st.columns([1, 3])
period: Period = left.radio("Period", ["week", "month", "day"], horizontal=False)
lines = ["all", "auto", "home", "health", "travel", "life"]
line = left.selectbox("Line of business", lines)
trend = claims_trend(ws, period=period, line_of_business=None if line == "all" else line)
band = trend_forecast(trend) if period != "day" else None
chart = (
    alt.Chart(trend)
    .mark_line(point=False)
    .encode(x=alt.X("period:T", title=None), y=alt.Y("claims:Q", title="claims"), tooltip=["period:T", "claims:Q"])
)
if band is not None:
    area = alt.Chart(band).mark_area(opacity=0.25).encode(x="period:T", y="lower:Q", y2="upper:Q")
    fc = alt.Chart(band).mark_line(strokeDash=[4, 3]).encode(x="period:T", y="forecast:Q")
    chart = chart + area + fc
right.altair_chart(chart, use_container_width=True)
right.caption(
    "Dashed: forecast with its 95% band."
    if band is not None
    else "No forecast band (the forecasting capability is missing, the series is short, or per day)."
)

st.subheader("Breakdowns")
b1, b2 = st.columns(2)
for col, by, title in ((b1, "line_of_business", "By line of business"), (b2, "region", "By region")):
    frame = breakdown(ws, by)
    col.markdown(f"**{title}**")
    col.altair_chart(
        alt.Chart(frame)
        .mark_bar()
        .encode(x=alt.X(f"{by}:N", sort="-y", title=None), y=alt.Y("claims:Q"), tooltip=list(frame.columns)),
        use_container_width=True,
    )
    col.dataframe(
        frame.assign(fraud_rate=(frame["fraud_rate"] * 100).round(2)).rename(columns={"fraud_rate": "fraud rate %"}),
        hide_index=True,
        use_container_width=True,
    )

st.subheader("Document corpus")
docs = document_corpus(ws)
d1, d2, d3 = st.columns(3)
d1.metric("Documents", len(docs))
d2.metric("Words", f"{int(docs['words'].sum()):,}" if len(docs) else "0")
d3.metric("Newest update", str(pd.to_datetime(docs["updated_at"]).max())[:16] if len(docs) else "-")
st.dataframe(docs.drop(columns=["doc_id"]), hide_index=True, use_container_width=True)
