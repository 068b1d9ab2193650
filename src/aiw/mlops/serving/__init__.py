"""Serving governed models: the Predictor port, model loading, REST, batch, streaming, edge.

Light names are exported here; the batch engines (:mod:`aiw.mlops.serving.batch`), streaming
(:mod:`aiw.mlops.serving.stream`) and edge export (:mod:`aiw.mlops.serving.edge`) are imported
from their modules.
"""

from __future__ import annotations

from aiw.mlops.serving.inputs import FORMATS, ColumnBatch, InputSchema, parse_payload, rows_to_batch
from aiw.mlops.serving.loader import LoadedModel, ModelResolver, load_model_version
from aiw.mlops.serving.predictor import OnnxPredictor, Prediction, Predictor, SklearnPredictor
from aiw.mlops.serving.server import ModelServer, PayloadTooLarge
from aiw.mlops.serving.traffic import TrafficRecorder

__all__ = [
    "FORMATS",
    "ColumnBatch",
    "InputSchema",
    "LoadedModel",
    "ModelResolver",
    "ModelServer",
    "OnnxPredictor",
    "PayloadTooLarge",
    "Prediction",
    "Predictor",
    "SklearnPredictor",
    "TrafficRecorder",
    "load_model_version",
    "parse_payload",
    "rows_to_batch",
]
