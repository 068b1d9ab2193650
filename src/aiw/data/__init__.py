"""The data capability: the insurer's sample data (and, later, dbt builds and quality gates).

Imports are lazy: ``import aiw.data`` stays cheap, numpy and pyarrow load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiw.data.sample import SampleDocument, SampleSummary, generate, sample_documents

__all__ = ["SampleDocument", "SampleSummary", "generate", "sample_documents"]

_LAZY = dict.fromkeys(__all__, "aiw.data.sample")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'aiw.data' has no attribute {name!r}")
