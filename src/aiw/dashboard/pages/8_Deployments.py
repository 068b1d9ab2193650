"""Deployments: each model's canary or shadow rollout, the split, each arm's live metrics, and every
decision with its reason."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from aiw.dashboard._common import get_workspace, page_header
from aiw.mlops.rollout.plan import format_share
from aiw.mlops.rollout.service import DeploymentService

page_header("Deployments", "Canary and shadow rollouts: traffic split, live guardrail metrics, every decision.")
ws = get_workspace()
service = DeploymentService(ws)
rollouts = service.history(limit=200)

if not rollouts:
    st.info(
        "No rollout yet. Start one with `aiw deploy canary NAME --version V` (or `aiw deploy shadow ...`); "
        "`aiw serve` routes the traffic and decides."
    )
    st.stop()

models = list(dict.fromkeys(r.model for r in rollouts))  # newest first
running = {r.model for r in rollouts if r.running}
st.button("Refresh", key="refresh")
model = st.selectbox("Model", models, key="model", format_func=lambda m: f"{m} (rolling out)" if m in running else m)
status = service.status(model)
rollout = status.rollout
assert rollout is not None  # every model listed has at least one rollout

c1, c2, c3, c4 = st.columns(4)
c1.metric("Status", rollout.status.replace("_", " "))
c2.metric("Mode", rollout.mode)
c3.metric("Candidate", f"v{rollout.candidate_version}", f"against v{rollout.champion_version}", delta_color="off")
c4.metric("@champion now", f"v{status.champion_version}" if status.champion_version else "-")
st.caption(
    f"Rollout #{rollout.id}: {rollout.plan.describe()}; started by {rollout.created_by} at "
    f"{rollout.started_at.isoformat(timespec='seconds')}. Last decision: {rollout.reason}"
)

st.subheader("Traffic split")
if rollout.mode == "shadow":
    st.markdown(
        "The champion answers every request; each one is mirrored to the candidate, whose answers are "
        "recorded and compared but never returned."
        if rollout.running
        else "Shadow over: mirroring stopped."
    )
else:
    st.progress(
        min(max(rollout.share, 0.0), 1.0),
        text=f"candidate v{rollout.candidate_version}: {format_share(rollout.share)} of live traffic, "
        f"champion v{rollout.champion_version}: {format_share(1 - rollout.share)}",
    )
    steps = pd.DataFrame(
        {
            "step": [f"{i + 1}" for i in range(len(rollout.plan.steps))],
            "candidate share (%)": list(rollout.plan.steps),
            "state": [
                "done"
                if i < rollout.step_index
                else (
                    "current"
                    if i == rollout.step_index and rollout.running
                    else ("reached" if i == rollout.step_index else "ahead")
                )
                for i in range(len(rollout.plan.steps))
            ],
        }
    )
    st.dataframe(steps, hide_index=True, width="stretch")

st.subheader("Live metrics of the current step")
live = status.live
if not live or not rollout.running:
    st.caption("No live metrics: the rollout is over, or no server has served it yet (`aiw serve`).")
else:
    arms = []
    for arm in ("champion", "candidate"):
        m = live.get(arm) or {}
        arms.append(
            {
                "arm": arm,
                "version": f"v{m.get('version', '?')}",
                "requests": m.get("requests", 0),
                "errors": m.get("errors", 0),
                "error rate": f"{m.get('error_rate', 0):.2%}",
                "p50 (ms)": m.get("p50_ms"),
                "p95 (ms)": m.get("p95_ms"),
                "mean prediction": m.get("prediction_mean"),
            }
        )
    st.dataframe(pd.DataFrame(arms), hide_index=True, width="stretch")
    g = rollout.plan.guardrails
    age = f" (measured {status.live_age_s:.0f} s ago)" if status.live_age_s and status.live_age_s >= 2 else ""
    st.caption(
        f"Guardrails: error rate <= {g.max_error_rate:.1%}, p95 <= x{g.max_p95_ratio:g} the champion's, "
        f"prediction PSI <= {g.max_prediction_psi:g}, at least {g.min_requests} requests per arm{age}."
    )
    shadow = live.get("shadow")
    if shadow:
        agreement = shadow.get("agreement")
        st.markdown(
            f"Shadow: {shadow['mirrored']} requests mirrored ({shadow['dropped']} dropped); answers agree "
            f"with the champion's on {'-' if agreement is None else f'{agreement:.1%}'} of "
            f"{shadow['compared_rows']} rows."
        )

st.subheader("Decisions")
st.dataframe(
    pd.DataFrame(
        [
            {
                "time (UTC)": d.at.isoformat(timespec="seconds"),
                "action": d.action,
                "share": f"{format_share(d.from_share)} -> {format_share(d.to_share)}",
                "reason": d.reason,
                "by": d.actor,
            }
            for d in status.decisions
        ]
    ),
    hide_index=True,
    width="stretch",
)

st.subheader("All rollouts")
st.dataframe(
    pd.DataFrame(
        [
            {
                "id": r.id,
                "model": r.model,
                "mode": r.mode,
                "candidate": f"v{r.candidate_version}",
                "champion": f"v{r.champion_version}",
                "status": r.status,
                "share": format_share(r.share),
                "started (UTC)": r.started_at.isoformat(timespec="seconds"),
                "last reason": r.reason,
            }
            for r in rollouts
        ]
    ),
    hide_index=True,
    width="stretch",
)
