"""ASGI middleware: request metrics for Prometheus and a request body size limit."""

from __future__ import annotations

import json
import time
from functools import lru_cache
from typing import Any

from aiw.api.errors import error_body

__all__ = ["BodyLimitMiddleware", "MetricsMiddleware", "http_metrics"]


@lru_cache(maxsize=1)
def http_metrics() -> tuple[Any, Any]:
    """The request counter and latency histogram, created once per process."""
    from prometheus_client import Counter, Histogram

    requests = Counter(
        "aiw_http_requests_total", "HTTP requests by route, method and status", ["route", "method", "status"]
    )
    latency = Histogram(
        "aiw_http_request_duration_seconds",
        "HTTP request latency by route and status",
        ["route", "method", "status"],
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    )
    return requests, latency


class MetricsMiddleware:
    """Counts requests and times them, labelled by the route template (never the raw path)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests, self.latency = http_metrics()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def _send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            labels = (template, scope.get("method", ""), str(status["code"]))
            self.requests.labels(*labels).inc()
            self.latency.labels(*labels).observe(time.perf_counter() - started)


class BodyLimitMiddleware:
    """Refuses request bodies larger than ``max_bytes`` with 413, before they are read whole."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _too_large(self, send: Any) -> None:
        body = json.dumps(
            error_body(
                413,
                "payload_too_large",
                f"The request body is larger than {self.max_bytes} bytes",
                "send smaller batches or raise AIW_API__MAX_BODY_BYTES",
            )
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._too_large(send)
                return
        seen = 0

        async def _receive() -> dict[str, Any]:
            nonlocal seen
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, _receive, send)
        except _BodyTooLarge:
            await self._too_large(send)


class _BodyTooLarge(Exception):
    pass
