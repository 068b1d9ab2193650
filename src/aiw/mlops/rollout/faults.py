"""A deliberately faulty model, to show (and test, and benchmark) that a bad canary is caught.

:class:`FaultyClassifier` wraps a fitted classifier and raises on a fixed share of rows, chosen
by a hash of one feature's value (so the same row always fails, like a real bug triggered by
certain inputs), and can add a delay per call (a latency regression). It is an ordinary
scikit-learn estimator saved with skops, registered and governed like any other version:
:func:`log_faulty_model` logs it to MLflow, trusting exactly its own type besides the wrapped
model's.
"""

from __future__ import annotations

import time
import zlib
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from aiw.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

    from aiw.mlops.tracking import LoggedModel
    from aiw.workspace import Workspace

__all__ = ["FaultyClassifier", "log_faulty_model"]


class FaultyClassifier(ClassifierMixin, BaseEstimator):
    """A classifier that fails on a deterministic share of rows, and may be slow.

    Args:
        estimator: The fitted classifier whose answers it gives when it does not fail.
        failure_rate: Share of distinct ``key`` values whose rows raise, in [0, 1].
        key: The feature whose value decides (CRC32 of its text, in parts per 10,000).
        delay_ms: Milliseconds slept on every call.
    """

    def __init__(
        self, estimator: Any = None, failure_rate: float = 0.1, key: str = "amount", delay_ms: float = 0.0
    ) -> None:
        self.estimator = estimator
        self.failure_rate = failure_rate
        self.key = key
        self.delay_ms = delay_ms

    def fit(self, X: Any, y: Any) -> FaultyClassifier:
        """Fit the wrapped classifier (when it is not fitted already) and take its classes."""
        if not 0 <= self.failure_rate <= 1:
            raise InvalidInputError(
                f"The 'failure_rate' parameter of FaultyClassifier must be a float in [0, 1]. "
                f"Got {self.failure_rate} instead."
            )
        if self.estimator is None:
            raise InvalidInputError("The 'estimator' parameter of FaultyClassifier must be a classifier. Got None.")
        if not hasattr(self.estimator, "classes_"):
            self.estimator.fit(X, y)
        self.classes_ = np.asarray(self.estimator.classes_)
        return self

    def failing(self, X: pd.DataFrame) -> np.ndarray:
        """Which rows of ``X`` this model fails on."""
        if self.key not in X.columns:
            raise InvalidInputError(f"FaultyClassifier needs the column {self.key!r}.")
        cut = round(self.failure_rate * 10_000)
        values = X[self.key].to_numpy()
        return np.fromiter(
            ((zlib.crc32(repr(float(v)).encode()) % 10_000) < cut for v in values), dtype=bool, count=len(values)
        )

    def _check(self, X: pd.DataFrame) -> None:
        if self.delay_ms:
            time.sleep(self.delay_ms / 1000.0)
        bad = self.failing(X)
        if bad.any():
            raise RuntimeError(f"injected failure on {int(bad.sum())} of {len(bad)} rows")

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """The wrapped classifier's probabilities, or an error if any row is a failing one."""
        self._check(X)
        return np.asarray(self.estimator.predict_proba(X))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The wrapped classifier's labels, or an error if any row is a failing one."""
        self._check(X)
        return np.asarray(self.estimator.predict(X))


def log_faulty_model(
    workspace: Workspace,
    estimator: Any,
    X: pd.DataFrame,
    y: Any,
    *,
    name: str,
    failure_rate: float = 0.1,
    delay_ms: float = 0.0,
) -> LoggedModel:
    """Wrap a fitted classifier in :class:`FaultyClassifier` and log it to MLflow.

    The verification and example rows are taken among the rows that do not fail (MLflow and
    the serving layer score them), and the logged metrics are those of the wrapped model on
    them, so the version passes the registry's metric gates like the model it wraps.

    Args:
        workspace: The workspace.
        estimator: A fitted classifier taking a DataFrame (e.g. the fraud pipeline).
        X: Held-out rows.
        y: Their labels.
        name: The model name to log under.
        failure_rate: Share of rows that fail.
        delay_ms: Delay per call.
    """
    import skops.io

    from aiw.mlops.tracking import Tracker
    from aiw.mlops.training import evaluate_classifier

    model = FaultyClassifier(estimator, failure_rate=failure_rate, delay_ms=delay_ms).fit(X, y)
    ok = ~model.failing(X)
    if ok.sum() < 20:
        raise InvalidInputError("Fewer than 20 of the given rows do not fail; pass more rows or a lower rate.")
    X_ok = X[ok].reset_index(drop=True)
    y_ok = np.asarray(y)[ok]
    metrics, _ = evaluate_classifier(estimator, X_ok, y_ok)
    trusted = sorted(skops.io.get_untrusted_types(data=skops.io.dumps(model)))
    return Tracker(workspace).log_model(
        model,
        name,
        X_ok,
        y_sample=y_ok.tolist(),
        metrics={k: v for k, v in metrics.items() if v == v},
        params={"failure_rate": failure_rate, "delay_ms": delay_ms, "wraps": type(estimator).__name__},
        trusted_types=trusted,
        run_name=f"faulty-{name}",
    )
