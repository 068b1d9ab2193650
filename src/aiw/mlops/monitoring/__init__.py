"""Monitoring: data, embedding, prediction and performance drift, and alerts.

* :mod:`.drift` - :class:`DataDriftDetector` (``fit(reference)`` -> ``score(current)``), with
  Evidently-compatible methods and a JSON :class:`ReferenceProfile`.
* :mod:`.embedding` - :class:`EmbeddingDriftDetector` for vector columns and the RAG corpus.
* :mod:`.traffic` - served traffic (``record_predictions``, ``attach_labels``) and prediction /
  performance drift over windows of it.
* :mod:`.alerts` - alert rules, the log / dashboard / signed-webhook sinks, and the durable outbox.
* :mod:`.service` - what the CLI, API and dashboard call: run a drift check end to end.

Names are imported lazily, so importing this package costs nothing until one is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Alert",
    "AlertManager",
    "AlertRule",
    "DataDriftDetector",
    "DriftReport",
    "EmbeddingDriftDetector",
    "EmbeddingDriftReport",
    "OutboxWorker",
    "ReferenceProfile",
    "TrafficRecord",
    "attach_labels",
    "check_webhook_url",
    "performance_drift",
    "prediction_drift",
    "record_predictions",
]

_WHERE = {
    "DataDriftDetector": "drift",
    "DriftReport": "drift",
    "ReferenceProfile": "drift",
    "EmbeddingDriftDetector": "embedding",
    "EmbeddingDriftReport": "embedding",
    "TrafficRecord": "traffic",
    "record_predictions": "traffic",
    "attach_labels": "traffic",
    "prediction_drift": "traffic",
    "performance_drift": "traffic",
    "Alert": "alerts",
    "AlertRule": "alerts",
    "AlertManager": "alerts",
    "OutboxWorker": "alerts",
    "check_webhook_url": "alerts",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
