"""Embedding drift: has a set of vectors (a vector column, the RAG corpus) moved?

Three measures, each with a warning and a critical threshold:

* ``norm_shift`` - relative change of the mean L2 norm, ``|mean|c| - mean|r|| / mean|r|``;
* ``centroid_cosine`` - cosine distance between the two centroids, ``1 - cos(mean r, mean c)``;
* ``domain_auc`` - ROC AUC of a logistic regression telling reference from current vectors,
  cross-validated (0.5: indistinguishable; Evidently's "model" method flags drift at 0.55).

:class:`EmbeddingDriftDetector` keeps a compact profile (centroid, norm statistics and a
seeded random sample of reference vectors for the classifier).
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from aiw.errors import ConflictError, InvalidInputError

__all__ = ["EmbeddingDriftDetector", "EmbeddingDriftReport", "EmbeddingMetric", "as_matrix"]

_LEVELS = ("ok", "warning", "critical")
DEFAULT_THRESHOLDS: dict[str, tuple[float, float]] = {
    "norm_shift": (0.05, 0.10),
    "centroid_cosine": (0.05, 0.15),
    "domain_auc": (0.55, 0.70),
}
"""(warning, critical) per measure."""


def as_matrix(vectors: Any, what: str = "embeddings") -> np.ndarray:
    """A float64 (n, d) matrix from an array, a list of vectors, a pandas Series of lists or a
    pyarrow (fixed size) list array.

    Raises:
        InvalidInputError: ragged, empty, not numeric, or not finite.
    """
    if hasattr(vectors, "to_pylist") and not isinstance(vectors, np.ndarray):
        try:
            import pyarrow as pa

            if isinstance(vectors, pa.ChunkedArray):
                vectors = vectors.combine_chunks()
            if pa.types.is_fixed_size_list(vectors.type):
                flat = vectors.flatten().to_numpy(zero_copy_only=False)
                vectors = flat.reshape(len(vectors), vectors.type.list_size)
            else:
                vectors = vectors.to_pylist()
        except ImportError:  # pragma: no cover - pyarrow is a dependency
            vectors = vectors.to_pylist()
    elif hasattr(vectors, "to_numpy") and not isinstance(vectors, np.ndarray):
        vectors = list(vectors.to_numpy())
    try:
        m = np.asarray(vectors if isinstance(vectors, np.ndarray) else list(vectors), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"The {what} must be numeric vectors of one length: {exc}") from exc
    if m.ndim != 2 or m.shape[0] == 0 or m.shape[1] == 0:
        raise InvalidInputError(
            f"The {what} must be a non-empty (rows, dimensions) matrix. Got shape {m.shape} instead."
        )
    if not np.isfinite(m).all():
        raise InvalidInputError(f"The {what} hold NaN or infinite values.")
    return m


@dataclass
class EmbeddingMetric:
    """One measure, its thresholds and the level it reached."""

    name: str
    value: float | None
    warning: float
    critical: float
    level: str
    note: str = ""


@dataclass
class EmbeddingDriftReport:
    """What :meth:`EmbeddingDriftDetector.score` found."""

    metrics: list[EmbeddingMetric]
    reference_rows: int
    current_rows: int
    dim: int
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    subject: str = ""
    kind: str = "embedding"

    @property
    def severity(self) -> str:
        """The highest level any measure reached: ``ok``, ``warning`` or ``critical``."""
        return _LEVELS[max(_LEVELS.index(m.level) for m in self.metrics)]

    @property
    def drifted(self) -> bool:
        """Whether any measure reached its warning threshold."""
        return self.severity != "ok"

    def metric(self, name: str) -> EmbeddingMetric:
        """One measure by name."""
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(name)

    def summary(self) -> dict[str, Any]:
        """Figures for alert rules: each measure, ``severity_level`` (0 ok, 1 warning, 2 critical)."""
        out: dict[str, Any] = {m.name: m.value for m in self.metrics}
        out.update(
            subject=self.subject, kind=self.kind, drifted=self.drifted, severity_level=_LEVELS.index(self.severity)
        )
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {
            "kind": self.kind,
            "subject": self.subject,
            "created_at": self.created_at,
            "severity": self.severity,
            "drifted": self.drifted,
            "dim": self.dim,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "metrics": [asdict(m) for m in self.metrics],
        }


def _level(value: float | None, warning: float, critical: float) -> str:
    if value is None:
        return "ok"
    if value >= critical:
        return "critical"
    return "warning" if value >= warning else "ok"


def _pack(a: np.ndarray) -> dict[str, Any]:
    arr = np.ascontiguousarray(a, dtype=np.float32)  # a sample for a classifier: float32 is plenty
    return {"shape": list(arr.shape), "zlib_b64": base64.b64encode(zlib.compress(arr.tobytes(), 6)).decode()}


def _unpack(d: Mapping[str, Any]) -> np.ndarray:
    raw = zlib.decompress(base64.b64decode(d["zlib_b64"]))
    return np.frombuffer(raw, dtype=np.float32).reshape(d["shape"]).astype(np.float64)


class EmbeddingDriftDetector:
    """Drift of a set of embedding vectors against a reference set.

    Args:
        thresholds: ``{measure: (warning, critical)}`` overriding :data:`DEFAULT_THRESHOLDS`.
        sample_size: Most vectors of each side the domain classifier trains on.
        cv: Cross-validation folds of the domain classifier.
        random_state: Seed of the sampling and the folds (results are reproducible).
    """

    def __init__(
        self,
        *,
        thresholds: Mapping[str, tuple[float, float]] | None = None,
        sample_size: int = 2000,
        cv: int = 5,
        random_state: int = 0,
    ) -> None:
        self.thresholds = thresholds
        self.sample_size = sample_size
        self.cv = cv
        self.random_state = random_state

    def _validate(self) -> dict[str, tuple[float, float]]:
        name = type(self).__name__
        if isinstance(self.sample_size, bool) or not isinstance(self.sample_size, int) or self.sample_size < 20:
            raise InvalidInputError(
                f"The 'sample_size' parameter of {name} must be an int >= 20. Got {self.sample_size!r} instead."
            )
        if isinstance(self.cv, bool) or not isinstance(self.cv, int) or not 2 <= self.cv <= 20:
            raise InvalidInputError(f"The 'cv' parameter of {name} must be an int in [2, 20]. Got {self.cv!r} instead.")
        merged = dict(DEFAULT_THRESHOLDS)
        for key, pair in (self.thresholds or {}).items():
            if key not in DEFAULT_THRESHOLDS:
                raise InvalidInputError(
                    f"The 'thresholds' parameter of {name} names {key!r}; use {', '.join(DEFAULT_THRESHOLDS)}."
                )
            try:
                warning, critical = (float(pair[0]), float(pair[1]))
            except (TypeError, ValueError, IndexError) as exc:
                raise InvalidInputError(
                    f"The 'thresholds' parameter of {name} needs (warning, critical) for {key!r}. Got {pair!r} instead."
                ) from exc
            if not 0 <= warning <= critical:
                raise InvalidInputError(
                    f"The thresholds of {key!r} must satisfy 0 <= warning <= critical. Got {pair!r} instead."
                )
            merged[key] = (warning, critical)
        return merged

    def fit(self, reference: Any) -> EmbeddingDriftDetector:
        """Learn the reference centroid, norm statistics and a classifier sample.

        Args:
            reference: (n, d) vectors in any form :func:`as_matrix` accepts.
        """
        self._validate()
        ref = as_matrix(reference, "reference embeddings")
        norms = np.linalg.norm(ref, axis=1)
        rng = np.random.default_rng(self.random_state)
        take = rng.choice(ref.shape[0], size=min(self.sample_size, ref.shape[0]), replace=False)
        self.n_rows_ = int(ref.shape[0])
        self.dim_ = int(ref.shape[1])
        self.centroid_ = ref.mean(axis=0)
        self.mean_norm_ = float(norms.mean())
        self.sample_ = ref[np.sort(take)]
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "centroid_"):
            raise ConflictError(
                f"This {type(self).__name__} instance is not fitted yet.",
                hint="call 'fit' with reference vectors (or use from_profile) before 'score'",
            )

    def score(self, current: Any) -> EmbeddingDriftReport:
        """Compare current vectors with the reference.

        Raises:
            ConflictError: not fitted.
            InvalidInputError: the vectors are malformed or of another dimension.
        """
        self._check_fitted()
        thresholds = self._validate()
        cur = as_matrix(current, "current embeddings")
        if cur.shape[1] != self.dim_:
            raise InvalidInputError(
                f"The current embeddings have {cur.shape[1]} dimensions; the reference has {self.dim_}.",
                hint="embed both with the same model",
            )
        norm_cur = float(np.linalg.norm(cur, axis=1).mean())
        norm_shift = abs(norm_cur - self.mean_norm_) / self.mean_norm_ if self.mean_norm_ > 0 else 0.0
        c_cur = cur.mean(axis=0)
        denom = float(np.linalg.norm(self.centroid_) * np.linalg.norm(c_cur))
        cosine = 1.0 - float(np.dot(self.centroid_, c_cur)) / denom if denom > 0 else 0.0
        auc, note = self._domain_auc(cur)
        metrics = []
        for name, value, extra in (
            ("norm_shift", norm_shift, ""),
            ("centroid_cosine", max(0.0, cosine), ""),
            ("domain_auc", auc, note),
        ):
            warning, critical = thresholds[name]
            metrics.append(EmbeddingMetric(name, value, warning, critical, _level(value, warning, critical), extra))
        return EmbeddingDriftReport(metrics, self.n_rows_, int(cur.shape[0]), self.dim_)

    def _domain_auc(self, cur: np.ndarray) -> tuple[float | None, str]:
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import StratifiedKFold, cross_val_predict

        rng = np.random.default_rng(self.random_state + 1)
        take = rng.choice(cur.shape[0], size=min(self.sample_size, cur.shape[0]), replace=False)
        cur_s = cur[np.sort(take)]
        n = min(len(self.sample_), len(cur_s))  # balanced classes keep the AUC stable
        if n < self.cv * 2:
            return None, f"too few vectors for a {self.cv}-fold domain classifier (need {self.cv * 2} a side)"
        x = np.vstack([self.sample_[:n], cur_s[:n]])
        y = np.concatenate([np.zeros(n), np.ones(n)])
        folds = StratifiedKFold(n_splits=self.cv, shuffle=True, random_state=self.random_state)
        proba = cross_val_predict(LogisticRegression(max_iter=1000), x, y, cv=folds, method="predict_proba")[:, 1]
        return float(roc_auc_score(y, proba)), f"logistic regression, {self.cv}-fold, {n} vectors a side"

    # -- profile ---------------------------------------------------------------------------
    def to_profile(self) -> dict[str, Any]:
        """The fitted state as JSON-ready data (the sample is packed float32)."""
        self._check_fitted()
        return {
            "format": "aiw-embedding-profile/1",
            "params": {
                "thresholds": {k: list(v) for k, v in (self.thresholds or {}).items()},
                "sample_size": self.sample_size,
                "cv": self.cv,
                "random_state": self.random_state,
            },
            "n_rows": self.n_rows_,
            "dim": self.dim_,
            "mean_norm": self.mean_norm_,
            "centroid": self.centroid_.tolist(),
            "sample": _pack(self.sample_),
        }

    @classmethod
    def from_profile(cls, profile: Mapping[str, Any] | str) -> EmbeddingDriftDetector:
        """A fitted detector from :meth:`to_profile` output (a dict or its JSON)."""
        data = json.loads(profile) if isinstance(profile, str) else profile
        if data.get("format") != "aiw-embedding-profile/1":
            raise InvalidInputError("Not an embedding drift profile.")
        params = data["params"]
        det = cls(
            thresholds={k: (v[0], v[1]) for k, v in params["thresholds"].items()} or None,
            sample_size=params["sample_size"],
            cv=params["cv"],
            random_state=params["random_state"],
        )
        det._validate()
        det.n_rows_ = int(data["n_rows"])
        det.dim_ = int(data["dim"])
        det.mean_norm_ = float(data["mean_norm"])
        det.centroid_ = np.asarray(data["centroid"], dtype=np.float64)
        det.sample_ = _unpack(data["sample"])
        return det
