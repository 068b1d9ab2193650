"""The REST API: ``create_app(settings)`` builds the FastAPI application."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute, APIRouter

from aiw.api.deps import _KeyCache, authorize, permission_of
from aiw.api.errors import install_error_handlers
from aiw.api.middleware import BodyLimitMiddleware, MetricsMiddleware
from aiw.errors import ConfigError
from aiw.settings import Settings

__all__ = ["ROUTERS", "create_app", "iter_routes"]

ROUTERS: list[str] = [
    "aiw.api.routes.system",
    "aiw.api.routes.governance",
    "aiw.api.routes.sql",
    "aiw.api.routes.rag",
    "aiw.api.routes.monitor",
    "aiw.api.routes.models",
    "aiw.api.routes.deployments",
]
"""Router modules, each exposing ``router``."""


def iter_routes(router: APIRouter) -> list[APIRoute]:
    """Every API route of ``router``, including those of routers it includes."""
    found: list[APIRoute] = []
    for route in router.routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif isinstance(getattr(route, "original_router", None), APIRouter):
            found += iter_routes(route.original_router)  # type: ignore[attr-defined]
    return found


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API over the workspace of ``settings`` (default: the process settings).

    Raises:
        ConfigError: a route was registered without a permission (deny by default).
    """
    from aiw import __version__
    from aiw.settings import load_settings
    from aiw.workspace import Workspace

    settings = settings or load_settings()
    workspace = Workspace(settings).ensure()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        for hook in getattr(app.state, "shutdown_hooks", []):
            hook()

    app = FastAPI(
        title="Enterprise AI Workflows",
        version=__version__,
        lifespan=lifespan,
        dependencies=[Depends(authorize)],
        description="Every route needs an API key (`Authorization: Bearer aiw_...`) "
        "whose role grants the route's `x-permission`.",
    )
    app.state.settings = settings
    app.state.workspace = workspace
    app.state.key_cache = _KeyCache()
    app.state.shutdown_hooks = []
    install_error_handlers(app)
    missing: list[str] = []
    for module in ROUTERS:
        router = importlib.import_module(module).router
        missing += [f"{sorted(r.methods or ())} {r.path}" for r in iter_routes(router) if permission_of(r) is None]
        app.include_router(router)
    if missing:
        raise ConfigError(
            f"Routes without a declared permission: {', '.join(missing)}",
            hint="add openapi_extra=requires('...') to each",
        )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.api.max_body_bytes)
    app.add_middleware(MetricsMiddleware)
    return app
