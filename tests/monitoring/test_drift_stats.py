"""Each drift statistic against scipy / numpy or a hand computation, and the selection rules."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance

from aiw.mlops.monitoring import _stats as st
from aiw.mlops.monitoring.drift import METHODS, select_method

pytestmark = pytest.mark.unit


def _dist(x: np.ndarray) -> st.Dist:
    return st.Dist.from_sorted(np.sort(np.asarray(x, dtype=np.float64)))


@pytest.fixture(scope="module")
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def test_ks_exact_mode_is_scipy(rng) -> None:  # type: ignore[no-untyped-def]
    a, b = rng.normal(size=300), rng.normal(0.3, 1, size=450)
    d, p = st.ks_pvalue(_dist(a), _dist(b))
    ref = stats.ks_2samp(a, b)
    assert d == pytest.approx(ref.statistic, abs=1e-15)
    assert p == pytest.approx(ref.pvalue, rel=1e-12)


def test_ks_asymptotic_mode_matches_scipy_with_ties(rng) -> None:  # type: ignore[no-untyped-def]
    a = rng.integers(0, 40, size=900).astype(float)  # ties inside and across samples
    b = rng.integers(2, 42, size=25_000).astype(float)
    d, p = st.ks_pvalue(_dist(a), _dist(b))
    ref = stats.ks_2samp(a, b)
    assert d == pytest.approx(ref.statistic, abs=1e-12)
    assert p == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)


def test_wasserstein_normed_is_scipy_over_reference_std(rng) -> None:  # type: ignore[no-untyped-def]
    a, b = rng.exponential(2.0, size=5000), rng.exponential(2.4, size=7000)
    a[:100] = b[:100]  # shared values
    got = st.wasserstein_norm(_dist(a), _dist(b), float(np.std(a)))
    want = stats.wasserstein_distance(a, b) / np.std(a)
    assert got == pytest.approx(want, rel=1e-12)
    assert st.wasserstein_norm(_dist(a), _dist(a), float(np.std(a))) == 0.0


def test_wasserstein_uses_floor_for_constant_reference() -> None:
    a, b = np.full(10, 3.0), np.full(10, 3.5)
    assert st.wasserstein_norm(_dist(a), _dist(b), 0.0) == pytest.approx(0.5 / 0.001)


def test_sturges_edges_and_histogram_counts_are_numpy(rng) -> None:  # type: ignore[no-untyped-def]
    a, b = rng.normal(size=1234), rng.normal(1, 2, size=777)
    both = np.concatenate([a, b])
    edges = st.sturges_edges(both.min(), both.max(), both.size)
    np.testing.assert_array_equal(edges, np.histogram_bin_edges(both, bins="sturges"))
    np.testing.assert_array_equal(st.hist_counts(_dist(a), edges), np.histogram(a, edges)[0])
    np.testing.assert_array_equal(st.hist_counts(_dist(b), edges), np.histogram(b, edges)[0])


def test_jensenshannon_is_scipy_on_binned_shares() -> None:
    r, c = np.array([50, 30, 20, 0]), np.array([40, 30, 20, 10])
    p, q = st.binned_shares(r, c, 100, 100, feel_zeroes=False)
    assert st.jensenshannon(p, q) == pytest.approx(float(distance.jensenshannon(p, q)), abs=1e-15)
    # by hand: sqrt(JS divergence) with natural logarithms
    m = (p + q) / 2
    kl = lambda x, y: np.sum(np.where(x > 0, x * np.log(np.where(x > 0, x, 1) / y), 0))  # noqa: E731
    assert st.jensenshannon(p, q) == pytest.approx(np.sqrt((kl(p, m) + kl(q, m)) / 2), abs=1e-12)


def test_psi_fills_empty_bins_like_evidently() -> None:
    r, c = np.array([60, 40, 0]), np.array([50, 30, 20])
    p, q = st.binned_shares(r, c, 100, 100, feel_zeroes=True)
    assert p[2] == pytest.approx(0.0001)  # smallest non-zero share 0.4 > 0.0001 -> 0.0001
    want = sum((a - b) * np.log(a / b) for a, b in zip([0.6, 0.4, 0.0001], [0.5, 0.3, 0.2], strict=True))
    assert st.psi(p, q) == pytest.approx(want, rel=1e-12)
    tiny = st.binned_shares(np.array([99_999, 1, 0]), np.array([1, 1, 1]), 100_000, 3, feel_zeroes=True)[0]
    assert tiny[2] == pytest.approx(1e-5 / 1e6)  # min share <= 0.0001 -> min / 10**6


def test_chisquare_by_hand() -> None:
    ref, cur = np.array([50, 30, 20]), np.array([30, 30, 40])
    stat, p = st.chisquare_pvalue(ref, cur)
    expected = ref * (cur.sum() / ref.sum())
    by_hand = float(np.sum((cur - expected) ** 2 / expected))
    assert stat == pytest.approx(by_hand)
    assert p == pytest.approx(stats.chi2.sf(by_hand, 2))
    # a category never seen in the reference: infinite statistic, p = 0
    assert st.chisquare_pvalue(np.array([10, 0]), np.array([5, 5]))[1] == 0.0


def test_z_test_by_hand() -> None:
    z, p = st.z_pvalue(ref_first=60, n_ref=100, cur_first=45, n_cur=100, single_same_value=False)
    p1, p2 = 0.40, 0.55
    pooled = (p1 * 100 + p2 * 100) / 200
    want_z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (2 / 100))
    assert z == pytest.approx(want_z)
    assert p == pytest.approx(2 * (1 - stats.norm.cdf(abs(want_z))))
    assert st.z_pvalue(5, 5, 7, 7, single_same_value=True) == (0.0, 1.0)


def test_sketch_is_close_to_exact(rng) -> None:  # type: ignore[no-untyped-def]
    a, b = rng.normal(size=200_000), rng.normal(0.05, 1.1, size=50_000)
    exact, cur = _dist(a), _dist(b)
    sketch = exact.sketch(10_000)
    assert not sketch.exact and sketch.values.size == 10_000 and sketch.n == a.size
    w_exact = st.wasserstein_norm(exact, cur, 1.0)
    assert st.wasserstein_norm(sketch, cur, 1.0) == pytest.approx(w_exact, abs=2e-3)
    d_exact = st.ks_pvalue(exact, cur)[0]
    assert st.ks_pvalue(sketch, cur)[0] == pytest.approx(d_exact, abs=1e-3)
    with pytest.raises(ValueError, match="sketch"):
        sketch.expand()


@pytest.mark.parametrize(
    ("kind", "n_ref", "n_values", "want"),
    [
        ("numerical", 1000, 6, "ks"),
        ("numerical", 1000, 5, "chisquare"),
        ("numerical", 1000, 3, "chisquare"),
        ("numerical", 1000, 2, "z"),
        ("categorical", 500, 3, "chisquare"),
        ("categorical", 500, 2, "z"),
        ("categorical", 500, 1, "z"),
        ("numerical", 1001, 6, "wasserstein"),
        ("numerical", 1001, 5, "jensenshannon"),
        ("categorical", 1001, 50, "jensenshannon"),
        ("categorical", 1001, 2, "jensenshannon"),
    ],
)
def test_selection_rules(kind: str, n_ref: int, n_values: int, want: str) -> None:
    assert select_method(kind, n_ref, n_values) == want


def test_decision_rules_follow_evidently() -> None:
    assert METHODS["ks"].drifted(0.05, 0.05)  # ks: p <= threshold
    assert not METHODS["chisquare"].drifted(0.05, 0.05)  # other tests: p < threshold
    assert METHODS["z"].drifted(0.049, 0.05)
    assert METHODS["wasserstein"].drifted(0.1, 0.1)  # distances: value >= threshold
    assert not METHODS["psi"].drifted(0.0999, 0.1)
    assert not METHODS["jensenshannon"].drifted(float("nan"), 0.1)
