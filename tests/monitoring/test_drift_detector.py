"""DataDriftDetector: the fit/score API, verdicts, overrides, inference, and the JSON profile."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats

from aiw.errors import ConflictError, InvalidInputError
from aiw.mlops.monitoring.drift import DataDriftDetector, DriftReport, ReferenceProfile
from aiw.mlops.monitoring.html import render_html

pytestmark = pytest.mark.unit


def _frame(n: int, *, shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = [0.5, 0.3, 0.2] if shift == 0 else [0.2, 0.3, 0.5]
    return pd.DataFrame(
        {
            "amount": rng.lognormal(3 + shift, 1, n),
            "age": rng.integers(18, 90, n),
            "region": rng.choice(["north", "south", "east"], n, p=p),
            "fraud": rng.random(n) < (0.1 + shift / 4),
            "channel": rng.choice([1, 2, 3], n),
        }
    )


@pytest.fixture(scope="module")
def big_ref() -> pd.DataFrame:
    return _frame(5000, seed=1)


def test_identical_data_does_not_drift(big_ref) -> None:  # type: ignore[no-untyped-def]
    report = DataDriftDetector().fit(big_ref).score(big_ref)
    assert not report.dataset_drift and report.n_drifted == 0
    for col in report.columns:
        assert col.score == pytest.approx(1.0 if col.score_type == "p_value" else 0.0, abs=1e-12), col


def test_shifted_data_drifts_with_evidently_methods(big_ref) -> None:  # type: ignore[no-untyped-def]
    report = DataDriftDetector().fit(big_ref).score(_frame(3000, shift=1.0, seed=2))
    methods = {c.column: c.method for c in report.columns}
    assert methods == {
        "amount": "wasserstein",
        "age": "wasserstein",
        "region": "jensenshannon",
        "fraud": "jensenshannon",
        "channel": "jensenshannon",
    }
    assert {"amount", "region", "fraud"} <= set(report.drifted_columns)
    assert report.dataset_drift and report.share_drifted >= 0.5
    amount = report.column("amount")
    want = stats.wasserstein_distance(big_ref.amount, _frame(3000, shift=1.0, seed=2).amount) / np.std(big_ref.amount)
    assert amount.score == pytest.approx(want, rel=1e-10) and amount.exact


def test_small_reference_uses_statistical_tests() -> None:
    ref, cur = _frame(400, seed=3), _frame(400, shift=0.5, seed=4)
    report = DataDriftDetector().fit(ref).score(cur)
    assert {c.column: c.method for c in report.columns} == {
        "amount": "ks",
        "age": "ks",
        "region": "chisquare",
        "fraud": "z",
        "channel": "chisquare",
    }
    assert report.column("amount").score == pytest.approx(stats.ks_2samp(ref.amount, cur.amount).pvalue, rel=1e-12)


def test_unfitted_and_bad_parameters_raise_clear_errors(big_ref) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConflictError, match="not fitted"):
        DataDriftDetector().score(big_ref)
    expected = r"'drift_share' parameter of DataDriftDetector must be a float in \(0, 1\]\. Got 2"
    with pytest.raises(InvalidInputError, match=expected):
        DataDriftDetector(drift_share=2).fit(big_ref)
    with pytest.raises(InvalidInputError, match="'max_points'"):
        DataDriftDetector(max_points=10).fit(big_ref)
    with pytest.raises(InvalidInputError, match="names 'bogus'"):
        DataDriftDetector(methods={"amount": "bogus"}).fit(big_ref)
    with pytest.raises(InvalidInputError, match="does not apply"):
        DataDriftDetector(methods={"region": "ks"}).fit(big_ref)
    with pytest.raises(InvalidInputError, match="not in the reference"):
        DataDriftDetector(columns=["nope"]).fit(big_ref)
    with pytest.raises(InvalidInputError, match="pandas DataFrame or a pyarrow Table"):
        DataDriftDetector().fit([[1, 2]])
    det = DataDriftDetector().fit(big_ref)
    with pytest.raises(InvalidInputError, match="missing from the current data: amount"):
        det.score(big_ref.drop(columns=["amount"]))


def test_constructor_only_stores_parameters() -> None:
    det = DataDriftDetector(drift_share=7, max_points=3)  # invalid, but not checked until fit
    assert det.get_params()["drift_share"] == 7 and not hasattr(det, "profile_")


def test_overrides_of_method_threshold_and_type(big_ref) -> None:  # type: ignore[no-untyped-def]
    cur = _frame(3000, shift=0.2, seed=5)
    det = DataDriftDetector(
        methods={"amount": "psi", "region": "chisquare"},
        thresholds={"amount": 5.0},
        column_types={"channel": "numerical"},
    ).fit(big_ref)
    report = det.score(cur)
    amount = report.column("amount")
    assert amount.method == "psi" and amount.threshold == 5.0 and not amount.drifted
    assert report.column("region").method == "chisquare"
    assert report.column("channel").kind == "numerical"
    assert det.score(cur, drift_share=0.01).dataset_drift


def test_type_inference_skips_text_and_dates() -> None:
    n = 300
    df = pd.DataFrame(
        {
            "note": [f"free text {i}" for i in range(n)],
            "when": pd.date_range("2024-01-01", periods=n, freq="h"),
            "few_ints": np.arange(n) % 4,
            "x": np.linspace(0, 1, n),
        }
    )
    det = DataDriftDetector().fit(df)
    assert set(det.profile_.skipped) == {"note", "when"}
    assert det.profile_.columns["few_ints"].kind == "categorical"
    assert list(det.feature_names_in_) == ["few_ints", "x"]


def test_arrow_and_pandas_give_the_same_scores(big_ref) -> None:  # type: ignore[no-untyped-def]
    cur = _frame(2000, shift=0.3, seed=6)
    with_nulls = cur.copy()
    with_nulls.loc[:9, "amount"] = np.nan
    a = DataDriftDetector().fit(big_ref).score(with_nulls)
    b = DataDriftDetector().fit(pa.Table.from_pandas(big_ref)).score(pa.Table.from_pandas(with_nulls))
    for ca, cb in zip(a.columns, b.columns, strict=True):
        assert (ca.column, ca.method) == (cb.column, cb.method)
        assert ca.score == pytest.approx(cb.score, rel=1e-12, abs=1e-15)
    assert a.column("amount").missing_current == 10 and a.column("amount").n_current == 1990


def test_profile_json_round_trip(big_ref) -> None:  # type: ignore[no-untyped-def]
    cur = _frame(3000, shift=0.4, seed=7)
    det = DataDriftDetector(thresholds={"age": 0.2}).fit(big_ref)
    text = det.profile_.to_json()
    assert len(text) < 200_000
    again = DataDriftDetector.from_profile(json.loads(text))
    assert again.thresholds == {"age": 0.2}
    assert [c.score for c in again.score(cur).columns] == [c.score for c in det.score(cur).columns]
    with pytest.raises(InvalidInputError, match="Not a drift profile"):
        ReferenceProfile.from_dict({"format": "other"})


def test_sketched_profile_is_compact_and_close() -> None:
    gen = np.random.default_rng(11)
    ref = pd.DataFrame({"x": gen.normal(size=60_000)})
    cur = pd.DataFrame({"x": gen.normal(0.05, 1, size=20_000)})
    exact = DataDriftDetector(max_points=None).fit(ref)
    sketch = DataDriftDetector(max_points=10_000).fit(ref)
    assert len(sketch.profile_.to_json()) < len(exact.profile_.to_json()) / 3
    a, b = exact.score(cur).column("x"), sketch.score(cur).column("x")
    assert a.exact and not b.exact
    assert b.score == pytest.approx(a.score, abs=1e-3)


def test_report_json_and_html(big_ref) -> None:  # type: ignore[no-untyped-def]
    report = DataDriftDetector().fit(big_ref).score(_frame(3000, shift=1.0, seed=8))
    report.subject = "table:claims"
    data = json.loads(report.to_json())
    assert data["dataset_drift"] is True and data["subject"] == "table:claims"
    again = DriftReport.from_dict(data)
    assert again.drifted_columns == report.drifted_columns
    page = render_html(data)
    assert page.count("<svg") == report.n_columns and "DATASET DRIFT" in page
    assert "<script" not in page
