"""The REST surface against a real uvicorn server: ingest, query (JSON and SSE), OpenAI-compatible chat."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(workspace, corpus_dir: Path, embedder) -> Iterator[tuple[str, dict[str, str]]]:  # type: ignore[no-untyped-def]
    import uvicorn

    from aiw.api import create_app
    from aiw.rag.service import RagService

    shutil.copytree(corpus_dir, workspace.documents_dir, dirs_exist_ok=True)
    keys = {
        role: workspace.keys.create(f"{role}-key", role, actor="test")[1]
        for role in ("viewer", "analyst", "data_scientist")
    }
    app = create_app(workspace.settings)
    app.state.rag_service = RagService(workspace, workspace.settings, embedder=embedder)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", keys
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _events(text: str) -> list[tuple[str, Any]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        out.append((lines.get("event", ""), json.loads(lines["data"])))
    return out


def test_ingest_query_and_stream(server) -> None:  # type: ignore[no-untyped-def]
    base, keys = server
    body = {"paths": ["."], "collection": "policies"}
    denied = httpx.post(f"{base}/v1/rag/ingest", json=body, headers=_auth(keys["analyst"]))
    assert denied.status_code == 403
    outside = httpx.post(f"{base}/v1/rag/ingest", json={"paths": ["/etc"]}, headers=_auth(keys["data_scientist"]))
    assert outside.status_code == 422 and "outside" in outside.json()["error"]["message"]
    done = httpx.post(f"{base}/v1/rag/ingest", json=body, headers=_auth(keys["data_scientist"]), timeout=120)
    assert done.status_code == 200, done.text
    assert len(done.json()["added"]) == 5 and done.json()["failed"] == []

    query = {"question": "Is flood damage covered?", "top_k": 3}
    answer = httpx.post(f"{base}/v1/rag/query", json=query, headers=_auth(keys["viewer"]), timeout=60).json()
    assert answer["known"] and "flood rider" in answer["answer"]
    assert answer["citations"][0]["heading"] == "Home Insurance > Exclusions"
    assert len(answer["retrieved"]) == 3 and all(isinstance(r["score"], float) for r in answer["retrieved"])
    assert answer["retrieved"][0]["cosine"] > 0.3

    fraud = {"question": "Which late claims go to the special investigations unit?", "top_k": 10}
    as_viewer = httpx.post(f"{base}/v1/rag/query", json=fraud, headers=_auth(keys["viewer"]), timeout=60).json()
    assert all(not r["source"].endswith("fraud.md") for r in as_viewer["retrieved"])
    as_ds = httpx.post(f"{base}/v1/rag/query", json=fraud, headers=_auth(keys["data_scientist"]), timeout=60).json()
    assert as_ds["retrieved"][0]["source"].endswith("fraud.md")

    with httpx.stream(
        "POST", f"{base}/v1/rag/query", json={**query, "stream": True}, headers=_auth(keys["viewer"]), timeout=60
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _events(response.read().decode())
    kinds = [k for k, _ in events]
    assert kinds[0] == "delta" and kinds[-2:] == ["answer", "done"]
    streamed = "".join(d["text"] for k, d in events if k == "delta")
    assert streamed == events[-2][1]["answer"] == answer["answer"]

    missing = httpx.post(
        f"{base}/v1/rag/query", json={**query, "collection": "nothing-here"}, headers=_auth(keys["viewer"])
    )
    assert missing.status_code == 404


def test_openai_client_works_unchanged(server) -> None:  # type: ignore[no-untyped-def]
    import openai

    base, keys = server
    httpx.post(f"{base}/v1/rag/ingest", json={"paths": ["."]}, headers=_auth(keys["data_scientist"]), timeout=120)
    client = openai.OpenAI(base_url=f"{base}/v1", api_key=keys["viewer"], max_retries=0)
    reply = client.chat.completions.create(
        model="policies", messages=[{"role": "user", "content": "How much do I pay for a windscreen replacement?"}]
    )
    content = reply.choices[0].message.content or ""
    assert "€100 glass deductible" in content and "Sources:" in content and "auto.md" in content
    assert reply.choices[0].finish_reason == "stop" and reply.model == "policies"

    stream = client.chat.completions.create(
        model="default",
        stream=True,
        messages=[
            {"role": "user", "content": "Tell me about the courtesy car"},
            {"role": "assistant", "content": "Comprehensive customers get one [1]."},
            {"role": "user", "content": "For how many days?"},
        ],
    )
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    text = "".join(pieces)
    assert "14 days" in text and "Sources:" in text and len(pieces) >= 2

    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-collection", messages=[{"role": "user", "content": "hi?"}])
    bad = openai.OpenAI(base_url=f"{base}/v1", api_key="aiw_nope_nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="policies", messages=[{"role": "user", "content": "hi?"}])
