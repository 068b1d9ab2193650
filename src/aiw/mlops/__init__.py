"""MLOps: tracked training, a governed registry over MLflow, and serving.

* :mod:`aiw.mlops.tracking` and :mod:`aiw.mlops.training`: runs and models logged to MLflow;
* :mod:`aiw.mlops.registry`: versions with checksums and lineage, approvals, aliases, model cards;
* :mod:`aiw.mlops.serving`: the Predictor port, model loading, REST, batch, streaming and ONNX export.

The names below are imported on first use, so ``import aiw.mlops`` stays cheap.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

# MLflow draws a tqdm bar on stderr for every artifact it reads back (even one small file): noise
# in CLI output and logs. A user who wants it sets the variable explicitly.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

__all__ = [
    "ModelRegistry",
    "ModelResolver",
    "PromotionWorkflow",
    "Tracker",
    "log_model",
    "train_claims_fraud",
]

_LAZY = {
    "Tracker": "aiw.mlops.tracking",
    "log_model": "aiw.mlops.tracking",
    "train_claims_fraud": "aiw.mlops.training",
    "ModelRegistry": "aiw.mlops.registry",
    "PromotionWorkflow": "aiw.mlops.registry",
    "ModelResolver": "aiw.mlops.serving",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aiw.mlops' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
