"""The Predictor port and its two runtimes: the scikit-learn model itself, and ONNX Runtime.

A :class:`Predictor` turns a validated :class:`~aiw.mlops.serving.inputs.ColumnBatch` into a
:class:`Prediction`. Everything that scores (REST, batch, streaming, the rollout router) goes
through this port, so a canary or shadow deployment only needs two predictors.

The scikit-learn runtime is exact and handles any model. A pipeline call costs about 2.5 ms even
for one row (pandas, column transformer, per-tree calls), which caps one core at ~400 requests/s;
the ONNX runtime answers the same one-row request in ~15 us. It is used only when it *reproduces*
the model: at load, both runtimes score the model's held-out verification rows (logged with the
model, covered by its checksums) and ONNX is kept only if every label agrees and no probability
differs by more than ``serving.onnx_tolerance``. Otherwise the model itself serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from aiw.errors import InvalidInputError
from aiw.mlops.serving.inputs import ColumnBatch, InputSchema

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ARGMAX_CLASSIFIERS",
    "OnnxPredictor",
    "Prediction",
    "Predictor",
    "SklearnPredictor",
    "VerificationReport",
    "convert_to_onnx",
    "verify_runtime",
]

#: Classifiers whose predict() is, by construction, classes_[argmax(predict_proba())]: for them one
# predict_proba call gives both answers (half the work).
ARGMAX_CLASSIFIERS = frozenset(
    {
        "HistGradientBoostingClassifier",
        "GradientBoostingClassifier",
        "RandomForestClassifier",
        "ExtraTreesClassifier",
        "DecisionTreeClassifier",
        "ExtraTreeClassifier",
        "LogisticRegression",
        "KNeighborsClassifier",
        "GaussianNB",
        "MLPClassifier",
    }
)


@dataclass(frozen=True)
class Prediction:
    """What a predictor answers for a batch.

    Attributes:
        predictions: One label (classifier) or value (regressor) per row.
        probabilities: Rows x classes, for classifiers with probabilities; else None.
        classes: The class labels, in the column order of ``probabilities``.
    """

    predictions: np.ndarray
    probabilities: np.ndarray | None
    classes: tuple[Any, ...] = ()

    @property
    def score(self) -> np.ndarray | None:
        """The positive-class probability of a binary classifier (else None)."""
        if self.probabilities is None or self.probabilities.shape[1] != 2:
            return None
        return self.probabilities[:, 1]


@runtime_checkable
class Predictor(Protocol):
    """Scores validated input batches for one model version.

    Contract:
        * ``predict`` is pure: the same batch gives the same prediction; it never mutates the batch.
        * It is safe to call from several threads at once.
        * ``schema`` names the columns a batch must hold; batches are validated before they reach
          ``predict`` (see :func:`aiw.mlops.serving.inputs.parse_payload`).
        * ``runtime`` says what computes the answer (``sklearn`` or ``onnx``).
        * Whatever the model raises on a valid batch propagates unchanged; the REST server answers
          it with :class:`~aiw.errors.ModelError` (the model, version and exception type only).
    """

    schema: InputSchema
    runtime: str
    classes: tuple[Any, ...]

    def predict(self, batch: ColumnBatch) -> Prediction:
        """Score every row of ``batch``."""
        ...


class SklearnPredictor:
    """The scikit-learn model itself: exact, any estimator, a few milliseconds per call.

    Args:
        model: A fitted estimator or pipeline that takes a DataFrame.
        schema: Its input columns.
        threads: OpenMP threads per call (1 avoids contention on small, busy machines).
    """

    runtime = "sklearn"

    def __init__(self, model: Any, schema: InputSchema, *, threads: int | None = 1) -> None:
        self.model = model
        self.schema = schema
        self.threads = threads
        self.classes = tuple(_plain(c) for c in getattr(model, "classes_", ()))
        final = model.steps[-1][1] if hasattr(model, "steps") else model
        self._proba = hasattr(model, "predict_proba") and bool(self.classes)
        self._argmax = self._proba and type(final).__name__ in ARGMAX_CLASSIFIERS

    def frame(self, batch: ColumnBatch) -> pd.DataFrame:
        """The batch as the DataFrame the model was fitted on (columns in signature order)."""
        import pandas as pd

        return pd.DataFrame({n: batch.columns[n] for n in self.schema.names if n in batch.columns}, copy=False)

    def predict(self, batch: ColumnBatch) -> Prediction:
        """Score ``batch`` with the model."""
        from threadpoolctl import threadpool_limits

        frame = self.frame(batch)
        with threadpool_limits(limits=self.threads, user_api="openmp"):
            if self._proba:
                proba = np.asarray(self.model.predict_proba(frame))
                if self._argmax:
                    labels = np.asarray(self.model.classes_)[np.argmax(proba, axis=1)]
                else:
                    labels = np.asarray(self.model.predict(frame))
                return Prediction(labels, proba, self.classes)
            return Prediction(np.asarray(self.model.predict(frame)), None, ())


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _onnx_type(kind: str) -> str:
    if kind == "string":
        return "string"
    if kind in ("double", "float", "long", "integer", "boolean"):
        return "float"
    raise InvalidInputError(f"ONNX conversion does not support input columns of type {kind!r}")


def convert_to_onnx(model: Any, schema: InputSchema) -> bytes:
    """The ONNX graph of a scikit-learn model, one named input per signature column.

    Numbers become float32 inputs (ONNX tree ensembles compare in float32), strings stay strings.

    Raises:
        InvalidInputError: skl2onnx cannot convert this model or one of its input types.
    """
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    initial = []
    for col in schema.columns:
        kind = _onnx_type(col.type)
        initial.append((col.name, StringTensorType([None, 1]) if kind == "string" else FloatTensorType([None, 1])))
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    options = {id(final): {"zipmap": False}} if hasattr(final, "predict_proba") else None
    try:
        onx = convert_sklearn(model, initial_types=initial, options=options)
    except Exception as exc:  # skl2onnx raises many types for unsupported models: say which
        raise InvalidInputError(f"skl2onnx cannot convert this model: {type(exc).__name__}: {exc}") from exc
    data: bytes = onx.SerializeToString()
    return data


class OnnxPredictor:
    """ONNX Runtime on a converted model: microseconds per small batch, float32 arithmetic.

    Args:
        onnx_bytes: The serialized ONNX model (from :func:`convert_to_onnx`).
        schema: The input columns.
        classes: The class labels of a classifier (the order of its probability columns).
    """

    runtime = "onnx"

    def __init__(self, onnx_bytes: bytes, schema: InputSchema, classes: tuple[Any, ...] = ()) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        # One thread per call: requests already run concurrently, and the machine is small.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        self.schema = schema
        self.classes = tuple(classes)
        self._string = {c.name for c in schema.columns if c.type == "string"}
        outputs = [o.name for o in self.session.get_outputs()]
        self._label = outputs[0]
        self._proba = next((o for o in outputs if "prob" in o.lower()), None)

    def feeds(self, batch: ColumnBatch) -> dict[str, np.ndarray]:
        """The batch as ONNX Runtime inputs: one (rows, 1) tensor per column."""
        feeds = {}
        for name in self.schema.names:
            values = batch.columns[name]
            if name in self._string:
                feeds[name] = values.reshape(-1, 1)
            else:
                feeds[name] = values.astype(np.float32, copy=False).reshape(-1, 1)
        return feeds

    def predict(self, batch: ColumnBatch) -> Prediction:
        """Score ``batch`` with ONNX Runtime."""
        wanted = [self._label] + ([self._proba] if self._proba else [])
        out = self.session.run(wanted, self.feeds(batch))
        labels = np.asarray(out[0]).reshape(-1)
        proba = np.asarray(out[1]) if self._proba else None
        return Prediction(labels, proba, self.classes if proba is not None else ())


@dataclass(frozen=True)
class VerificationReport:
    """How closely a runtime reproduced the model on its verification rows."""

    rows: int
    max_abs_diff: float
    label_mismatches: int
    passed: bool
    reason: str = ""


def verify_runtime(
    candidate: Predictor, reference: Predictor, batch: ColumnBatch, *, tolerance: float
) -> VerificationReport:
    """Score ``batch`` with both and compare labels and probabilities.

    Passes when every label agrees and no probability differs by more than ``tolerance``.
    """
    if batch.rows == 0:
        return VerificationReport(0, float("nan"), 0, False, "no verification rows")
    ref = reference.predict(batch)
    got = candidate.predict(batch)
    mismatches = 0
    if ref.classes:  # labels of a classifier must agree exactly; a regressor's values are compared below
        mismatches = int(np.sum(np.asarray(ref.predictions).astype(str) != np.asarray(got.predictions).astype(str)))
    if ref.probabilities is not None and got.probabilities is not None:
        diff = float(np.max(np.abs(ref.probabilities.astype(np.float64) - got.probabilities.astype(np.float64))))
    elif ref.probabilities is None and got.probabilities is None:
        a = np.asarray(ref.predictions, dtype=np.float64) if ref.predictions.dtype.kind in "fiub" else None
        b = np.asarray(got.predictions, dtype=np.float64) if got.predictions.dtype.kind in "fiub" else None
        diff = float(np.max(np.abs(a - b))) if a is not None and b is not None else 0.0
    else:
        return VerificationReport(batch.rows, float("inf"), mismatches, False, "one runtime gives no probabilities")
    passed = mismatches == 0 and diff <= tolerance
    reason = ""
    if not passed:
        reason = f"{mismatches} labels differ" if mismatches else f"max difference {diff:.2e} > {tolerance:g}"
    return VerificationReport(batch.rows, diff, mismatches, passed, reason)
