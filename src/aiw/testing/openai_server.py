"""A real local HTTP server that speaks the OpenAI chat completions protocol, for tests.

It answers ``POST .../chat/completions`` (plain JSON, or server-sent events when the request says
``"stream": true``) and ``GET .../models``, on 127.0.0.1 at a free port, from a thread. What it
answers is decided by a *responder*: a function of the :class:`ChatRequest` returning a
:class:`Reply` (or just the answer text). Replies can fail with any HTTP status, carry headers
such as ``Retry-After``, stall (to provoke client timeouts) or stream in chosen chunks. The server
records every request and the highest number of requests it was handling at once.

Example::

    with serve_openai(scripted(Reply(status=429, headers={"Retry-After": "0"}), then=echo)) as base_url:
        llm = OpenAICompatibleLLM(LLMSettings(base_url=base_url, model="fake"))
        llm.chat([{"role": "user", "content": "hi"}])   # retried once, then "echo: hi"
        base_url.server.request_count                  # 2
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "BaseURL",
    "ChatRequest",
    "OpenAIServer",
    "Reply",
    "Responder",
    "echo",
    "scripted",
    "serve_openai",
]


@dataclass(frozen=True)
class ChatRequest:
    """One request the server received.

    Attributes:
        index: 0 for the first request the server received, then 1, 2 ...
        path: The request path, e.g. ``/v1/chat/completions``.
        headers: Request headers, names lower-cased.
        body: The parsed JSON body (``{}`` when it was not JSON).
    """

    index: int
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The ``messages`` of the body."""
        value = self.body.get("messages")
        return value if isinstance(value, list) else []

    @property
    def last_user(self) -> str:
        """Content of the last user message ('' when there is none)."""
        for message in reversed(self.messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return str(message.get("content", ""))
        return ""

    @property
    def system(self) -> str | None:
        """Content of the first system message, if any."""
        for message in self.messages:
            if isinstance(message, dict) and message.get("role") == "system":
                return str(message.get("content", ""))
        return None

    @property
    def stream(self) -> bool:
        """Whether the client asked for server-sent events."""
        return bool(self.body.get("stream"))


@dataclass
class Reply:
    """What the server answers to one request.

    Attributes:
        content: The assistant message (for a 2xx status).
        status: HTTP status; >= 400 sends an OpenAI-style error body with ``error_message``.
        headers: Extra response headers (e.g. ``{"Retry-After": "1"}``).
        delay_s: Seconds to wait before answering (to provoke client timeouts).
        chunks: For streaming, the content pieces to send (default: word by word).
        chunk_delay_s: Seconds between streamed chunks.
        error_message: The error text of a failing status.
        raw_body: Bytes sent verbatim instead of the generated body (malformed-answer tests).
    """

    content: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    chunks: list[str] | None = None
    chunk_delay_s: float = 0.0
    error_message: str = "simulated failure"
    raw_body: bytes | None = None


Responder = Callable[[ChatRequest], "Reply | str"]
"""Decides the reply to a request; returning a string means ``Reply(content=that)``."""


def echo(request: ChatRequest) -> Reply:
    """The default responder: ``"echo: <last user message>"``."""
    return Reply(content=f"echo: {request.last_user}")


def scripted(*replies: Reply | str, then: Responder = echo) -> Responder:
    """A responder giving ``replies`` to the first requests in arrival order, then ``then``."""
    queue = list(replies)
    lock = threading.Lock()

    def respond(request: ChatRequest) -> Reply | str:
        with lock:
            reply = queue.pop(0) if queue else None
        return then(request) if reply is None else reply

    return respond


class BaseURL(str):
    """The server's base URL (``http://127.0.0.1:PORT/v1``), with the server at ``.server``."""

    server: OpenAIServer

    def __new__(cls, value: str, server: OpenAIServer) -> BaseURL:
        url = super().__new__(cls, value)
        url.server = server
        return url


class OpenAIServer:
    """The fake server. Use :func:`serve_openai`, or ``start()``/``stop()`` (or ``with``).

    Args:
        responder: Decides each reply (default :func:`echo`).
        model: Model name reported in answers and by ``GET /v1/models``.
    """

    def __init__(self, responder: Responder | None = None, *, model: str = "fake-model") -> None:
        self.responder: Responder = responder or echo
        self.model = model
        self.requests: list[ChatRequest] = []
        """Every chat request received, in arrival order."""
        self.in_flight = 0
        self.max_in_flight = 0
        """The most chat requests being handled at the same moment."""
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def request_count(self) -> int:
        """Chat requests received so far."""
        with self._lock:
            return len(self.requests)

    @property
    def base_url(self) -> BaseURL:
        """``http://127.0.0.1:PORT/v1`` (the server must be started)."""
        if self._httpd is None:
            raise RuntimeError("The fake OpenAI server is not started; call start() first.")
        host, port = self._httpd.server_address[:2]
        return BaseURL(f"http://{host!s}:{port}/v1", self)

    def start(self) -> OpenAIServer:
        """Listen on 127.0.0.1 at a free port, serving from a daemon thread."""
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        # A short poll interval makes stop() quick (the default waits up to half a second).
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _begin(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> ChatRequest:
        with self._lock:
            request = ChatRequest(len(self.requests), path, headers, body)
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return request

    def _end(self) -> None:
        with self._lock:
            self.in_flight -= 1


class _Handler(BaseHTTPRequestHandler):
    fake: OpenAIServer
    protocol_version = "HTTP/1.0"  # one request per connection; SSE bodies end when the socket closes

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self._release()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._send_json(200, {"object": "list", "data": [{"id": self.fake.model, "object": "model"}]})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            body = {}
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = self.fake._begin(self.path, headers, body if isinstance(body, dict) else {})
        self._counted = True
        try:
            reply = self.fake.responder(request)
            if isinstance(reply, str):
                reply = Reply(content=reply)
            if reply.delay_s:
                time.sleep(reply.delay_s)
            self._answer(request, reply)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. its timeout fired): nothing left to answer
        finally:
            self._release()

    def _release(self) -> None:
        """Stop counting this request as in flight (once), just before its last bytes are sent.

        Released any later, a client could have read the whole answer and sent its next request
        while the server still counted this one, overstating the concurrency.
        """
        if getattr(self, "_counted", False):
            self._counted = False
            self.fake._end()

    def _answer(self, request: ChatRequest, reply: Reply) -> None:
        if reply.raw_body is not None:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply.raw_body)))
            self.end_headers()
            self._release()
            self.wfile.write(reply.raw_body)
            return
        if reply.status >= 400:
            self._send_json(
                reply.status,
                {"error": {"message": reply.error_message, "type": "fake_error", "code": reply.status}},
                reply.headers,
            )
            return
        ident = f"chatcmpl-fake-{request.index}"
        created = int(time.time())
        model = str(request.body.get("model") or self.fake.model)
        if not request.stream:
            self._send_json(
                reply.status,
                {
                    "id": ident,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": reply.content},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 0, "completion_tokens": len(reply.content.split()), "total_tokens": 0},
                },
                reply.headers,
            )
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        chunks = reply.chunks if reply.chunks is not None else _words(reply.content)

        def event(delta: dict[str, Any], finish: str | None = None) -> None:
            payload = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
            self.wfile.flush()

        event({"role": "assistant", "content": ""})
        for piece in chunks:
            if reply.chunk_delay_s:
                time.sleep(reply.chunk_delay_s)
            event({"content": piece})
        event({}, "stop")
        self._release()
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


def _words(text: str) -> list[str]:
    """``text`` split into chunks that concatenate back to it (each word with its trailing space)."""
    out: list[str] = []
    current = ""
    for ch in text:
        current += ch
        if ch == " ":
            out.append(current)
            current = ""
    if current:
        out.append(current)
    return out


@contextmanager
def serve_openai(responder: Responder | None = None, *, model: str = "fake-model") -> Iterator[BaseURL]:
    """Run a fake OpenAI-compatible server for the ``with`` block; yields its base URL.

    The yielded :class:`BaseURL` is a plain string (``http://127.0.0.1:PORT/v1``) that also carries
    the server at ``.server`` (``requests``, ``request_count``, ``max_in_flight``).
    """
    server = OpenAIServer(responder, model=model).start()
    try:
        yield server.base_url
    finally:
        server.stop()
