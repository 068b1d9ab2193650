"""Guardrails: per-arm metrics, and the checks that compare the candidate with the champion.

Three checks, each returning a :class:`GuardrailCheck` whose status is ``pass``, ``fail``,
``wait`` (not enough traffic yet) or ``skip`` (nothing to compare with):

* **error rate** of the candidate (server errors only: a malformed request fails on either arm
  and says nothing about the model), against :attr:`Guardrails.max_error_rate`;
* **p95 latency** of the candidate over the champion's, against
  :attr:`Guardrails.max_p95_ratio`, ignoring differences under :attr:`Guardrails.latency_floor_ms`;
* **prediction shift**: the population stability index between the arms' predictions
  (positive-class scores of a binary classifier, otherwise predicted values or labels), binned
  on the champion's quantiles, with the Jensen-Shannon distance reported alongside; over the
  limit *and* over the sampling-noise bound of the two sample sizes. The PSI and JS
  formulas are the monitoring package's (``aiw.mlops.monitoring._stats``), so a rollout and a drift
  report agree on the same data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from aiw.mlops.monitoring._stats import binned_shares, jensenshannon, psi
from aiw.mlops.rollout.plan import Guardrails

__all__ = [
    "ArmMetrics",
    "CheckStatus",
    "GuardrailCheck",
    "ShiftResult",
    "check_error_rate",
    "check_latency",
    "check_shift",
    "prediction_shift",
]

CheckStatus = Literal["pass", "fail", "wait", "skip"]

_MIN_PER_BIN = 10  # expected observations per bin: fewer make PSI mostly sampling noise
_Z90 = 1.6449  # two-sided 90% (one-sided 95%) normal quantile


@dataclass(frozen=True)
class ArmMetrics:
    """What one arm (champion or candidate) did over a window of traffic.

    Attributes:
        requests: Requests judged (successes and server errors).
        errors: Server errors among them.
        p50_ms: Median latency of the successes, ms (None without successes).
        p95_ms: 95th percentile latency of the successes, ms.
        p99_ms: 99th percentile latency of the successes, ms.
        predictions: A sample of the predictions (numbers or labels) for the shift check.
        p95_ci_ms: A distribution-free 90% confidence interval of the p95 (order statistics of
            the binomial ranks around 0.95 n): with a few dozen requests the p95 is nearly the
            maximum, and only separated intervals are evidence of a regression.
    """

    requests: int = 0
    errors: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    predictions: tuple[Any, ...] = ()
    p95_ci_ms: tuple[float, float] | None = None

    @property
    def successes(self) -> int:
        """Requests that were answered."""
        return self.requests - self.errors

    @property
    def error_rate(self) -> float:
        """``errors / requests`` (0 without requests)."""
        return self.errors / self.requests if self.requests else 0.0

    @classmethod
    def from_outcomes(
        cls, latencies_ms: Sequence[float] | np.ndarray, errors: int, predictions: Sequence[Any] = ()
    ) -> ArmMetrics:
        """Metrics from the latencies of the successes, the error count and a prediction sample."""
        lat = np.sort(np.asarray(latencies_ms, dtype=np.float64))
        ci: tuple[float, float] | None = None
        p50: float | None
        p95: float | None
        p99: float | None
        if lat.size:
            p50, p95, p99 = (float(v) for v in np.percentile(lat, [50, 95, 99]))
            n = lat.size
            half = _Z90 * math.sqrt(n * 0.95 * 0.05)
            lo = min(max(math.floor(n * 0.95 - half), 1), n) - 1  # ranks are 1-based
            hi = min(max(math.ceil(n * 0.95 + half), 1), n) - 1
            ci = (float(lat[lo]), float(lat[hi]))
        else:
            p50 = p95 = p99 = None
        return cls(int(lat.size) + int(errors), int(errors), p50, p95, p99, tuple(predictions), ci)

    def to_dict(self) -> dict[str, Any]:
        """Counts, rates and latencies, and a summary of the predictions (not the sample)."""
        out: dict[str, Any] = {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": round(self.error_rate, 6),
            "p50_ms": _round(self.p50_ms),
            "p95_ms": _round(self.p95_ms),
            "p99_ms": _round(self.p99_ms),
            "predictions": len(self.predictions),
            "p95_ci_ms": None if self.p95_ci_ms is None else [_round(v) for v in self.p95_ci_ms],
        }
        if self.predictions:
            values = np.asarray(self.predictions)
            if values.dtype.kind in "fiu":
                out["prediction_mean"] = _round(float(np.mean(values.astype(np.float64))), 6)
            else:
                labels, counts = np.unique(values.astype(str), return_counts=True)
                top = sorted(zip(counts.tolist(), labels.tolist(), strict=True), reverse=True)[:5]
                out["prediction_shares"] = {label: round(count / values.size, 4) for count, label in top}
        return out


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


@dataclass(frozen=True)
class GuardrailCheck:
    """One guardrail's verdict.

    Attributes:
        name: ``error_rate``, ``latency_p95`` or ``prediction_shift``.
        status: ``pass``, ``fail``, ``wait`` (too little traffic) or ``skip`` (no comparison).
        value: The measured figure (rate, ratio or PSI), when there is one.
        threshold: The limit it is compared with.
        detail: One sentence a person can act on.
    """

    name: str
    status: CheckStatus
    value: float | None
    threshold: float
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {
            "name": self.name,
            "status": self.status,
            "value": _round(self.value, 6),
            "threshold": self.threshold,
            "detail": self.detail,
        }


def check_error_rate(g: Guardrails, candidate: ArmMetrics) -> GuardrailCheck:
    """Fail as soon as the candidate's error rate is certainly, or measurably, over the limit.

    Certainly: its errors exceed ``max_error_rate * min_requests``, so even if every request up
    to ``min_requests`` succeeded the rate would stay over. Measurably: it has served
    ``min_requests`` and its rate is over.
    """
    rate, n, errors = candidate.error_rate, candidate.requests, candidate.errors
    limit = g.max_error_rate
    shown = f"{errors} errors in {n} requests ({rate:.1%})"
    if errors > limit * max(n, g.min_requests):
        return GuardrailCheck("error_rate", "fail", rate, limit, f"candidate error rate over {limit:.1%}: {shown}")
    if n < g.min_requests:
        return GuardrailCheck(
            "error_rate",
            "wait",
            rate if n else None,
            limit,
            f"candidate has {n} of {g.min_requests} requests ({errors} errors)",
        )
    return GuardrailCheck("error_rate", "pass", rate, limit, f"candidate {shown}, limit {limit:.1%}")


def check_latency(
    g: Guardrails, champion: ArmMetrics, candidate: ArmMetrics, *, champion_serves: bool = True
) -> GuardrailCheck:
    """Fail when the candidate's p95 is over ``max_p95_ratio`` times the champion's, beyond doubt.

    Beyond doubt: even the low end of the candidate's p95 interval is over ``max_p95_ratio``
    times the high end of the champion's, and by more than ``latency_floor_ms``. Two arms of the
    same model on a busy machine differ by 50% in p95 over a hundred requests by chance alone;
    a real regression (a slower runtime, a heavier model) separates the intervals at once.

    Args:
        g: The guardrails.
        champion: The champion's metrics (the baseline).
        candidate: The candidate's metrics in the current step.
        champion_serves: False at a 100% step; a champion without enough traffic is then not a
            reason to wait (``skip``).
    """
    limit = g.max_p95_ratio
    if candidate.successes < g.min_requests or candidate.p95_ms is None or candidate.p95_ci_ms is None:
        return GuardrailCheck(
            "latency_p95",
            "wait",
            None,
            limit,
            f"candidate has {candidate.successes} of {g.min_requests} answered requests",
        )
    if champion.successes < g.min_requests or champion.p95_ms is None or champion.p95_ci_ms is None:
        status: CheckStatus = "wait" if champion_serves else "skip"
        return GuardrailCheck(
            "latency_p95",
            status,
            None,
            limit,
            f"champion has {champion.successes} of {g.min_requests} answered requests",
        )
    ratio = candidate.p95_ms / max(champion.p95_ms, 1e-6)
    low, high = candidate.p95_ci_ms[0], champion.p95_ci_ms[1]
    shown = (
        f"p95 {candidate.p95_ms:.2f} ms (at least {low:.2f}) vs champion {champion.p95_ms:.2f} ms "
        f"(at most {high:.2f}), x{ratio:.2f}"
    )
    if low > limit * high and low - high > g.latency_floor_ms:
        return GuardrailCheck(
            "latency_p95", "fail", ratio, limit, f"candidate latency regressed: {shown}, limit x{limit:g}"
        )
    return GuardrailCheck("latency_p95", "pass", ratio, limit, f"candidate {shown}, limit x{limit:g}")


@dataclass(frozen=True)
class ShiftResult:
    """How far the candidate's predictions moved from the champion's.

    Attributes:
        psi: Population stability index.
        js: Jensen-Shannon distance (natural log).
        kind: ``numeric`` (binned on the champion's quantiles) or ``categorical``.
        bins: Bins or categories compared.
        noise: The PSI that two samples of these sizes from ONE distribution stay under 99.9% of
            the time: ``chi2.ppf(0.999, bins - 1) * (1/n_ref + 1/n_cur)`` (PSI is, to first order,
            the two-sample chi-squared statistic scaled by that factor).
    """

    psi: float
    js: float
    kind: str
    bins: int
    noise: float = 0.0


def prediction_shift(
    reference: Sequence[Any] | np.ndarray, current: Sequence[Any] | np.ndarray, *, max_bins: int = 10
) -> ShiftResult:
    """PSI and JS distance between two prediction samples.

    Numbers with more distinct values than ``max_bins`` are binned on the reference's quantiles,
    with as many bins as keep about ten observations each in the smaller sample (between 2 and
    ``max_bins``), because PSI over sparse bins measures sampling noise; labels and numbers
    with few distinct values are compared category by category. Empty shares are filled as
    Evidently does before taking logarithms.

    Raises:
        ValueError: either sample is empty.
    """
    ref = np.asarray(reference)
    cur = np.asarray(current)
    if ref.size == 0 or cur.size == 0:
        raise ValueError("both prediction samples must be non-empty")
    numeric = ref.dtype.kind in "fiu" and cur.dtype.kind in "fiu"
    if numeric:
        ref = ref.astype(np.float64)
        cur = cur.astype(np.float64)
        ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
        if ref.size == 0 or cur.size == 0:
            raise ValueError("both prediction samples must hold finite numbers")
        numeric = np.unique(np.concatenate((ref, cur))).size > max_bins
    if numeric:
        bins = int(min(max_bins, max(2, min(ref.size, cur.size) // _MIN_PER_BIN)))
        edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
        ref_counts = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=edges.size + 1)
        cur_counts = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=edges.size + 1)
        kind = "numeric"
    else:
        ref_s, cur_s = ref.astype(str), cur.astype(str)
        cats = np.unique(np.concatenate((ref_s, cur_s)))
        ref_counts = np.array([np.count_nonzero(ref_s == c) for c in cats], dtype=np.float64)
        cur_counts = np.array([np.count_nonzero(cur_s == c) for c in cats], dtype=np.float64)
        kind = "categorical"
    n_ref, n_cur = float(ref_counts.sum()), float(cur_counts.sum())
    p, q = binned_shares(ref_counts, cur_counts, n_ref, n_cur, feel_zeroes=True)
    js = jensenshannon(ref_counts / n_ref, cur_counts / n_cur) if ref_counts.size > 1 else 0.0
    noise = _chi2_999(int(ref_counts.size) - 1) * (1.0 / n_ref + 1.0 / n_cur)
    return ShiftResult(psi(p, q), float(js), kind, int(ref_counts.size), noise)


def _chi2_999(df: int) -> float:
    from scipy.stats import chi2

    return float(chi2.ppf(0.999, max(df, 1)))


def check_shift(
    g: Guardrails, champion: ArmMetrics, candidate: ArmMetrics, *, champion_serves: bool = True
) -> GuardrailCheck:
    """Fail when the PSI between the arms' predictions is over ``max_prediction_psi`` and beyond
    sampling noise.

    With a few dozen requests per arm, two samples of one model's predictions often differ by a
    PSI of 0.25 by chance; a shift counts only when it is also above what such samples stay under
    99.9% of the time (:attr:`ShiftResult.noise`), as small samples call for a test rather than a
    distance. With hundreds of requests the noise bound falls far below the limit.
    """
    limit = g.max_prediction_psi
    if candidate.successes < g.min_requests or not candidate.predictions:
        return GuardrailCheck(
            "prediction_shift",
            "wait",
            None,
            limit,
            f"candidate has {candidate.successes} of {g.min_requests} answered requests",
        )
    if champion.successes < g.min_requests or not champion.predictions:
        status: CheckStatus = "wait" if champion_serves else "skip"
        return GuardrailCheck(
            "prediction_shift",
            status,
            None,
            limit,
            f"champion has {champion.successes} of {g.min_requests} answered requests",
        )
    try:
        shift = prediction_shift(champion.predictions, candidate.predictions)
    except ValueError as exc:
        return GuardrailCheck("prediction_shift", "skip", None, limit, f"not compared: {exc}")
    shown = f"PSI {shift.psi:.3f} (JS {shift.js:.3f}) over {shift.bins} {shift.kind} bins"
    if shift.psi > limit and shift.psi > shift.noise:
        return GuardrailCheck(
            "prediction_shift", "fail", shift.psi, limit, f"candidate predictions shifted: {shown}, limit {limit:g}"
        )
    if shift.psi > limit:
        return GuardrailCheck(
            "prediction_shift",
            "pass",
            shift.psi,
            limit,
            f"{shown}: over {limit:g} but within sampling noise at these sizes (bound {shift.noise:.3f})",
        )
    return GuardrailCheck("prediction_shift", "pass", shift.psi, limit, f"{shown}, limit {limit:g}")
