"""The only place where platform errors become HTTP responses, all in one JSON shape::

    {"error": {"type": "not_found", "message": "...", "hint": "...", "status": 404}}

The shape is also what OpenAI clients expect (``error.message``, ``error.type``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from aiw.errors import (
    AiwError,
    AuthError,
    ConfigError,
    ConflictError,
    IntegrityError,
    InvalidInputError,
    ModelError,
    NotFoundError,
    PermanentBackendError,
    PipelineError,
    PolicyViolation,
    RolloutError,
    TransientBackendError,
)

__all__ = ["STATUS", "error_body", "install_error_handlers"]

STATUS: dict[type[AiwError], tuple[int, str]] = {
    InvalidInputError: (422, "invalid_input"),
    NotFoundError: (404, "not_found"),
    ConflictError: (409, "conflict"),
    AuthError: (401, "unauthenticated"),
    PolicyViolation: (403, "forbidden"),
    IntegrityError: (409, "integrity_error"),
    RolloutError: (409, "rollout_error"),
    PipelineError: (500, "pipeline_error"),
    ModelError: (500, "model_error"),
    TransientBackendError: (503, "backend_unavailable"),
    PermanentBackendError: (502, "backend_error"),
    ConfigError: (500, "config_error"),
}
"""HTTP status and error type per platform error (most specific class wins)."""


def error_body(status: int, kind: str, message: str, hint: str | None = None, **extra: Any) -> dict[str, Any]:
    """The one error JSON shape."""
    body: dict[str, Any] = {"type": kind, "message": message, "status": status}
    if hint:
        body["hint"] = hint
    body.update(extra)
    return {"error": body}


def _status_of(exc: AiwError) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500, "error"


async def _aiw_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AiwError)
    status, kind = _status_of(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    body = error_body(status, kind, exc.message, exc.hint, **exc.fields())
    return JSONResponse(body, status_code=status, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        problems.append(f"{where or 'body'}: {err.get('msg')}")
    message = "Invalid request: " + "; ".join(problems)
    hint = "see the schema at /docs"
    content_type = request.headers.get("content-type", "")
    body_error = any(tuple(err.get("loc", ()))[:1] == ("body",) for err in exc.errors())
    if body_error and request.method in ("POST", "PUT", "PATCH") and "json" not in content_type.lower():
        # curl -d sends a form by default: the JSON body was never parsed
        hint = (
            f"send the body as JSON with 'Content-Type: application/json' (got {content_type or 'none'!r}); "
            "see the schema at /docs"
        )
    return JSONResponse(error_body(422, "invalid_input", message, hint), status_code=422)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    kind = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(exc.status_code, "http_error")
    return JSONResponse(
        error_body(exc.status_code, kind, str(exc.detail)),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    # Never leak internals (paths, SQL, secrets) to the client; the server log has the traceback.
    return JSONResponse(
        error_body(500, "internal_error", f"Internal error ({type(exc).__name__})", "see the server log"),
        status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every error into the one JSON shape."""
    app.add_exception_handler(AiwError, _aiw_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
