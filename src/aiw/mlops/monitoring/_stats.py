"""The drift statistics, vectorised over sorted samples and count vectors.

Each function reproduces the definition Evidently 0.7 uses for the method of the same name
(``evidently.legacy.calculations.stattests``), so that scores agree to rounding error:

===============  ====================================================  =====================
method           statistic                                             drift when
===============  ====================================================  =====================
ks               two-sample Kolmogorov-Smirnov p-value (scipy rules)   p <= threshold (0.05)
wasserstein      W1(reference, current) / max(std(reference), 0.001)   value >= threshold (0.1)
chisquare        Pearson chi-squared p-value, expected from reference  p < threshold (0.05)
z                two-proportion Z-test p-value                         p < threshold (0.05)
jensenshannon    Jensen-Shannon distance of binned shares (natural e)  value >= threshold (0.1)
psi              population stability index of binned shares           value >= threshold (0.1)
===============  ====================================================  =====================

A numeric sample is a :class:`Dist`: sorted values with a weight each. A column's own data is
exact (unique values and their counts); a reference profile of a column with more distinct
values than the profile keeps is a quantile sketch (equal weights), and everything computed
from it is then an approximation whose error shrinks with the sketch size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

__all__ = [
    "KS_EXACT_MAX_N",
    "Dist",
    "MergedCdf",
    "binned_shares",
    "chisquare_pvalue",
    "finite_or_none",
    "hist_counts",
    "jensenshannon",
    "ks_pvalue",
    "ks_statistic",
    "merge_cdfs",
    "psi",
    "sturges_edges",
    "wasserstein_norm",
    "z_pvalue",
]

KS_EXACT_MAX_N = 10_000
"""scipy's ``ks_2samp(method='auto')`` computes exact p-values up to this many rows a side."""


@dataclass(frozen=True)
class Dist:
    """A weighted, sorted sample of one numeric column.

    Attributes:
        values: Sorted ascending (unique when ``exact``).
        weights: How many observations each value stands for (counts when ``exact``).
        n: The number of observations the sample describes.
        exact: Whether ``values``/``weights`` are the whole column, not a sketch of it.
    """

    values: np.ndarray
    weights: np.ndarray
    n: int
    exact: bool = True

    @classmethod
    def from_sorted(cls, sorted_values: np.ndarray) -> Dist:
        """The exact distribution of an already sorted array (duplicates collapsed)."""
        if sorted_values.size == 0:
            return cls(sorted_values.astype(np.float64), np.zeros(0, np.int64), 0, True)
        change = np.empty(sorted_values.size, dtype=bool)
        change[0] = True
        np.not_equal(sorted_values[1:], sorted_values[:-1], out=change[1:])
        starts = np.flatnonzero(change)
        counts = np.diff(np.append(starts, sorted_values.size)).astype(np.int64)
        return cls(sorted_values[starts].astype(np.float64, copy=False), counts, int(sorted_values.size), True)

    @cached_property
    def cum(self) -> np.ndarray:
        """Cumulative weights with a leading zero: ``cum[i]`` observations lie before value i."""
        return np.concatenate(([0.0], np.cumsum(self.weights, dtype=np.float64)))

    @property
    def nunique(self) -> int:
        """Distinct values (a lower bound for a sketch)."""
        return int(self.values.size)

    def expand(self) -> np.ndarray:
        """Every observation again, sorted (exact distributions only)."""
        if not self.exact:
            raise ValueError("a sketched distribution cannot be expanded to its observations")
        return np.repeat(self.values, self.weights.astype(np.int64))

    def sketch(self, points: int) -> Dist:
        """A quantile sketch of ``points`` equally weighted values (self when already small).

        Point ``k`` is the observation at rank ``floor((k + 0.5) * n / points)``: the midpoint of
        the k-th block of ``n / points`` observations, so the sketch's quantile function is
        within one block of the true one everywhere.
        """
        if self.values.size <= points:
            return self
        cum = np.cumsum(self.weights)
        ranks = np.floor((np.arange(points) + 0.5) * (self.n / points))
        idx = np.searchsorted(cum, ranks, side="right")
        vals = self.values[np.minimum(idx, self.values.size - 1)]
        return Dist(vals, np.full(points, self.n / points), self.n, False)


@dataclass(frozen=True)
class MergedCdf:
    """Both empirical CDFs evaluated at every point of the merged samples.

    ``z`` is the merged sorted values and ``h = F * n2 - G * n1``, where ``F`` and ``G`` are the
    cumulative weights of the reference and current samples up to and including each position
    (so ``F/n1 - G/n2 = h / (n1 n2)``). Where ``z`` repeats a value, only the last position of
    the run carries the right-continuous CDF; the gaps ``diff(z)`` are zero for the others, so
    integrals over ``diff(z)`` are exact.
    """

    z: np.ndarray
    h: np.ndarray
    n1: float
    n2: float


def merge_cdfs(ref: Dist, cur: Dist) -> MergedCdf:
    """Merge two sorted weighted samples in linear time (a stable merge of two sorted runs)."""
    both = np.concatenate((ref.values, cur.values))
    order = np.argsort(both, kind="stable")  # timsort: one merge of the two sorted runs
    n1, n2 = float(ref.n), float(cur.n)
    # one signed weight per point: +w*n2 for the reference, -w*n1 for the current sample
    signed = np.concatenate(
        (np.multiply(ref.weights, n2, dtype=np.float64), np.multiply(cur.weights, -n1, dtype=np.float64))
    )
    return MergedCdf(both[order], np.cumsum(signed[order]), n1, n2)


def ks_statistic(m: MergedCdf) -> float:
    """sup |F - G| over the merged points (as scipy's ``ks_2samp`` evaluates it)."""
    last = np.empty(m.z.size, dtype=bool)  # last position of each run of equal values
    last[-1] = True
    np.not_equal(m.z[1:], m.z[:-1], out=last[:-1])
    h = m.h[last]
    scale = m.n1 * m.n2
    max_s = float(h.max()) / scale
    min_s = float(np.clip(-float(h.min()) / scale, 0, 1))
    return min_s if min_s > max_s else max_s


def ks_pvalue(ref: Dist, cur: Dist, merged: MergedCdf | None = None) -> tuple[float, float]:
    """Two-sided two-sample KS test: ``(D, p)`` by scipy's ``method='auto'`` rules.

    Up to :data:`KS_EXACT_MAX_N` observations a side scipy computes the exact p-value, so both
    samples are expanded and handed to :func:`scipy.stats.ks_2samp` itself (cheap at that
    size). Above, D comes from the merged CDFs and p from Smirnov's asymptotic distribution
    exactly as scipy does (``kstwo.sf(D, round(n1 n2 / (n1 + n2)))``).
    """
    from scipy import stats

    if max(ref.n, cur.n) <= KS_EXACT_MAX_N and ref.exact and cur.exact:
        res = stats.ks_2samp(ref.expand(), cur.expand())
        return float(res.statistic), float(res.pvalue)
    merged = merged or merge_cdfs(ref, cur)
    d = ks_statistic(merged)
    big, small = sorted([float(ref.n), float(cur.n)], reverse=True)
    en = big * small / (big + small)
    p = float(np.clip(stats.distributions.kstwo.sf(d, np.round(en)), 0, 1))
    return d, p


def wasserstein_norm(ref: Dist, cur: Dist, ref_std: float, merged: MergedCdf | None = None) -> float:
    """Wasserstein-1 distance divided by ``max(std(reference), 0.001)`` (Evidently's "normed").

    W1 = integral of |F - G| dx, summed over the merged points; ``F * n2 - G * n1`` holds
    integers while they stay below 2**53, so exact counts stay exact.
    """
    merged = merged or merge_cdfs(ref, cur)
    # np.sum, not np.dot: a BLAS call spins threads that fight for busy cores
    w1 = float(np.sum(np.abs(merged.h[:-1]) * np.diff(merged.z))) / (merged.n1 * merged.n2)
    return w1 / max(float(ref_std), 0.001)


def sturges_edges(lo: float, hi: float, n_total: int) -> np.ndarray:
    """``np.histogram_bin_edges(data, bins='sturges')`` from the data's min, max and size."""
    first, last = float(lo), float(hi)
    if first == last:
        first, last = first - 0.5, last + 0.5
        return np.linspace(first, last, 2)
    width = (last - first) / (np.log2(n_total) + 1.0)
    bins = int(np.ceil((last - first) / width)) if width else 1
    return np.linspace(first, last, bins + 1, endpoint=True)


def hist_counts(d: Dist, edges: np.ndarray) -> np.ndarray:
    """``np.histogram(data, edges)[0]``: half-open bins, the last one closed."""
    cum = d.cum
    left = cum[np.searchsorted(d.values, edges[:-1], side="left")]
    right_end = cum[np.searchsorted(d.values, edges[-1:], side="right")]
    return np.diff(np.concatenate((left, right_end)))


def _feel_zeroes(shares: np.ndarray) -> np.ndarray:
    """Evidently's replacement of empty bins before taking logarithms."""
    nonzero = shares[shares != 0]
    if nonzero.size == 0:
        return shares
    low = float(nonzero.min())
    out = shares.copy()
    out[out == 0] = low / 10**6 if low <= 0.0001 else 0.0001
    return out


def binned_shares(
    ref_counts: np.ndarray, cur_counts: np.ndarray, n_ref: float, n_cur: float, *, feel_zeroes: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Shares per bin or category, with empty ones filled for log-based measures (PSI)."""
    p = np.asarray(ref_counts, dtype=np.float64) / n_ref
    q = np.asarray(cur_counts, dtype=np.float64) / n_cur
    if feel_zeroes:
        p, q = _feel_zeroes(p), _feel_zeroes(q)
    return p, q


def jensenshannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance (natural logarithm), as ``scipy.spatial.distance.jensenshannon``."""
    from scipy.spatial import distance

    return float(distance.jensenshannon(p, q))


def psi(p: np.ndarray, q: np.ndarray) -> float:
    """Population stability index: sum((p - q) * ln(p / q)) over bins with no zero share."""
    return float(np.sum((p - q) * np.log(p / q)))


def chisquare_pvalue(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float]:
    """Pearson's chi-squared test of current counts against reference shares: ``(stat, p)``.

    A category seen only in the current data has an expected count of zero, which makes the
    statistic infinite and p zero, as in scipy and Evidently.
    """
    from scipy.stats import chisquare

    ref = np.asarray(ref_counts, dtype=np.float64)
    cur = np.asarray(cur_counts, dtype=np.float64)
    k_norm = cur.sum() / ref.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        res = chisquare(cur, ref * k_norm)
    return float(res.statistic), float(res.pvalue)


def z_pvalue(
    ref_first: float, n_ref: float, cur_first: float, n_cur: float, *, single_same_value: bool
) -> tuple[float, float]:
    """Two-proportion Z-test (two-sided) on the share of one of two categories: ``(z, p)``.

    Args:
        ref_first: Reference observations equal to the first category.
        n_ref: Reference observations.
        cur_first: Current observations equal to the first category.
        n_cur: Current observations.
        single_same_value: Both samples hold one and the same value: no drift (p = 1).
    """
    from scipy.stats import norm

    if single_same_value:
        return 0.0, 1.0
    p1 = (n_ref - ref_first) / n_ref  # Evidently codes the first sorted category as 0
    p2 = (n_cur - cur_first) / n_cur
    pooled = (p1 * n_ref + p2 * n_cur) / (n_ref + n_cur)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n_ref + 1.0 / n_cur))
    p = 2 * (1 - norm.cdf(np.abs(z)))
    return float(z), float(p)


def finite_or_none(value: Any) -> float | None:
    """``value`` as a float for JSON, or None when it is missing, NaN or infinite."""
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None
