"""Helpers shared by the MLOps tests (imported by name; the fixtures live in conftest.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiw.testing.fraud import FRAUD_ROW

__all__ = ["DEFAULT_POLICY", "SAMPLE_ROW", "People", "auth", "make_workspace", "promote", "register"]

SAMPLE_ROW: dict[str, Any] = FRAUD_ROW
"""One valid input row of the fraud model."""

DEFAULT_POLICY: dict[str, Any] = {"*": {"approvals": 1, "gates": {"auc": ">=0.55"}}}


@dataclass(frozen=True)
class People:
    """The identities the tests act as."""

    ds: Any
    ds2: Any
    approver: Any
    approver2: Any
    admin: Any
    viewer: Any


def make_workspace(home: Path, **overrides: Any) -> Any:
    """An initialised Workspace over ``home``; the default test policy unless ``policies`` is given.

    AIW_* variables of the developer's shell are hidden while the settings are built, so they
    cannot leak into the session workspace.
    """
    from aiw.settings import build_settings
    from aiw.workspace import Workspace

    overrides.setdefault("policies", DEFAULT_POLICY)
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("AIW_") and not k.startswith("AIW_TEST_")}
    try:
        settings = build_settings(home=home, **overrides)
    finally:
        os.environ.update(saved)
    return Workspace(settings).init()


def register(ws: Any, trained: Any, name: str, who: Any, **kwargs: Any) -> Any:
    """Register the session's logged model as a new version of ``name``."""
    from aiw.mlops.registry import ModelRegistry

    return ModelRegistry(ws).register(trained.logged, name, who, **kwargs)


def promote(ws: Any, name: str, version: int, people: People, target: str = "production") -> Any:
    """Request (data scientist), approve (approver) and promote (admin) one version."""
    from aiw.mlops.registry import PromotionWorkflow

    wf = PromotionWorkflow(ws)
    request = wf.request(name, version, target, people.ds, reason="test")
    wf.approve(request.id, people.approver, comment="looks fine")
    return wf.promote(name, version, target, people.admin)


def auth(key: str) -> dict[str, str]:
    """The header that presents ``key``."""
    return {"Authorization": f"Bearer {key}"}
