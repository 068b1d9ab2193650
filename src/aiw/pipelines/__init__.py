"""Named pipelines (daily-validation, training, embedding-refresh): DAGs of steps run in-process on
graphlib and tenacity, scheduled with APScheduler, and exportable as Prefect flows.

Imports are lazy: ``import aiw.pipelines`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiw.pipelines.dag import Pipeline, SkipStep, Step, StepContext
    from aiw.pipelines.definitions import PIPELINES, get_pipeline
    from aiw.pipelines.embedding_refresh import EmbeddingRefresher, RefreshReport
    from aiw.pipelines.runner import PipelineRun, PipelineRunner, StepRun

_LAZY = {
    "Pipeline": "aiw.pipelines.dag",
    "SkipStep": "aiw.pipelines.dag",
    "Step": "aiw.pipelines.dag",
    "StepContext": "aiw.pipelines.dag",
    "PIPELINES": "aiw.pipelines.definitions",
    "get_pipeline": "aiw.pipelines.definitions",
    "EmbeddingRefresher": "aiw.pipelines.embedding_refresh",
    "RefreshReport": "aiw.pipelines.embedding_refresh",
    "PipelineRun": "aiw.pipelines.runner",
    "PipelineRunner": "aiw.pipelines.runner",
    "StepRun": "aiw.pipelines.runner",
}
__all__ = [
    "PIPELINES",
    "EmbeddingRefresher",
    "Pipeline",
    "PipelineRun",
    "PipelineRunner",
    "RefreshReport",
    "SkipStep",
    "Step",
    "StepContext",
    "StepRun",
    "get_pipeline",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'aiw.pipelines' has no attribute {name!r}")
