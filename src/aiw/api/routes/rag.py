"""Document Q&A: ingest, query (JSON or server-sent events) and an OpenAI-compatible chat endpoint.

``POST /v1/chat/completions`` speaks the OpenAI chat completions protocol, so the official
``openai`` client works unchanged: the ``model`` names the collection (``default`` for
``rag.collection``), the last user message is the question and earlier messages are the
conversation it is condensed with. The reply's content is the cited answer followed by its
sources; the structured citations ride along in an extra ``citations`` field.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from aiw.api.deps import CurrentPrincipal, WorkspaceDep, requires
from aiw.errors import AiwError, InvalidInputError
from aiw.rag.service import AskResult, RagService

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["rag"])

_LOCK = threading.Lock()


def get_rag(request: Request, ws: WorkspaceDep) -> RagService:
    """One :class:`RagService` per app (the models load once)."""
    service: RagService | None = getattr(request.app.state, "rag_service", None)
    if service is None:
        with _LOCK:
            service = getattr(request.app.state, "rag_service", None)
            if service is None:
                service = RagService(ws, ws.settings)
                request.app.state.rag_service = service
    return service


RagDep = Annotated[RagService, Depends(get_rag)]


class Turn(BaseModel):
    """One earlier message of a conversation."""

    role: Literal["user", "assistant"]
    content: str = Field(max_length=20_000)


class IngestRequest(BaseModel):
    """Files or folders to ingest, inside the allowed roots (default: the workspace documents folder)."""

    paths: list[str] = Field(min_length=1, max_length=1000)
    collection: str | None = Field(None, min_length=3, max_length=63)


class QueryRequest(BaseModel):
    """A question to answer from a collection."""

    question: str = Field(min_length=1, max_length=10_000)
    collection: str | None = Field(None, min_length=3, max_length=63)
    top_k: int | None = Field(None, ge=1, le=100)
    filters: dict[str, str | int | float | bool | list[str | int | float | bool]] | None = None
    history: list[Turn] = Field(default_factory=list, max_length=50)
    mode: Literal["hybrid", "bm25", "vector"] = "hybrid"
    stream: bool = Field(False, description="Answer as server-sent events (delta events, then answer).")


class ChatMessage(BaseModel):
    """An OpenAI chat message (string content, or a list of text parts)."""

    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The message's text."""
        if isinstance(self.content, list):
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type", "text") == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    """The OpenAI chat completions request (fields we do not use are accepted and ignored)."""

    model: str = Field(min_length=1, max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=100)
    stream: bool = False
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    user: str | None = None

    model_config = {"extra": "allow"}


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@router.post("/rag/ingest", openapi_extra=requires("rag:write"))
def rag_ingest(body: IngestRequest, rag: RagDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Ingest documents incrementally (audited)."""
    return rag.ingest(body.paths, collection=body.collection, actor=principal.name, confined=True).as_dict()


@router.post("/rag/query", openapi_extra=requires("rag:query"), response_model=None)
def rag_query(body: QueryRequest, rag: RagDep, principal: CurrentPrincipal) -> dict[str, Any] | StreamingResponse:
    """Answer with citations and the retrieved chunks with their scores; ``stream`` for SSE."""
    history = [t.model_dump() for t in body.history]
    kwargs: dict[str, Any] = {
        "collection": body.collection,
        "top_k": body.top_k,
        "filters": body.filters,
        "role": principal.role,
        "history": history,
        "mode": body.mode,
    }
    if not body.stream:
        return rag.ask(body.question, **kwargs).as_dict()
    pieces = rag.ask_stream(body.question, **kwargs)

    def events() -> Iterator[str]:
        try:
            for item in pieces:
                if isinstance(item, AskResult):
                    yield _sse("answer", item.as_dict())
                else:
                    yield _sse("delta", {"text": item})
        except AiwError as exc:
            yield _sse("error", {"type": type(exc).__name__, "message": exc.message})
        yield _sse("done", {})

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _with_sources(result: AskResult) -> str:
    if not result.answer.citations:
        return result.answer.text
    return result.answer.text + "\n\nSources:\n" + "\n".join(c.label() for c in result.answer.citations)


@router.post("/chat/completions", openapi_extra=requires("rag:query"), response_model=None)
def chat_completions(body: ChatRequest, rag: RagDep, principal: CurrentPrincipal) -> dict[str, Any] | StreamingResponse:
    """OpenAI-compatible chat over a collection (``model`` = collection name, or ``default``)."""
    turns = [(m.role, m.text()) for m in body.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1][0] != "user" or not turns[-1][1].strip():
        raise InvalidInputError("The last message must be a non-empty user message (the question).")
    question = turns[-1][1]
    history = [{"role": r, "content": c} for r, c in turns[:-1]]
    collection = None if body.model in ("default", "aiw") else body.model
    kwargs: dict[str, Any] = {"collection": collection, "role": principal.role, "history": history}
    ident = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    if not body.stream:
        result = rag.ask(question, **kwargs)
        return {
            "id": ident,
            "object": "chat.completion",
            "created": created,
            "model": body.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": _with_sources(result)},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            "citations": [c.as_dict() for c in result.answer.citations],
        }
    pieces = rag.ask_stream(question, **kwargs)

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        payload = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": body.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    def events() -> Iterator[str]:
        yield chunk({"role": "assistant", "content": ""})
        try:
            for item in pieces:
                if isinstance(item, AskResult):
                    tail = _with_sources(item)[len(item.answer.text) :]
                    if tail:
                        yield chunk({"content": tail})
                    yield chunk({}, "stop", citations=[c.as_dict() for c in item.answer.citations])
                else:
                    yield chunk({"content": item})
        except AiwError as exc:
            yield f"data: {json.dumps({'error': {'message': exc.message, 'type': type(exc).__name__}})}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
