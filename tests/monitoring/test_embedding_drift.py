"""EmbeddingDriftDetector on synthetic vectors: no drift, norm shift, topic shift, profile."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aiw.errors import ConflictError, InvalidInputError
from aiw.mlops.monitoring.embedding import EmbeddingDriftDetector

pytestmark = pytest.mark.unit

DIM = 32


def _vectors(n: int, *, center: np.ndarray, scale: float = 1.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = center + rng.normal(0, 0.5, size=(n, DIM))
    return scale * v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def centers() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    return rng.normal(size=DIM), rng.normal(size=DIM)


def test_same_distribution_is_ok(centers) -> None:  # type: ignore[no-untyped-def]
    a, _ = centers
    det = EmbeddingDriftDetector(sample_size=400).fit(_vectors(1000, center=a, seed=1))
    report = det.score(_vectors(600, center=a, seed=2))
    assert report.severity == "ok" and not report.drifted
    assert report.metric("domain_auc").value == pytest.approx(0.5, abs=0.06)
    assert report.metric("norm_shift").value == pytest.approx(0.0, abs=1e-9)  # unit vectors both sides


def test_topic_shift_is_critical(centers) -> None:  # type: ignore[no-untyped-def]
    a, b = centers
    det = EmbeddingDriftDetector(sample_size=400).fit(_vectors(1000, center=a, seed=1))
    report = det.score(_vectors(600, center=b, seed=3))
    assert report.severity == "critical"
    assert report.metric("centroid_cosine").level == "critical"
    assert report.metric("domain_auc").value > 0.95
    assert report.summary()["severity_level"] == 2


def test_norm_shift_alone(centers) -> None:  # type: ignore[no-untyped-def]
    a, _ = centers
    det = EmbeddingDriftDetector(sample_size=200, thresholds={"domain_auc": (0.99, 1.0)})
    det.fit(_vectors(500, center=a, seed=1))
    report = det.score(_vectors(500, center=a, scale=1.07, seed=4))
    norm = report.metric("norm_shift")
    assert norm.value == pytest.approx(0.07, abs=1e-9) and norm.level == "warning"
    assert report.metric("centroid_cosine").level == "ok"


def test_profile_round_trip_and_errors(centers) -> None:  # type: ignore[no-untyped-def]
    a, b = centers
    with pytest.raises(ConflictError, match="not fitted"):
        EmbeddingDriftDetector().score(np.ones((3, DIM)))
    det = EmbeddingDriftDetector(sample_size=300).fit(_vectors(800, center=a, seed=1))
    again = EmbeddingDriftDetector.from_profile(json.dumps(det.to_profile()))
    cur = _vectors(400, center=b, seed=5)
    r1, r2 = det.score(cur), again.score(cur)
    assert r1.metric("centroid_cosine").value == pytest.approx(r2.metric("centroid_cosine").value, rel=1e-12)
    assert r1.metric("domain_auc").value == pytest.approx(r2.metric("domain_auc").value, abs=0.02)
    with pytest.raises(InvalidInputError, match="dimensions"):
        det.score(np.ones((10, DIM + 1)))
    with pytest.raises(InvalidInputError, match="NaN"):
        det.score(np.full((10, DIM), np.nan))
    with pytest.raises(InvalidInputError, match="'sample_size'"):
        EmbeddingDriftDetector(sample_size=1).fit(cur)
    with pytest.raises(InvalidInputError, match="warning <= critical"):
        EmbeddingDriftDetector(thresholds={"norm_shift": (0.5, 0.1)}).fit(cur)


def test_accepts_lists_and_arrow_vectors(centers) -> None:  # type: ignore[no-untyped-def]
    import pyarrow as pa

    a, _ = centers
    ref = _vectors(100, center=a, seed=1)
    arrow = pa.array(list(ref), type=pa.list_(pa.float32(), DIM))
    det = EmbeddingDriftDetector(sample_size=50).fit(arrow)
    assert det.dim_ == DIM
    assert det.score([list(v) for v in ref]).metric("centroid_cosine").value == pytest.approx(0, abs=1e-6)
