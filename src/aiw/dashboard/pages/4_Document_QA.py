"""Document Q&A: chat with the documents; every answer cites its sources, which expand to the passage."""

from __future__ import annotations

import streamlit as st

from aiw.dashboard._common import get_workspace, page_header
from aiw.errors import AiwError
from aiw.governance.identity import ROLES
from aiw.rag.service import RagService

page_header("Document Q&A", "Ask questions of the documents; answers cite the passages they come from.")
ws = get_workspace()


@st.cache_resource(show_spinner=False)
def _service(home: str) -> RagService:
    return RagService(ws, ws.settings)


service = _service(str(ws.root))
try:
    collections = service.collections()
except AiwError as exc:
    st.error(str(exc))
    st.stop()

if not collections:
    st.info("No documents are indexed yet. Ingest some with `aiw rag ingest PATH`.")
    if any(ws.documents_dir.glob("*.md")) and st.button("Ingest the sample documents", type="primary"):
        with st.spinner("Embedding the sample documents..."):
            report = service.ingest([ws.documents_dir], actor="dashboard")
        st.success(f"Ingested {len(report.added)} documents ({report.chunks_written} chunks).")
        st.rerun()
    st.stop()

names = [c["collection"] for c in collections]
default = names.index(ws.settings.rag.collection) if ws.settings.rag.collection in names else 0
left, middle, right = st.columns([2, 2, 1])
collection = left.selectbox("Collection", names, index=default)
role = middle.selectbox(
    "Answer as role", ROLES, index=ROLES.index("analyst"), help="Only documents this role may read are used."
)
info = next(c for c in collections if c["collection"] == collection)
right.metric("Documents", info["documents"], help=f"{info['chunks']} chunks")

key = f"rag_chat::{collection}::{role}"
chat: list[dict[str, object]] = st.session_state.setdefault(key, [])
if st.button("New conversation", disabled=not chat):
    chat.clear()
    st.rerun()

for turn in chat:
    with st.chat_message(str(turn["role"])):
        st.markdown(str(turn["content"]))
        for citation in turn.get("citations", []):  # type: ignore[attr-defined]
            with st.expander(citation["label"]):
                st.caption(citation["source"])
                st.markdown(citation["text"])

question = st.chat_input("Ask a question about the documents")
if question:
    history = [{"role": str(t["role"]), "content": str(t["content"])} for t in chat]
    try:
        result = service.ask(question, collection=collection, role=role, history=history)
    except AiwError as exc:
        st.error(str(exc))
    else:
        chat.append({"role": "user", "content": question})
        chat.append(
            {
                "role": "assistant",
                "content": result.answer.text,
                "citations": [
                    {"label": c.label(), "source": c.source, "text": c.text} for c in result.answer.citations
                ],
            }
        )
        st.rerun()
