"""Prometheus metrics of model serving, per model and version.

``aiw_model_requests_total``, ``aiw_model_errors_total``, ``aiw_model_rows_total``,
``aiw_model_latency_seconds`` (histogram), ``aiw_model_predictions_total`` (rows per predicted
label) and ``aiw_model_score`` (histogram of the positive-class probability of binary classifiers,
at most 256 rows per request): together, the prediction distribution a dashboard or alert watches.
They live in the default registry, which ``/metrics`` exposes.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

import numpy as np

__all__ = ["ServingMetrics", "serving_metrics"]

_SCORE_ROWS = 256  # observing every row of a 10,000-row batch would cost more than scoring it


class ServingMetrics:
    """The serving metric families, with per-(model, version) children cached (label lookups cost)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self.requests = Counter(
            "aiw_model_requests_total",
            "Scoring requests by model, version and outcome",
            ["model", "version", "outcome"],
        )
        self.errors = Counter(
            "aiw_model_errors_total", "Refused or failed scoring requests by kind", ["model", "version", "kind"]
        )
        self.rows = Counter("aiw_model_rows_total", "Rows scored", ["model", "version"])
        self.latency = Histogram(
            "aiw_model_latency_seconds",
            "Time to parse, check and score one request",
            ["model", "version"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.predictions = Counter(
            "aiw_model_predictions_total", "Rows per predicted label", ["model", "version", "label"]
        )
        self.score = Histogram(
            "aiw_model_score",
            "Positive-class probability of binary classifiers",
            ["model", "version"],
            buckets=tuple(np.round(np.linspace(0.1, 1.0, 10), 2)),
        )
        self._lock = threading.Lock()
        self._children: dict[tuple[str, str], tuple[Any, Any, Any, Any]] = {}

    def _for(self, model: str, version: str) -> tuple[Any, Any, Any, Any]:
        key = (model, version)
        found = self._children.get(key)
        if found is None:
            with self._lock:
                found = (
                    self.requests.labels(model, version, "ok"),
                    self.rows.labels(model, version),
                    self.latency.labels(model, version),
                    self.score.labels(model, version),
                )
                self._children[key] = found
        return found

    def observe(self, model: str, version: int, seconds: float, labels: np.ndarray, score: np.ndarray | None) -> None:
        """Count one successful request."""
        v = str(version)
        ok, rows, latency, hist = self._for(model, v)
        ok.inc()
        rows.inc(len(labels))
        latency.observe(seconds)
        if len(labels) == 1:
            self.predictions.labels(model, v, str(labels[0])).inc()
        else:
            values, counts = np.unique(labels.astype(str), return_counts=True)
            for value, count in zip(values.tolist(), counts.tolist(), strict=True):
                self.predictions.labels(model, v, value).inc(count)
        if score is not None:
            for s in score[:_SCORE_ROWS].tolist():
                hist.observe(s)

    def error(self, model: str, version: int | None, kind: str) -> None:
        """Count one refused or failed request (``invalid_input``, ``not_found``, ``integrity`` ...)."""
        v = "" if version is None else str(version)
        self.requests.labels(model, v, "error").inc()
        self.errors.labels(model, v, kind).inc()


@lru_cache(maxsize=1)
def serving_metrics() -> ServingMetrics:
    """The process's serving metrics (created once: Prometheus refuses duplicate families)."""
    return ServingMetrics()
