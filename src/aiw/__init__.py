"""Enterprise AI Workflows: AI in SQL, governed MLOps, document Q&A and a data platform.

The curated public API; capabilities live in subpackages (``aiw.sql``, ``aiw.rag``,
``aiw.mlops``, ``aiw.data``, ``aiw.features``, ``aiw.pipelines``, ``aiw.governance``).
Names are imported on first use, so ``import aiw`` (and ``aiw --help``) stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["AiwError", "Settings", "Workspace", "__version__", "build_settings", "load_settings"]

_LAZY = {
    "AiwError": "aiw.errors",
    "Settings": "aiw.settings",
    "build_settings": "aiw.settings",
    "load_settings": "aiw.settings",
    "Workspace": "aiw.workspace",
}

if TYPE_CHECKING:
    from aiw.errors import AiwError
    from aiw.settings import Settings, build_settings, load_settings
    from aiw.workspace import Workspace


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'aiw' has no attribute {name!r}")
