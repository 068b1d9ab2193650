"""Enterprise AI Workflows: AI in SQL, governed MLOps, document Q&A and a data platform.

The curated public API; capabilities live in subpackages (``aiw.sql``, ``aiw.rag``,
``aiw.mlops``, ``aiw.data``, ``aiw.features``, ``aiw.pipelines``, ``aiw.governance``).
"""

from __future__ import annotations

__version__ = "0.1.0"

from aiw.errors import AiwError
from aiw.settings import Settings, build_settings, load_settings
from aiw.workspace import Workspace

__all__ = ["AiwError", "Settings", "Workspace", "__version__", "build_settings", "load_settings"]
