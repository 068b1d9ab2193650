"""Models: governed models and versions, the approval queue (approve or reject here), model cards."""

from __future__ import annotations

import getpass
import os

import pandas as pd
import streamlit as st

from aiw.dashboard._common import get_workspace, page_header
from aiw.errors import AiwError
from aiw.governance.identity import Principal, permissions_of
from aiw.mlops.registry import ModelRegistry, PromotionWorkflow, build_card

page_header("Models", "Governed model versions, pending approvals and model cards.")
ws = get_workspace()
registry, workflow = ModelRegistry(ws), PromotionWorkflow(ws, ModelRegistry(ws))


def _operator() -> Principal:
    """The local operator: $AIW_ACTOR (default ui:<user>) with the role $AIW_ROLE (default admin)."""
    name = os.environ.get("AIW_ACTOR", "").strip()
    if not name:
        try:
            name = f"ui:{getpass.getuser()}"
        except Exception:  # no user name in a bare container
            name = f"ui:uid{os.getuid()}"
    role = os.environ.get("AIW_ROLE", "admin").strip() or "admin"
    permissions_of(role)
    return Principal(name, role)


models = registry.list_models()
st.subheader("Models")
if not models:
    st.info("No governed model yet. Train and register one: `aiw models train claims-fraud --register`.")
    st.stop()
st.dataframe(
    pd.DataFrame(
        [
            {
                "model": m.name,
                "latest version": m.latest_version,
                "versions": m.versions,
                "aliases": ", ".join(f"@{a} = v{v}" for a, v in sorted(m.aliases.items())) or "-",
                "updated (UTC)": m.updated_at.isoformat(timespec="seconds"),
            }
            for m in models
        ]
    ),
    hide_index=True,
    use_container_width=True,
)

name = st.selectbox("Model", [m.name for m in models], key="models_name")
versions = registry.versions(name)
st.dataframe(
    pd.DataFrame(
        [
            {
                "version": v.version,
                "aliases": ", ".join(v.aliases) or "-",
                "auc": v.metrics.get("auc"),
                "f1": v.metrics.get("f1"),
                "registered by": v.registered_by,
                "at (UTC)": v.registered_at.isoformat(timespec="seconds"),
                "parent": v.parent_version,
                "data sha256": str(v.data_fingerprint.get("sha256"))[:12],
                "files": len(v.manifest),
            }
            for v in versions
        ]
    ),
    hide_index=True,
    use_container_width=True,
)

st.subheader("Pending approvals")
pending = workflow.pending()
if not pending:
    st.caption("Nothing waits for approval.")
else:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "request": r.id,
                    "model": r.model,
                    "version": r.version,
                    "target": r.target,
                    "requested by": r.requested_by,
                    "reason": r.reason,
                    "approvals": f"{r.approvals}/{r.approvals_needed}",
                    "requested (UTC)": r.requested_at.isoformat(timespec="seconds"),
                }
                for r in pending
            ]
        ),
        hide_index=True,
        use_container_width=True,
    )
    with st.form("decide"):
        labels = {f"#{r.id} {r.model} v{r.version} -> {r.target} (by {r.requested_by})": r.id for r in pending}
        chosen = st.selectbox("Request", list(labels), key="models_request")
        key = st.text_input(
            "Approver API key (leave empty to act as the local operator)", type="password", key="models_key"
        )
        comment = st.text_input("Comment", key="models_comment")
        approve_col, reject_col = st.columns(2)
        approve = approve_col.form_submit_button("Approve")
        reject = reject_col.form_submit_button("Reject")
    if approve or reject:
        try:
            who = ws.keys.authenticate(key) if key else _operator()
            request_id = labels[chosen]
            if approve:
                done = workflow.approve(request_id, who, comment=comment)
            else:
                done = workflow.reject(request_id, who, comment=comment)
            st.success(
                f"Request #{done.id} is now {done.status} "
                f"({done.approvals}/{done.approvals_needed} approvals), decided by {who.name}."
            )
        except AiwError as exc:
            st.error(str(exc))

st.subheader("Model card")
version = st.selectbox("Version", [v.version for v in versions], key="models_version")
try:
    st.markdown(build_card(ws, name, int(version)).markdown)
except AiwError as exc:
    st.error(str(exc))
