"""Forecasts and anomalies, from Python and from SQL, on synthetic series and on the sample data."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

from aiw.errors import InvalidInputError
from aiw.sql.forecast import (
    ANOMALY_COLUMNS,
    FORECAST_COLUMNS,
    ForecastWarning,
    detect_anomalies,
    forecast,
    load_history,
)
from aiw.sql.runner import run_query

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def daily() -> pd.DataFrame:
    """Two daily count series over two years, weekly season, with three spikes injected in 'b'."""
    rng = np.random.default_rng(3)
    days = pd.date_range("2023-01-01", periods=730, freq="D")
    week = 1 + 0.4 * np.sin(np.arange(730) * 2 * np.pi / 7)
    frames = []
    for name, base in (("a", 30.0), ("b", 12.0)):
        y = rng.poisson(base * week).astype(float)
        if name == "b":
            y[[100, 400, 650]] += 60
        frames.append(pd.DataFrame({"day": days, "n": y, "line": name}))
    return pd.concat(frames, ignore_index=True)


def test_forecast_shape_intervals_and_timestamps(daily: pd.DataFrame) -> None:
    fc = forecast(daily, "day", "n", "line", horizon=14)
    assert list(fc.columns) == FORECAST_COLUMNS
    assert len(fc) == 28 and set(fc["series"]) == {"a", "b"}
    assert (fc["lower"] <= fc["forecast"]).all() and (fc["forecast"] <= fc["upper"]).all()
    a = fc[fc["series"] == "a"]
    assert list(a["ts"]) == list(pd.date_range(daily["day"].max() + pd.Timedelta(days=1), periods=14, freq="D"))
    assert set(fc["model"]) == {"AutoETS"}
    # the weekly pattern is forecast: the week's high and low days differ clearly
    assert a["forecast"].max() - a["forecast"].min() > 10
    wide = forecast(daily[daily["line"] == "a"], "day", "n", horizon=14, level=99)
    assert (wide["upper"] - wide["lower"]).mean() > (a["upper"] - a["lower"]).mean()
    assert set(wide["series"]) == {"all"}


def test_short_series_fall_back_to_naive_and_say_so() -> None:
    short = pd.DataFrame({"day": pd.date_range("2024-01-01", periods=8, freq="D"), "n": [5, 6, 5, 7, 6, 8, 7, 9]})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fc = forecast(short, "day", "n", horizon=3)
    assert any(issubclass(w.category, ForecastWarning) and "fewer than 12" in str(w.message) for w in caught)
    assert list(fc["model"]) == ["Naive"] * 3 and list(fc["forecast"]) == [9.0] * 3
    assert any("naive" in n for n in fc.attrs["notes"])
    assert (fc["lower"] < fc["forecast"]).all() and (fc["upper"] > fc["forecast"]).all()


def test_monthly_series_and_gaps() -> None:
    months = pd.date_range("2019-01-01", periods=60, freq="MS")
    y = 100 + 20 * np.sin(np.arange(60) * 2 * np.pi / 12) + np.arange(60)
    frame = pd.DataFrame({"m": months, "v": y}).drop(index=[10, 11])  # two months missing
    fc = forecast(frame, "m", "v", horizon=6)
    assert list(fc["ts"]) == list(pd.date_range("2024-01-01", periods=6, freq="MS"))
    assert any("interpolated" in n for n in fc.attrs["notes"])
    assert abs(fc["forecast"].iloc[0] - (100 + 60)) < 15  # January: trend level, seasonal zero crossing


def test_bad_input_is_refused(daily: pd.DataFrame) -> None:
    with pytest.raises(InvalidInputError, match="more than one value"):
        forecast(pd.concat([daily, daily]), "day", "n", "line")
    with pytest.raises(InvalidInputError, match="horizon"):
        forecast(daily, "day", "n", horizon=0)
    with pytest.raises(InvalidInputError, match="level"):
        forecast(daily, "day", "n", "line", level=100)
    with pytest.raises(InvalidInputError, match="nope"):
        forecast(daily, "day", "nope")
    with pytest.raises(InvalidInputError, match="fill"):
        detect_anomalies(daily, "day", "n", "line", fill="backwards")  # type: ignore[arg-type]


def test_detect_anomalies_finds_the_spikes(daily: pd.DataFrame) -> None:
    an = detect_anomalies(daily, "day", "n", "line")
    assert list(an.columns) == ANOMALY_COLUMNS and len(an) == len(daily)
    flagged = an[an["is_anomaly"]]
    spikes = set(pd.to_datetime(["2023-04-11", "2024-02-05", "2024-10-12"]))
    found = set(flagged[flagged["series"] == "b"]["ts"])
    assert spikes <= found
    assert len(flagged) < 0.03 * len(an)  # a 99% interval flags few ordinary days
    spike = an[(an["series"] == "b") & (an["ts"] == pd.Timestamp("2024-02-05"))].iloc[0]
    assert spike["distance"] > 4 and spike["percentile"] > 0.999 and spike["y"] > spike["upper"]
    assert (an["lower"] <= an["upper"]).all()


def test_sql_macros(sample_ws: Any) -> None:
    source = "$$SELECT incident_date AS day, line_of_business, count(*) AS n FROM claims GROUP BY ALL$$"
    fc = run_query(
        sample_ws,
        f"SELECT * FROM ai_forecast({source}, 'day', 'n', series_col := 'line_of_business', "
        "horizon := 7, fill := 'zero')",
        row_limit=1000,
    )
    assert fc.columns == FORECAST_COLUMNS and fc.row_count == 35
    rows = fc.rows()
    assert all(r[3] <= r[2] <= r[4] for r in rows)
    single = run_query(
        sample_ws,
        "SELECT * FROM ai_forecast('SELECT incident_date, count(*)::DOUBLE AS n FROM "
        "claims GROUP BY 1', 'incident_date', 'n', horizon := 3)",
    ).rows()
    assert [r[0] for r in single] == ["all"] * 3
    too_few = run_query(
        sample_ws,
        "SELECT model FROM ai_forecast('SELECT * FROM sample_anomalies', 'day', "
        "'injected_claims', horizon := 2, fill := 'none')",
    ).rows()
    assert {r[0] for r in too_few} == {"Naive"}


def test_anomalies_on_the_sample_data_find_the_injected_ones(sample_ws: Any) -> None:
    truth = run_query(sample_ws, "SELECT CAST(day AS TIMESTAMP), line_of_business, kind FROM sample_anomalies").rows()
    assert any(k == "spike" for *_, k in truth) and any(k == "drop" for *_, k in truth)
    history = load_history(sample_ws, "claims", "incident_date", series_col="line_of_business", agg="count")
    an = detect_anomalies(history, "ts", "y", "series", fill="zero")
    flagged = {
        (str(s), pd.Timestamp(t).isoformat()) for s, t in an[an["is_anomaly"]][["series", "ts"]].itertuples(index=False)
    }
    for day, line, _kind in truth:
        assert (line, pd.Timestamp(day).isoformat()) in flagged, (day, line, _kind)
    assert len(flagged) < 0.03 * len(an)
    # the same through SQL
    sql_hits = run_query(
        sample_ws,
        """
        SELECT count(*) FROM ai_detect_anomalies($$SELECT incident_date AS day, line_of_business, count(*) AS n
                                                   FROM claims GROUP BY ALL$$, 'day', 'n',
                                                 series_col := 'line_of_business', fill := 'zero') a
        JOIN sample_anomalies s ON s.day = a.ts AND s.line_of_business = a.series
        WHERE a.is_anomaly""",
    ).rows()[0][0]
    assert sql_hits == len(truth)


def test_long_seasons_use_mstl_and_method_can_force_ets() -> None:
    hours = pd.date_range("2024-03-01", periods=24 * 12, freq="h")
    y = 50 + 20 * np.sin(np.arange(len(hours)) * 2 * np.pi / 24) + np.random.default_rng(1).normal(0, 2, len(hours))
    frame = pd.DataFrame({"h": hours, "v": y})
    auto = forecast(frame, "h", "v", horizon=24)
    assert set(auto["model"]) == {"MSTL"} and auto["ts"].iloc[0] == hours[-1] + pd.Timedelta(hours=1)
    # the daily cycle is forecast: peak and trough about 40 apart, at the right hours
    assert auto["forecast"].max() - auto["forecast"].min() > 30
    peak = auto["ts"].iloc[int(np.argmax(auto["forecast"].to_numpy()))]
    assert abs(peak.hour - 6) <= 1
    ets = forecast(frame, "h", "v", horizon=24, method="ets")
    assert set(ets["model"]) == {"AutoETS"}
    with pytest.raises(InvalidInputError, match="method"):
        forecast(frame, "h", "v", method="prophet")  # type: ignore[arg-type]
