"""Home: the workspace, where each backend lives, and the latest audit events."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from aiw.dashboard._common import get_workspace, page_header

page_header("Enterprise AI Workflows", "AI in SQL, governed MLOps, document Q&A and a data platform.")
ws = get_workspace()
st.subheader("Workspace")
st.markdown(f"**Folder:** `{ws.root}`")

st.subheader("Backends")
status = ws.status()
st.table(
    pd.DataFrame(
        [
            {
                "concern": c.concern,
                "backend": c.backend,
                "location": c.location,
                "reachable": "yes" if c.reachable else ("NO" if c.required else "no (optional)"),
                "detail": c.detail,
            }
            for c in status
        ]
    ).set_index("concern")
)

st.subheader("Latest audit events")
records = ws.audit.records(limit=20)
if records:
    st.table(
        pd.DataFrame(
            [
                {
                    "seq": r.seq,
                    "time (UTC)": r.ts[:19].replace("T", " "),
                    "actor": r.actor,
                    "action": r.action,
                    "resource": r.resource,
                    "outcome": r.outcome,
                }
                for r in records
            ]
        ).set_index("seq")
    )
else:
    st.info("No audit events yet. Create a key with `aiw keys create --role admin`.")
report = ws.audit.verify()
if report.ok:
    st.success(f"Audit chain intact: {report.checked} records verified.")
else:
    st.error(f"Audit chain broken at record {report.first_bad_seq}: {report.reason}")
