"""Helpers shared by the rollout tests (imported by name; the fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "POLICY",
    "Models",
    "People",
    "approve",
    "body",
    "drive",
    "make_workspace",
    "serving",
    "setup_model",
    "wait_for",
]

POLICY = {"*": {"approvals": 1, "gates": {"auc": ">=0.55"}}}


@dataclass(frozen=True)
class People:
    """Who acts in the tests."""

    ds: Any
    approver: Any
    admin: Any
    viewer: Any


@dataclass(frozen=True)
class Models:
    """What the session trained: the logged model, the faulty one, and traffic rows."""

    good: Any
    faulty: Any
    rows: list[dict[str, Any]]


def make_workspace(home: Path, **overrides: Any) -> Any:
    """An initialised workspace over ``home``, with the test approval policy, shielded from AIW_* vars."""
    from aiw.settings import build_settings
    from aiw.workspace import Workspace

    overrides.setdefault("policies", POLICY)
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("AIW_") and not k.startswith("AIW_TEST_")}
    try:
        settings = build_settings(home=home, **overrides)
    finally:
        os.environ.update(saved)
    return Workspace(settings).init()


def approve(ws: Any, name: str, version: int, people: People) -> int:
    """Request and approve ``version`` for production; returns the request id."""
    from aiw.mlops.registry import PromotionWorkflow

    wf = PromotionWorkflow(ws)
    request = wf.request(name, version, "production", people.ds, reason="test")
    wf.approve(request.id, people.approver, comment="ok")
    return int(request.id)


def setup_model(ws: Any, models: Models, people: People, name: str | None = None) -> str:
    """Register v1 (@champion), v2 (healthy, approved) and v3 (faulty, approved) under a fresh name."""
    from aiw.mlops.registry import ModelRegistry, PromotionWorkflow

    name = name or f"fraud-{secrets.token_hex(4)}"
    registry = ModelRegistry(ws)
    v1 = registry.register(models.good, name, people.ds).version
    approve(ws, name, v1, people)
    PromotionWorkflow(ws).promote(name, v1, "production", people.admin)
    for source in (models.good, models.faulty):
        v = registry.register(source, name, people.ds).version
        approve(ws, name, v, people)
    return name


def body(row: dict[str, Any]) -> bytes:
    """A one-row scoring request."""
    return json.dumps({"dataframe_records": [row]}).encode()


def wait_for(condition: Any, *, timeout: float = 60.0, every: float = 0.1) -> Any:
    """Poll ``condition()`` until it returns something truthy (returned) or fail after ``timeout``."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)


def serving(ws: Any) -> Any:
    """A ModelServer whose router is driven by hand (``server.rollouts.controller.tick()``)."""
    from aiw.mlops.rollout.router import RolloutRouter
    from aiw.mlops.serving.loader import ModelResolver
    from aiw.mlops.serving.server import ModelServer

    resolver = ModelResolver(ws)  # shared: models the router warms are the ones the server serves
    return ModelServer(ws, resolver=resolver, rollouts=RolloutRouter(ws, resolver, autostart=False, seed=1))


def drive(
    server: Any,
    name: str,
    rows: list[dict[str, Any]],
    principal: Any,
    *,
    until: Any,
    limit: float = 40.0,
    batch: int = 16,
) -> Counter[str]:
    """Send one-row requests, ``batch`` at a time, ticking the controller after each batch,
    until ``until()`` holds; returns counts per answering version and of failures."""
    counts: Counter[str] = Counter()

    async def one(row: dict[str, Any]) -> None:
        try:
            out = await server.predict(name, None, body(row), principal)
        except Exception:
            counts["failed"] += 1
            return
        counts[f"v{json.loads(out)['version']}"] += 1

    async def run() -> None:
        i = 0
        deadline = time.monotonic() + limit
        while not until() and time.monotonic() < deadline:
            await asyncio.gather(*(one(rows[(i + k) % len(rows)]) for k in range(batch)))
            i += batch
            server.rollouts.controller.tick()

    asyncio.run(run())
    return counts
