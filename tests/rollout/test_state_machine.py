"""The pure rollout state machine, plan validation and guardrail statistics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiw.errors import InvalidInputError, RolloutError
from aiw.mlops.rollout.guardrails import ArmMetrics, check_error_rate, prediction_shift
from aiw.mlops.rollout.plan import Guardrails, RolloutPlan, parse_duration, parse_steps
from aiw.mlops.rollout.state import (
    COMPLETED,
    PROMOTED,
    ROLLED_BACK,
    RUNNING,
    RolloutState,
    decide,
    manual_decision,
    start_state,
)

pytestmark = pytest.mark.unit

RNG = np.random.default_rng(0)
SCORES = RNG.beta(2, 8, size=20_000)  # what a fraud model's scores look like


def plan(**kw: object) -> RolloutPlan:
    base: dict[str, object] = {
        "model": "m",
        "candidate_version": 2,
        "champion_version": 1,
        "bake_s": 10.0,
        "guardrails": Guardrails(min_requests=50),
    }
    base.update(kw)
    return RolloutPlan(**base)  # type: ignore[arg-type]


def arm(
    n: int, errors: int = 0, *, latency_ms: float = 1.0, spread: float = 0.1, scores: np.ndarray | None = None
) -> ArmMetrics:
    ok = n - errors
    lat = latency_ms + spread * RNG.random(ok)
    values = (scores if scores is not None else RNG.choice(SCORES, size=ok)).tolist()
    return ArmMetrics.from_outcomes(lat, errors, values)


CHAMPION = arm(2000)


# -- the scenarios of the issue -------------------------------------------------------------------
def test_a_healthy_candidate_advances_step_by_step_to_100_and_promotes() -> None:
    p = plan()
    state = start_state(1000.0)
    now = 1000.0
    shares = [state.share(p)]
    actions = []
    for _ in range(20):
        now += p.bake_s
        d = decide(p, state, CHAMPION, arm(200), now)
        actions.append(d.action)
        if d.changes_state:
            state = d.state
            shares.append(state.share(p))
        if state.final:
            break
    assert actions == ["advance", "advance", "advance", "advance", "promote"]
    assert shares == [0.05, 0.10, 0.25, 0.50, 1.0, 1.0]
    assert state.status == PROMOTED
    assert "promoting to @champion" in d.reason and d.code == "healthy"
    assert {c.name: c.status for c in d.checks} == {
        "error_rate": "pass",
        "latency_p95": "pass",
        "prediction_shift": "pass",
    }


def test_each_advance_restarts_the_bake_window() -> None:
    p = plan()
    d = decide(p, start_state(0.0), CHAMPION, arm(200), 10.0)
    assert d.action == "advance" and d.state.step_started_at == 10.0 and d.state.step_index == 1
    again = decide(p, d.state, CHAMPION, arm(200), 15.0)
    assert again.action == "continue" and again.code == "baking" and "5.0 of 10 s" in again.reason


def test_a_candidate_failing_10_percent_is_rolled_back() -> None:
    p = plan()
    d = decide(p, start_state(0.0), CHAMPION, arm(200, errors=20), 10.0)
    assert d.action == "rollback" and d.code == "error_rate" and d.state.status == ROLLED_BACK
    assert d.state.share(p) == 0.0
    assert "20 errors in 200 requests (10.0%)" in d.reason and "over 5.0%" in d.reason


def test_errors_roll_back_during_the_bake_window_without_waiting_for_it() -> None:
    p = plan()  # min_requests 50, max 5%: 3 errors can never come back under 5% of 50
    early = decide(p, start_state(0.0), CHAMPION, arm(10, errors=3), 0.5)
    assert early.action == "rollback" and early.code == "error_rate"
    # 2 errors in 10 requests is 20%, but 40 clean requests would bring it to 4%: not yet certain
    assert decide(p, start_state(0.0), CHAMPION, arm(10, errors=2), 0.5).action == "continue"
    # once min_requests are in, the measured rate decides
    assert decide(p, start_state(0.0), CHAMPION, arm(60, errors=3), 0.5).action == "continue"  # 5.0%
    assert decide(p, start_state(0.0), CHAMPION, arm(50, errors=3), 0.5).action == "rollback"


def test_too_few_requests_holds_and_says_how_many() -> None:
    p = plan()
    d = decide(p, start_state(0.0), CHAMPION, arm(12), 30.0)
    assert d.action == "hold" and d.code == "too_little_traffic" and d.state == start_state(0.0)
    assert "candidate has 12 of 50 requests" in d.reason
    thin_champion = decide(p, start_state(0.0), arm(20), arm(80), 30.0)
    assert thin_champion.action == "hold" and "champion has 20 of 50" in thin_champion.reason


def test_a_latency_regression_rolls_back() -> None:
    p = plan()
    slow = arm(200, latency_ms=8.0)
    d = decide(p, start_state(0.0), arm(2000, latency_ms=5.0), slow, 10.0)
    assert d.action == "rollback" and d.code == "latency_p95"
    assert "latency regressed" in d.reason and "limit x1.2" in d.reason
    check = next(c for c in d.checks if c.name == "latency_p95")
    assert check.value is not None and 1.5 < check.value < 1.7


def test_latency_differences_under_the_floor_are_noise() -> None:
    p = plan()  # floor 2 ms: 0.1 ms vs 0.3 ms is x3 but nothing a caller notices
    d = decide(p, start_state(0.0), arm(2000, latency_ms=0.1, spread=0.0), arm(200, latency_ms=0.3, spread=0.0), 10.0)
    assert d.action == "advance"
    strict = plan(guardrails=Guardrails(min_requests=50, latency_floor_ms=0.0))
    assert (
        decide(
            strict, start_state(0.0), arm(2000, latency_ms=0.1, spread=0.0), arm(200, latency_ms=0.3, spread=0.0), 10.0
        ).action
        == "rollback"
    )


def test_latency_within_the_ratio_passes() -> None:
    d = decide(
        plan(), start_state(0.0), arm(2000, latency_ms=10.0, spread=0.0), arm(200, latency_ms=11.5, spread=0.0), 10.0
    )
    assert d.action == "advance"


def test_a_prediction_shift_rolls_back() -> None:
    shifted = np.clip(RNG.choice(SCORES, size=200) + 0.3, 0, 1)
    d = decide(plan(), start_state(0.0), CHAMPION, arm(200, scores=shifted), 10.0)
    assert d.action == "rollback" and d.code == "prediction_shift" and "PSI" in d.reason


def test_label_predictions_are_compared_as_categories() -> None:
    champ = ArmMetrics.from_outcomes([1.0] * 400, 0, ["approve"] * 360 + ["review"] * 40)
    same = ArmMetrics.from_outcomes([1.0] * 100, 0, ["approve"] * 89 + ["review"] * 11)
    flipped = ArmMetrics.from_outcomes([1.0] * 100, 0, ["approve"] * 40 + ["review"] * 60)
    assert decide(plan(), start_state(0.0), champ, same, 10.0).action == "advance"
    d = decide(plan(), start_state(0.0), champ, flipped, 10.0)
    assert d.action == "rollback" and "categorical" in d.reason


def test_the_100_percent_step_compares_with_the_champions_earlier_traffic_or_skips() -> None:
    p = plan()
    last = RolloutState(RUNNING, p.last_step, 0.0)
    assert decide(p, last, CHAMPION, arm(200), 10.0).action == "promote"
    # after a restart at 100% the champion has served nothing: judged on the error rate alone
    d = decide(p, last, ArmMetrics(), arm(200), 10.0)
    assert d.action == "promote"
    assert {c.name: c.status for c in d.checks}["latency_p95"] == "skip"
    # ... but before 100% a champion without traffic is a reason to wait
    assert decide(p, start_state(0.0), ArmMetrics(), arm(200), 10.0).action == "hold"


def test_a_healthy_shadow_completes_and_a_failing_one_is_stopped() -> None:
    p = plan(mode="shadow", steps=(5, 100))
    assert p.steps == (100.0,)
    state = start_state(0.0)
    assert state.share(p) == 0.0 and state.mirror(p) == 1.0
    d = decide(p, state, CHAMPION, arm(300), 10.0)
    assert d.action == "complete" and d.state.status == COMPLETED and d.state.mirror(p) == 0.0
    bad = decide(p, state, CHAMPION, arm(300, errors=60), 3.0)
    assert bad.action == "rollback" and bad.state.mirror(p) == 0.0


def test_operator_decisions() -> None:
    p = plan()
    state = start_state(0.0)
    back = manual_decision(p, state, "rollback", "pager went off")
    assert back.action == "rollback" and back.code == "operator" and "pager went off" in back.reason
    up = manual_decision(p, state, "promote", "")
    assert up.state.status == PROMOTED and "no reason given" in up.reason
    with pytest.raises(RolloutError, match="already rolled_back"):
        manual_decision(p, back.state, "promote", "x")
    with pytest.raises(RolloutError, match="cannot be promoted"):
        manual_decision(plan(mode="shadow"), state, "promote", "x")
    with pytest.raises(InvalidInputError, match="promote or roll back"):
        manual_decision(p, state, "advance", "x")


def test_a_finished_rollout_takes_no_decision() -> None:
    with pytest.raises(RolloutError, match="only a running rollout"):
        decide(plan(), RolloutState(PROMOTED, 4, 0.0), CHAMPION, arm(200), 10.0)


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(0, 400), err=st.integers(0, 400), elapsed=st.floats(0, 30), step=st.integers(0, 4), slow=st.booleans()
)
def test_the_machine_never_advances_past_a_failing_guardrail(
    n: int, err: int, elapsed: float, step: int, slow: bool
) -> None:
    err = min(err, n)
    p = plan()
    cand = arm(n, err, latency_ms=9.0 if slow else 1.0)
    champ = arm(2000, latency_ms=1.0)
    d = decide(p, RolloutState(RUNNING, step, 0.0), champ, cand, elapsed)
    error_check = check_error_rate(p.guardrails, cand)
    if error_check.status == "fail":
        assert d.action == "rollback"
    if d.action in ("advance", "promote"):
        assert elapsed >= p.bake_s and n >= 50 and err / n <= 0.05 and not slow
        assert d.state.step_index == step + (d.action == "advance")
    if elapsed < p.bake_s:
        assert d.action in ("continue", "rollback")


# -- plans ---------------------------------------------------------------------------------------
def test_plan_defaults_come_from_settings_and_overrides_win() -> None:
    from aiw.settings import build_settings

    s = build_settings().rollout
    p = RolloutPlan.from_settings(s, "m", 3, 1)
    assert p.steps == (5, 10, 25, 50, 100) and p.bake_s == 60 and p.guardrails.max_error_rate == 0.05
    assert p.guardrails.max_p95_ratio == 1.2 and p.guardrails.min_requests == 100
    q = RolloutPlan.from_settings(s, "m", 3, 1, steps="20, 100", bake_s="500ms", min_requests=10)
    assert q.steps == (20, 100) and q.bake_s == 0.5 and q.guardrails.min_requests == 10
    assert RolloutPlan.from_dict(q.to_dict()) == q
    assert q.describe() == "canary 20% -> 100%, bake 0.5 s"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": (10, 5, 100)}, "strictly increasing"),
        ({"steps": (5, 50)}, "ending at 100"),
        ({"steps": (0, 100)}, "strictly increasing percentages in (0, 100]"),
        ({"steps": (50, 150)}, "(0, 100]"),
        ({"steps": ()}, "strictly increasing"),
        ({"bake_s": 0}, "'bake_s' parameter of RolloutPlan must be a duration"),
        ({"candidate_version": 1}, "already is @champion"),
        ({"candidate_version": 0}, "'candidate_version' parameter of RolloutPlan must be a positive integer"),
        ({"mode": "blue-green"}, "one of canary, shadow"),
    ],
)
def test_bad_plans_are_refused_with_the_rule(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        plan(**kwargs)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_error_rate": 1.5}, "'max_error_rate' parameter of Guardrails must be a float in [0, 1). Got 1.5"),
        ({"max_p95_ratio": 0.9}, "a float >= 1"),
        ({"min_requests": 0}, "an integer in [1, 10000000]"),
        ({"max_prediction_psi": 0}, "a float > 0"),
    ],
)
def test_bad_guardrails_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        Guardrails(**kwargs)  # type: ignore[arg-type]
    assert message in str(info.value)


def test_durations_and_steps_parse() -> None:
    assert parse_duration("60s") == 60 and parse_duration("500ms") == 0.5 and parse_duration("2m") == 120
    assert parse_duration("1h") == 3600 and parse_duration("1.5") == 1.5 and parse_duration(3) == 3.0
    for bad in ("soon", "-1s", "0", "1d"):
        with pytest.raises(InvalidInputError, match="duration"):
            parse_duration(bad)
    assert parse_steps("5,10, 25%,100") == (5, 10, 25, 100)
    with pytest.raises(InvalidInputError, match="percentage"):
        parse_steps("5,ten,100")


# -- statistics ------------------------------------------------------------------------------------
def test_prediction_shift_is_small_for_the_same_distribution_and_large_for_a_moved_one() -> None:
    from aiw.mlops.monitoring._stats import binned_shares, psi

    same = prediction_shift(SCORES[:5000], SCORES[5000:5400])
    assert same.kind == "numeric" and same.bins == 10 and same.psi < 0.1 and same.js < 0.1
    moved = prediction_shift(SCORES[:5000], SCORES[5000:5400] + 0.2)
    assert moved.psi > 0.5
    # the same formula as the monitoring package on the same bins
    edges = np.unique(np.quantile(SCORES[:5000], np.linspace(0, 1, 11)[1:-1]))
    a = np.bincount(np.searchsorted(edges, SCORES[:5000], side="right"), minlength=10)
    b = np.bincount(np.searchsorted(edges, SCORES[5000:5400] + 0.2, side="right"), minlength=10)
    p, q = binned_shares(a, b, 5000, 400, feel_zeroes=True)
    assert moved.psi == pytest.approx(psi(p, q), abs=1e-12)


def test_prediction_shift_uses_fewer_bins_for_small_samples_and_categories_for_few_values() -> None:
    assert prediction_shift(SCORES[:1000], SCORES[1000:1030]).bins == 3
    labels = prediction_shift([0, 1, 0, 0, 1] * 20, [1, 1, 1, 0, 1] * 20)
    assert labels.kind == "categorical" and labels.bins == 2 and labels.psi > 0.25
    with pytest.raises(ValueError, match="non-empty"):
        prediction_shift([], [1.0])


def test_arm_metrics_summarise_outcomes() -> None:
    m = ArmMetrics.from_outcomes([1.0, 2.0, 3.0, 4.0], 1, [0.1, 0.3])
    assert m.requests == 5 and m.errors == 1 and m.successes == 4 and m.error_rate == pytest.approx(0.2)
    assert m.p50_ms == pytest.approx(2.5)
    d = m.to_dict()
    assert d["requests"] == 5 and d["prediction_mean"] == pytest.approx(0.2) and "predictions" in d
    empty = ArmMetrics.from_outcomes([], 0)
    assert empty.p95_ms is None and empty.error_rate == 0.0


def test_latency_noise_is_not_a_regression_but_a_real_slowdown_is() -> None:
    from aiw.mlops.rollout.guardrails import check_latency

    rng = np.random.default_rng(5)
    g = Guardrails(min_requests=30, latency_floor_ms=0.0)
    same = slower = 0
    for _ in range(300):
        champion = ArmMetrics.from_outcomes(rng.lognormal(1.0, 0.6, 150), 0)
        same += check_latency(g, champion, ArmMetrics.from_outcomes(rng.lognormal(1.0, 0.6, 150), 0)).status == "fail"
        slower += (
            check_latency(g, champion, ArmMetrics.from_outcomes(2.0 * rng.lognormal(1.0, 0.6, 150), 0)).status == "fail"
        )
    assert same <= 3  # at most 1% false alarms for two arms of one heavy-tailed latency distribution
    assert slower >= 240  # a model twice as slow is caught at least 80% of the time on 150 requests


def test_a_psi_over_the_limit_within_sampling_noise_is_not_a_shift() -> None:
    from aiw.mlops.rollout.guardrails import check_shift

    rng = np.random.default_rng(11)
    g = Guardrails(min_requests=30)
    false_alarms = caught = 0
    for _ in range(400):
        champion = ArmMetrics.from_outcomes([1.0] * 300, 0, rng.choice(SCORES, 300).tolist())
        same = ArmMetrics.from_outcomes([1.0] * 30, 0, rng.choice(SCORES, 30).tolist())
        moved = ArmMetrics.from_outcomes([1.0] * 30, 0, (rng.choice(SCORES, 30) + 0.25).tolist())
        false_alarms += check_shift(g, champion, same).status == "fail"
        caught += check_shift(g, champion, moved).status == "fail"
    assert false_alarms <= 2  # 30 requests of the same model: PSI alone would exceed 0.25 now and then
    assert caught >= 360  # a real shift of the scores is still caught at 30 requests
    noisy = prediction_shift(SCORES[:300], SCORES[300:330])
    assert noisy.bins == 3 and 0.3 < noisy.noise < 0.7
    assert prediction_shift(SCORES[:5000], SCORES[5000:6000]).noise < 0.05  # large samples: the limit rules
