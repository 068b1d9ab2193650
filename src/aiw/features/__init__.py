"""The feature store: Feast over the dbt marts, point-in-time training sets and online lookups.

Imports are lazy: ``import aiw.features`` does not import Feast (about 8 s).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiw.features.online import MissingOnlineFeatures, OnlineFeatureReader
    from aiw.features.store import (
        FEATURE_SERVICE,
        ApplyResult,
        FeatureStoreService,
        MaterializeResult,
        get_online_features,
    )

__all__ = [
    "FEATURE_SERVICE",
    "ApplyResult",
    "FeatureStoreService",
    "MaterializeResult",
    "MissingOnlineFeatures",
    "OnlineFeatureReader",
    "get_online_features",
]

_ONLINE = {"MissingOnlineFeatures", "OnlineFeatureReader"}


def __getattr__(name: str) -> Any:
    if name in __all__:
        module = "aiw.features.online" if name in _ONLINE else "aiw.features.store"
        return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module 'aiw.features' has no attribute {name!r}")
