"""Forecasting and anomaly detection over one or many time series, from Python and from SQL.

Python::

    fc = forecast(df, "day", "claims", series_col="line_of_business", horizon=30)
    # columns: series, ts, forecast, lower, upper, model   (95% interval by default)
    an = detect_anomalies(df, "day", "claims", series_col="line_of_business")
    # columns: series, ts, y, forecast, lower, upper, is_anomaly, percentile, distance, model

SQL (table macros bound on every warehouse connection; the source is a table name or a query,
conveniently dollar-quoted)::

    SELECT * FROM ai_forecast('daily_claims', 'day', 'n', horizon := 30);
    SELECT * FROM ai_forecast($$SELECT incident_date AS day, count(*) AS n, line_of_business
                                FROM claims GROUP BY ALL$$, 'day', 'n',
                              series_col := 'line_of_business', horizon := 30, fill := 'zero');
    SELECT * FROM ai_detect_anomalies('daily_claims', 'day', 'n', level := 99) WHERE is_anomaly;

(DuckDB 1.4 cannot define table functions in Python, so the macros group the rows per series
into lists and call the vectorised scalar functions ``ai_forecast_series(ts[], y[], horizon,
level, fill, method)`` and ``ai_anomaly_series(ts[], y[], level, fill)``, which return lists of
structs and may also be called directly. The macros' optional arguments: ``series_col``,
``horizon`` (30), ``level`` (95 for forecasts, 99 for anomalies), ``fill`` and ``method``.)

Method: statsforecast. The season length is inferred from the spacing of the timestamps (hourly
24, daily 7, weekly 52, monthly 12, quarterly 4) and used when the series holds at least two full
seasons. ``method='auto'`` fits AutoETS for seasons up to 12; for longer ones (hourly, weekly)
it decomposes the series with MSTL and extrapolates the trend with its drift, which on M4 hourly
was 30x faster than AutoETS over 24 seasons and more accurate (MASE 1.20 against 1.61);
``method='ets'`` always uses AutoETS (MSTL with an ETS trend beyond 24, the longest
season statsforecast's ETS supports). A series with fewer than 12 points gets a naive forecast
(the last value) and a :class:`ForecastWarning` that says so; the ``model`` column records which
model made each row.

Anomalies are in-sample one-step-ahead forecasts of an additive AutoETS: a first fit finds gross
outliers, those points are replaced by their fitted values, the model is fitted again on the
cleaned series, and each observation is compared with the cleaned model's one-step forecast, with
the interval from the cleaned residuals. So an anomaly neither widens the interval nor drags the
next days' forecasts with it. Counts (non-negative integers) are modelled after a square-root
(Anscombe) transform, which makes their noise near-normal.

Gaps in the timestamps are filled before fitting: ``fill='interpolate'`` (default, for levels),
``'zero'`` (for counts, where a missing day means nothing happened) or ``'none'`` (take the
points as evenly spaced).
"""

from __future__ import annotations

import re
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from aiw.errors import InvalidInputError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from aiw.workspace import Workspace

__all__ = [
    "ANOMALY_COLUMNS",
    "FORECAST_COLUMNS",
    "MIN_POINTS",
    "ForecastWarning",
    "detect_anomalies",
    "forecast",
    "load_history",
    "register_forecast_functions",
]

FORECAST_COLUMNS = ["series", "ts", "forecast", "lower", "upper", "model"]
"""Columns of :func:`forecast` (and of SQL ``ai_forecast``)."""

ANOMALY_COLUMNS = ["series", "ts", "y", "forecast", "lower", "upper", "is_anomaly", "percentile", "distance", "model"]
"""Columns of :func:`detect_anomalies` (and of SQL ``ai_detect_anomalies``): Snowflake's shape."""

MIN_POINTS = 12
"""Below this many points a series gets a naive forecast."""

Fill = Literal["interpolate", "zero", "none"]
_FILLS = ("interpolate", "zero", "none")
_SINGLE = "all"  # the series name when no series column is given
_NS_HOUR = 3_600 * 10**9
_NS_DAY = 24 * _NS_HOUR
# (step in ns, season length, name) for evenly spaced clocks; months are handled apart.
_FIXED_STEPS = [
    (60 * 10**9, 60, "minutely"),
    (15 * 60 * 10**9, 96, "15-minutely"),
    (30 * 60 * 10**9, 48, "half-hourly"),
    (_NS_HOUR, 24, "hourly"),
    (_NS_DAY, 7, "daily"),
    (7 * _NS_DAY, 52, "weekly"),
]
_MONTH_STEPS = {1: (12, "monthly"), 3: (4, "quarterly"), 12: (1, "yearly")}
_MAX_ETS_SEASON = 24  # statsforecast's ETS supports seasons up to 24
_MAX_AUTO_ETS_SEASON = 12
# Above 12, method="auto" decomposes the series with MSTL and extrapolates the deseasonalised trend
# with its drift: on the 414 M4 hourly series (m = 24) AutoETS took 0.86 s per series for MASE
# 1.61, MSTL with a drift trend 26 ms for MASE 1.20 (with an AAN ETS trend 54 ms, MASE 1.18; the
# standard Theta method 49 ms, MASE 2.45); see benchmarks/bench_forecast.py.
Method = Literal["auto", "ets", "mstl"]
_METHODS = ("auto", "ets", "mstl")


class ForecastWarning(UserWarning):
    """A series was forecast with a simpler method than asked (too few points, no season)."""


@dataclass(frozen=True)
class _Step:
    """The spacing of a series: a fixed number of nanoseconds, or a number of calendar months."""

    ns: int = 0
    months: int = 0
    season: int = 1
    name: str = "irregular"

    def positions(self, ts: np.ndarray) -> np.ndarray:
        import numpy as np

        if self.months:
            t = ts.astype("datetime64[M]").astype(np.int64)
            return (t - t[0]) // self.months
        return np.rint((ts.astype(np.int64) - ts[0].astype(np.int64)) / self.ns).astype(np.int64)

    def at(self, origin: np.datetime64, k: np.ndarray) -> np.ndarray:
        """Timestamps ``origin + k`` steps."""
        import numpy as np
        import pandas as pd

        if self.months:
            base = pd.Timestamp(origin)
            return np.array(
                [(base + pd.DateOffset(months=int(i) * self.months)).to_datetime64() for i in k], dtype="datetime64[ns]"
            )
        return origin.astype("datetime64[ns]") + (k.astype(np.int64) * self.ns).astype("timedelta64[ns]")


def _infer_step(ts: np.ndarray) -> _Step:
    """The spacing of sorted, distinct timestamps: the smallest gap, when the others are multiples of it.

    The smallest gap (not the median) so that a sparse daily count series, with many days
    missing, is still daily.
    """
    import numpy as np

    if len(ts) < 2:
        return _Step(ns=_NS_DAY, season=1, name="single point")
    diffs = np.diff(ts.astype(np.int64))
    if (diffs <= 0).any():
        raise InvalidInputError("The timestamps of a series do not increase", hint="check the timestamp column")
    smallest = int(diffs.min())
    days = smallest / _NS_DAY
    for months, lo, hi in ((1, 27.5, 31.5), (3, 88, 93), (12, 364, 367)):
        if lo <= days <= hi:
            season, name = _MONTH_STEPS[months]
            return _Step(months=months, season=season, name=name)
    ratio = diffs / smallest
    if np.mean(np.abs(ratio - np.rint(ratio)) < 1e-6) >= 0.95:
        for ns, season, name in _FIXED_STEPS:
            if smallest == ns:
                return _Step(ns=ns, season=season, name=name)
        return _Step(ns=smallest, season=1, name=f"every {np.timedelta64(smallest, 'ns').astype('timedelta64[s]')}")
    return _Step(ns=int(np.median(diffs)), season=1, name="irregular")


@dataclass
class _Series:
    """One series on a regular grid, ready to model."""

    key: Any
    ts: np.ndarray  # grid timestamps, datetime64[ns]
    y: np.ndarray  # values on the grid, gaps filled
    observed: np.ndarray  # which grid points were in the input
    step: _Step
    season: int
    model: str
    notes: list[str] = field(default_factory=list)


def _prepare(key: Any, ts: np.ndarray, y: np.ndarray, fill: str, method: str = "auto") -> _Series | None:
    """Sort, validate and regularise one series and choose its model; None when it has no usable point."""
    import numpy as np

    ts = np.asarray(ts, dtype="datetime64[ns]")
    y = np.asarray(y, dtype=np.float64)
    keep = ~np.isnat(ts)
    ts, y = ts[keep], y[keep]
    if len(ts) == 0:
        return None
    order = np.argsort(ts, kind="stable")
    ts, y = ts[order], y[order]
    if len(ts) > 1 and (np.diff(ts.astype(np.int64)) == 0).any():
        dup = ts[1:][np.diff(ts.astype(np.int64)) == 0][0]
        raise InvalidInputError(
            f"Series {key!r} has more than one value at {np.datetime_as_string(dup, unit='s')}",
            hint="aggregate to one row per timestamp (and series) first, e.g. GROUP BY the day",
        )
    step = _infer_step(ts)
    notes: list[str] = []
    if fill == "none" or step.name == "irregular":
        grid_ts, grid_y, observed = ts, y.copy(), np.ones(len(ts), dtype=bool)
        if step.name == "irregular" and fill != "none":
            notes.append(f"series {key!r}: irregular timestamps, taken as evenly spaced")
    else:
        pos = step.positions(ts)
        size = int(pos[-1]) + 1
        if size > max(20 * len(ts), 100_000):
            raise InvalidInputError(
                f"Series {key!r} spans {size} {step.name} steps but has {len(ts)} points",
                hint="aggregate the timestamps to a coarser grain, or pass fill='none'",
            )
        grid_ts = step.at(ts[0], np.arange(size))
        grid_y = np.full(size, np.nan)
        grid_y[pos] = y
        observed = np.zeros(size, dtype=bool)
        observed[pos] = True
        grid_ts[pos] = ts  # keep the caller's exact timestamps where they exist
    missing = np.isnan(grid_y)
    if missing.any():
        if fill == "zero":
            grid_y[missing] = 0.0
            observed[:] = True  # a count of zero is an observation
        else:
            ok = ~missing
            if not ok.any():
                return None
            grid_y[missing] = np.interp(np.flatnonzero(missing), np.flatnonzero(ok), grid_y[ok])
            notes.append(f"series {key!r}: {int(missing.sum())} missing values interpolated")
    n = len(grid_y)
    season = step.season
    if season > 1 and n < 2 * season + 1:
        if n >= MIN_POINTS:
            notes.append(
                f"series {key!r}: {n} {step.name} points are too few for a season of {season}; "
                "fitted without seasonality"
            )
        season = 1
    if n < 2:
        model = "Constant"
        notes.append(f"series {key!r} has 1 point: the forecast repeats it, with no interval")
    elif n < MIN_POINTS:
        model = "Naive"
        notes.append(f"series {key!r} has {n} points (fewer than {MIN_POINTS}): naive forecast (the last value)")
    elif season > 1 and (method == "mstl" or (method == "auto" and season > _MAX_AUTO_ETS_SEASON)):
        model = "MSTL"
    elif season > _MAX_ETS_SEASON:
        model = "MSTL-ETS"
    else:
        model = "AutoETS"
    return _Series(key, grid_ts, grid_y, observed, step, season, model, notes)


def _model(series: _Series, *, additive: bool = False) -> Any:
    """The statsforecast model of a series; ``additive`` limits ETS to additive errors and seasons."""
    from statsforecast.models import MSTL, AutoETS, Naive, RandomWalkWithDrift

    if series.model == "Naive":
        return Naive()
    if series.model == "MSTL":
        return MSTL(season_length=series.season, trend_forecaster=RandomWalkWithDrift())
    if series.model == "MSTL-ETS":
        return MSTL(season_length=series.season, trend_forecaster=AutoETS(model="AZN" if additive else "ZZN"))
    if additive:
        return AutoETS(season_length=series.season, model="AZA" if series.season > 1 else "AZN")
    return AutoETS(season_length=series.season)


def _groups(series: Sequence[_Series]) -> dict[tuple[str, int], list[int]]:
    groups: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, s in enumerate(series):
        if s.model != "Constant":
            groups[(s.model, s.season)].append(i)
    return groups


def _frame(series: Sequence[_Series], idx: Sequence[int], values: dict[int, np.ndarray] | None = None) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    parts = []
    for i in idx:
        s = series[i]
        y = values[i] if values is not None else s.y
        parts.append(pd.DataFrame({"unique_id": i, "ds": np.arange(len(y), dtype=np.int64), "y": y}))
    return pd.concat(parts, ignore_index=True)


def _statsforecast(model: Any, n_jobs: int) -> Any:
    from statsforecast import StatsForecast

    return StatsForecast(models=[model], freq=1, n_jobs=n_jobs)


def _model_column(model: Any) -> str:
    return str(getattr(model, "alias", type(model).__name__))


def _check_level(level: float, name: str) -> float:
    if not isinstance(level, int | float) or isinstance(level, bool) or not 0 < float(level) < 100:
        raise InvalidInputError(f"The '{name}' parameter must be a number in (0, 100). Got {level!r} instead.")
    return float(level)


def _forecast_series(series: Sequence[_Series], horizon: int, level: float, n_jobs: int) -> list[pd.DataFrame]:
    """Per series: ts, forecast, lower, upper, model over the horizon."""
    import numpy as np
    import pandas as pd

    out: list[pd.DataFrame | None] = [None] * len(series)
    for (_, _), idx in _groups(series).items():
        model = _model(series[idx[0]])
        sf = _statsforecast(model, n_jobs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lv = int(level) if float(level).is_integer() else level  # statsforecast names columns by str(level)
            fc = sf.forecast(df=_frame(series, idx), h=horizon, level=[lv])
        col = _model_column(model)
        lo_col, hi_col = f"{col}-lo-{lv}", f"{col}-hi-{lv}"
        if "unique_id" not in fc.columns:
            fc = fc.reset_index()
        for i, part in fc.groupby("unique_id", sort=False):
            s = series[int(i)]
            mean = part[col].to_numpy(dtype=float)
            lower = part[lo_col].to_numpy(dtype=float) if lo_col in part else np.full(horizon, np.nan)
            upper = part[hi_col].to_numpy(dtype=float) if hi_col in part else np.full(horizon, np.nan)
            out[int(i)] = pd.DataFrame(
                {
                    "ts": s.step.at(s.ts[-1], np.arange(1, horizon + 1)),
                    "forecast": mean,
                    "lower": np.minimum(lower, mean),
                    "upper": np.maximum(upper, mean),
                    "model": s.model,
                }
            )
    for i, s in enumerate(series):
        if out[i] is None:  # a single point: repeat it
            out[i] = pd.DataFrame(
                {
                    "ts": s.step.at(s.ts[-1], np.arange(1, horizon + 1)),
                    "forecast": np.full(horizon, s.y[-1]),
                    "lower": np.nan,
                    "upper": np.nan,
                    "model": s.model,
                }
            )
    return [o for o in out if o is not None]


def _sigma(resid: np.ndarray) -> float:
    """The residuals' standard deviation (1e-9 when they are all equal, NaN when too few).

    Not the median absolute deviation: on low counts most residuals share a few values and the
    MAD collapses towards zero, flagging every ordinary day.
    """
    import numpy as np

    r = resid[np.isfinite(resid)]
    if len(r) < 2:
        return float("nan")
    sigma = float(np.std(r, ddof=1))
    return sigma if sigma > 0 else 1e-9


def _fitted(
    series: Sequence[_Series], idx: Sequence[int], values: dict[int, np.ndarray], n_jobs: int
) -> dict[int, np.ndarray]:
    """In-sample one-step-ahead forecasts of the given values, per series index."""
    import numpy as np

    # Anomaly scores live on an additive scale (counts are square-root transformed first), and
    # limiting ETS to additive forms makes the two fits several times faster.
    model = _model(series[idx[0]], additive=True)
    sf = _statsforecast(model, n_jobs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sf.forecast(df=_frame(series, idx, values), h=1, fitted=True)
        fv = sf.forecast_fitted_values()
    if "unique_id" not in fv.columns:
        fv = fv.reset_index()
    col = _model_column(model)
    out = {i: np.full(len(values[i]), np.nan) for i in idx}
    for i, part in fv.groupby("unique_id", sort=False):
        out[int(i)] = part[col].to_numpy(dtype=float)
    return out


def _is_counts(y: np.ndarray) -> bool:
    import numpy as np

    finite = y[np.isfinite(y)]
    return (
        bool(len(finite))
        and bool((finite >= 0).all())
        and bool((finite == np.round(finite)).all())
        and float(finite.max()) > 0
    )


def _anscombe(y: np.ndarray) -> np.ndarray:
    import numpy as np

    return 2.0 * np.sqrt(np.maximum(y, 0.0) + 0.375)


def _anscombe_inverse(a: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.maximum((np.maximum(a, 0.0) / 2.0) ** 2 - 0.375, 0.0)


def _anomaly_series(series: Sequence[_Series], level: float, n_jobs: int) -> list[pd.DataFrame]:
    """Per series: ts, y, forecast, lower, upper, is_anomaly, percentile, distance, model.

    Counts (non-negative integers) are modelled after Anscombe's square-root transform, which
    makes Poisson-like noise near-normal with a constant variance; without it a 99% normal
    interval flags several percent of the days of a low-volume series.
    """
    import numpy as np
    import pandas as pd
    from scipy.special import ndtr, ndtri

    z = float(ndtri(0.5 + level / 200.0))
    counts = {i: _is_counts(s.y) for i, s in enumerate(series)}
    work = {i: _anscombe(s.y) if counts[i] else s.y for i, s in enumerate(series)}
    fitted: dict[int, np.ndarray] = {}
    sigmas: dict[int, float] = {}
    for (_, _), idx in _groups(series).items():
        raw = {i: work[i] for i in idx}
        first = _fitted(series, idx, raw, n_jobs)
        cleaned = {}
        for i in idx:
            resid = raw[i] - first[i]
            outlier = np.abs(resid) > z * _sigma(resid)
            cleaned[i] = np.where(outlier & np.isfinite(first[i]), first[i], raw[i])
        second = _fitted(series, idx, cleaned, n_jobs)
        for i in idx:
            fitted[i] = second[i]
            # The interval comes from the cleaned fit's residuals, so outliers do not widen it.
            sigmas[i] = _sigma(cleaned[i] - second[i])
    out: list[pd.DataFrame] = []
    for i, s in enumerate(series):
        f = fitted.get(i, np.full(len(s.y), np.nan))
        sigma = sigmas.get(i, float("nan"))
        dist = (work[i] - f) / sigma if sigma == sigma else np.full(len(s.y), np.nan)
        lower, upper = f - z * sigma, f + z * sigma
        if counts[i]:
            f, lower, upper = _anscombe_inverse(f), _anscombe_inverse(lower), _anscombe_inverse(upper)
        frame = pd.DataFrame(
            {
                "ts": s.ts,
                "y": s.y,
                "forecast": f,
                "lower": lower,
                "upper": upper,
                "is_anomaly": np.isfinite(dist) & (np.abs(dist) > z),
                "percentile": ndtr(dist),
                "distance": dist,
                "model": s.model,
            }
        )
        out.append(frame[s.observed].reset_index(drop=True))
    return out


# -- the Python API -----------------------------------------------------------------------------
def _to_pandas(data: Any) -> pd.DataFrame:
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    for attr in ("df", "to_pandas"):  # a DuckDB relation, a pyarrow Table
        fn = getattr(data, attr, None)
        if callable(fn):
            frame = fn()
            if isinstance(frame, pd.DataFrame):
                return frame
    raise InvalidInputError(
        f"Expected a pandas DataFrame, a pyarrow Table or a DuckDB relation; got {type(data).__name__}"
    )


def _check_method(method: str) -> str:
    if method not in _METHODS:
        raise InvalidInputError(f"The 'method' parameter must be one of {', '.join(_METHODS)}. Got {method!r} instead.")
    return method


def _split(
    data: Any, timestamp_col: str, value_col: str, series_col: str | None, fill: str, method: str
) -> list[_Series]:
    import pandas as pd

    if fill not in _FILLS:
        raise InvalidInputError(f"The 'fill' parameter must be one of {', '.join(_FILLS)}. Got {fill!r} instead.")
    _check_method(method)
    frame = _to_pandas(data)
    for name, col in (("timestamp_col", timestamp_col), ("value_col", value_col), ("series_col", series_col)):
        if col is not None and col not in frame.columns:
            raise InvalidInputError(
                f"The '{name}' column {col!r} is not in the data; it has {', '.join(map(str, frame.columns))}"
            )
    ts = pd.to_datetime(frame[timestamp_col], utc=False, errors="coerce")
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    values = pd.to_numeric(frame[value_col], errors="coerce")
    keys = (
        frame[series_col].astype("string").fillna("(null)")
        if series_col
        else pd.Series(_SINGLE, index=frame.index, dtype="string")
    )
    ts_all = ts.to_numpy(dtype="datetime64[ns]")
    y_all = values.to_numpy(dtype=float, na_value=float("nan"))
    out = []
    for key, positions in sorted(keys.groupby(keys.to_numpy(), sort=False).indices.items()):
        s = _prepare(str(key), ts_all[positions], y_all[positions], fill, method)
        if s is not None:
            out.append(s)
    return out


def _notes(series: Sequence[_Series], frame: pd.DataFrame) -> pd.DataFrame:
    notes = [n for s in series for n in s.notes]
    frame.attrs["notes"] = notes
    fallback = [n for n in notes if "naive" in n or "1 point" in n]
    if fallback:
        warnings.warn("; ".join(fallback), ForecastWarning, stacklevel=3)
    return frame


def forecast(
    data: Any,
    timestamp_col: str,
    value_col: str,
    series_col: str | None = None,
    *,
    horizon: int = 30,
    level: float = 95.0,
    fill: Fill = "interpolate",
    method: Method = "auto",
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Forecast each series ``horizon`` steps ahead with a ``level``% prediction interval.

    Args:
        data: A pandas DataFrame, pyarrow Table or DuckDB relation, one row per (series, time).
        timestamp_col: The timestamp (or date) column.
        value_col: The numeric column to forecast.
        series_col: The column naming the series; None for one series (named ``'all'``).
        horizon: Steps to forecast, in the series' own spacing (days for daily data).
        level: The interval's coverage in percent, in (0, 100).
        fill: How to fill gaps in the timestamps: ``interpolate``, ``zero`` or ``none``.
        method: ``auto`` (AutoETS; for seasons longer than 12, MSTL with a drift trend), ``ets``
            (AutoETS; MSTL with an ETS trend for seasons longer than 24) or ``mstl`` (MSTL with a
            drift trend for any seasonal series).
        n_jobs: Processes statsforecast may use.

    Returns:
        Columns ``series, ts, forecast, lower, upper, model``; ``attrs["notes"]`` lists what was
        simplified (short series, dropped seasonality, filled gaps).

    Raises:
        InvalidInputError: a column is missing, a parameter is out of range, or a series has two
            values at one timestamp.
    """
    import pandas as pd

    if not isinstance(horizon, int) or isinstance(horizon, bool) or not 1 <= horizon <= 10_000:
        raise InvalidInputError(f"The 'horizon' parameter must be an integer in [1, 10000]. Got {horizon!r} instead.")
    level = _check_level(level, "level")
    series = _split(data, timestamp_col, value_col, series_col, fill, method)
    parts = _forecast_series(series, horizon, level, n_jobs)
    frames = [p.assign(series=s.key) for s, p in zip(series, parts, strict=True)]
    result = (
        pd.concat(frames, ignore_index=True)[FORECAST_COLUMNS] if frames else pd.DataFrame(columns=FORECAST_COLUMNS)
    )
    return _notes(series, result)


def detect_anomalies(
    history: Any,
    timestamp_col: str,
    value_col: str,
    series_col: str | None = None,
    *,
    level: float = 99.0,
    fill: Fill = "interpolate",
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Flag the observations that fall outside the ``level``% one-step-ahead prediction interval.

    Args:
        history: A pandas DataFrame, pyarrow Table or DuckDB relation, one row per (series, time).
        timestamp_col: The timestamp (or date) column.
        value_col: The numeric column.
        series_col: The column naming the series; None for one series.
        level: The interval's coverage in percent (99 flags about 1% of normal points).
        fill: How to fill gaps in the timestamps: ``interpolate``, ``zero`` (counts) or ``none``.
        n_jobs: Processes statsforecast may use.

    Returns:
        Columns ``series, ts, y, forecast, lower, upper, is_anomaly, percentile, distance, model``:
        ``percentile`` is where ``y`` falls in the forecast's normal distribution and
        ``distance`` is ``(y - forecast) / sigma`` (signed).
    """
    import pandas as pd

    level = _check_level(level, "level")
    series = _split(history, timestamp_col, value_col, series_col, fill, "ets")
    parts = _anomaly_series(series, level, n_jobs)
    frames = [p.assign(series=s.key) for s, p in zip(series, parts, strict=True)]
    result = pd.concat(frames, ignore_index=True)[ANOMALY_COLUMNS] if frames else pd.DataFrame(columns=ANOMALY_COLUMNS)
    return _notes(series, result)


# -- loading history from the warehouse --------------------------------------------------------
_QUERY = re.compile(r"^\s*(select|with|from|values|\()", re.IGNORECASE)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*){0,2}$")
_AGGS = {"none": None, "sum": "sum", "count": "count", "mean": "avg", "avg": "avg", "min": "min", "max": "max"}
_GRAINS = ("hour", "day", "week", "month", "quarter", "year")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _source_sql(source: str) -> str:
    if _QUERY.match(source):
        return f"({source.strip().rstrip(';')})"
    if not _NAME.match(source):
        raise InvalidInputError(
            f"{source!r} is neither a table name nor a SELECT query",
            hint="pass a name like claims or pg.public.claims, or a SELECT",
        )
    return ".".join(_quote(p) for p in source.split("."))


def load_history(
    workspace: Workspace,
    source: str,
    timestamp_col: str,
    value_col: str | None = None,
    series_col: str | None = None,
    *,
    agg: str = "none",
    grain: str | None = None,
    row_limit: int = 2_000_000,
) -> pd.DataFrame:
    """Read a history (``ts``, ``y`` and ``series`` columns) from the warehouse, read-only.

    Args:
        workspace: The workspace whose warehouse holds ``source``.
        source: A table name or a SELECT query.
        timestamp_col: The timestamp column of ``source``.
        value_col: The value column; not needed with ``agg='count'``.
        series_col: The column naming the series, if any.
        agg: How rows of one timestamp combine: none, sum, count, mean, min or max.
        grain: Truncate timestamps to hour, day, week, month, quarter or year before combining.
        row_limit: The most rows read.

    Raises:
        InvalidInputError: a bad name, aggregation or grain, or the query fails.
    """
    from aiw.sql.runner import run_query

    if agg not in _AGGS:
        raise InvalidInputError(f"The 'agg' parameter must be one of {', '.join(_AGGS)}. Got {agg!r} instead.")
    if grain is not None and grain not in _GRAINS:
        raise InvalidInputError(f"The 'grain' parameter must be one of {', '.join(_GRAINS)}. Got {grain!r} instead.")
    if value_col is None and agg != "count":
        raise InvalidInputError("A value column is needed unless agg='count'", hint="pass --value or --agg count")
    ts = _quote(timestamp_col)
    ts_expr = f"date_trunc('{grain}', {ts})" if grain else ts
    select = [f"{ts_expr} AS ts"]
    if series_col:
        select.append(f"CAST({_quote(series_col)} AS VARCHAR) AS series")
    fn = _AGGS[agg]
    if fn is None and grain:
        fn = "sum"  # truncating the timestamps needs an aggregate
    if fn == "count":
        select.append("count(*)::DOUBLE AS y")
    elif fn:
        select.append(f"{fn}({_quote(value_col or '')})::DOUBLE AS y")
    else:
        select.append(f"CAST({_quote(value_col or '')} AS DOUBLE) AS y")
    sql = f"SELECT {', '.join(select)} FROM {_source_sql(source)} AS src WHERE {ts} IS NOT NULL"
    if fn:
        sql += " GROUP BY ALL"
    sql += " ORDER BY ALL"
    result = run_query(workspace, sql, row_limit=row_limit)
    if result.truncated:
        raise InvalidInputError(
            f"The history has more than {row_limit} rows", hint="aggregate it (agg/grain) or filter it first"
        )
    return result.table.to_pandas()


# -- SQL ----------------------------------------------------------------------------------------
_FC_TYPE = "STRUCT(ts TIMESTAMP, forecast DOUBLE, lower DOUBLE, upper DOUBLE, model VARCHAR)[]"
_AN_TYPE = (
    "STRUCT(ts TIMESTAMP, y DOUBLE, forecast DOUBLE, lower DOUBLE, upper DOUBLE, is_anomaly BOOLEAN, "
    "percentile DOUBLE, distance DOUBLE, model VARCHAR)[]"
)

_SOURCE = (
    "query(CASE WHEN regexp_matches(source, '^\\s*(select|with|from|values|\\()', 'i') "
    "THEN source ELSE 'FROM ' || source END)"
)
_ROWS = f"""
    SELECT CAST(struct_extract(__aiw_row, ts_col) AS TIMESTAMP) AS ts,
           CAST(struct_extract(__aiw_row, value_col) AS DOUBLE) AS y,
           CASE WHEN series_col IS NULL THEN '{_SINGLE}'
                ELSE coalesce(CAST(struct_extract(__aiw_row, coalesce(series_col, ts_col)) AS VARCHAR), '(null)')
           END AS series
    FROM {_SOURCE} AS __aiw_row"""

_MACROS = [
    f"""CREATE OR REPLACE TEMP MACRO ai_forecast(source, ts_col, value_col, series_col := NULL, horizon := 30,
                                                level := 95, fill := 'interpolate', method := 'auto') AS TABLE
    WITH __aiw_src AS ({_ROWS}),
    __aiw_out AS (
        SELECT series, unnest(ai_forecast_series(list(ts ORDER BY ts), list(y ORDER BY ts), horizon, level, fill,
                                                 method)) AS r
        FROM __aiw_src WHERE ts IS NOT NULL GROUP BY series)
    SELECT series, r.ts AS ts, r.forecast AS forecast, r.lower AS lower, r.upper AS upper, r.model AS model
    FROM __aiw_out ORDER BY series, ts""",
    f"""CREATE OR REPLACE TEMP MACRO ai_detect_anomalies(source, ts_col, value_col, series_col := NULL, level := 99,
                                                        fill := 'interpolate') AS TABLE
    WITH __aiw_src AS ({_ROWS}),
    __aiw_out AS (
        SELECT series, unnest(ai_anomaly_series(list(ts ORDER BY ts), list(y ORDER BY ts), level, fill)) AS r
        FROM __aiw_src WHERE ts IS NOT NULL GROUP BY series)
    SELECT series, r.ts AS ts, r.y AS y, r.forecast AS forecast, r.lower AS lower, r.upper AS upper,
           r.is_anomaly AS is_anomaly, r.percentile AS percentile, r.distance AS distance, r.model AS model
    FROM __aiw_out ORDER BY series, ts""",
]


_FC_FIELDS = ["ts", "forecast", "lower", "upper", "model"]
_AN_FIELDS = ["ts", "y", "forecast", "lower", "upper", "is_anomaly", "percentile", "distance", "model"]


def _udf_rows(
    ts_lists: Any, y_lists: Any, params: list[tuple[Any, ...]], fill_idx: int, method_idx: int | None = None
) -> dict[tuple[Any, ...], list[tuple[int, _Series]]]:
    """The rows of one UDF call (one series each), prepared and grouped by their parameters."""

    groups: dict[tuple[Any, ...], list[tuple[int, _Series]]] = defaultdict(list)
    ts_arr = ts_lists.combine_chunks() if hasattr(ts_lists, "combine_chunks") else ts_lists
    y_arr = y_lists.combine_chunks() if hasattr(y_lists, "combine_chunks") else y_lists
    for row, p in enumerate(params):
        if not ts_arr[row].is_valid or not y_arr[row].is_valid or any(v is None for v in p):
            continue
        fill = str(p[fill_idx])
        if fill not in _FILLS:
            raise InvalidInputError(f"The 'fill' parameter must be one of {', '.join(_FILLS)}. Got {fill!r} instead.")
        t = ts_arr[row].values.cast("int64").to_numpy(zero_copy_only=False).astype("datetime64[us]")
        y = y_arr[row].values.to_numpy(zero_copy_only=False).astype(float)
        method = _check_method(str(p[method_idx])) if method_idx is not None else "ets"
        s = _prepare(f"row {row}", t, y, fill, method)
        if s is not None:
            groups[p].append((row, s))
    return groups


def _list_of_structs(n: int, parts: dict[int, pd.DataFrame], fields: list[str], sqltype: str) -> Any:
    """A list<struct> Arrow array of ``n`` rows from a frame per row (missing rows are NULL)."""
    import duckdb
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    struct_type = _arrow_type(duckdb.sqltype(sqltype)).value_type
    lengths = np.array([len(parts[i]) if i in parts else 0 for i in range(n)], dtype=np.int32)
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    frames = [parts[i] for i in range(n) if i in parts]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({f: [] for f in fields})
    columns = []
    for f in struct_type:
        col = frame[f.name]
        if pa.types.is_timestamp(f.type):
            arr = pa.array(pd.to_datetime(col).to_numpy(dtype="datetime64[us]"), f.type)
        elif pa.types.is_floating(f.type):
            values = col.to_numpy(dtype=float)
            arr = pa.array(values, f.type, mask=np.isnan(values))
        else:
            arr = pa.array(col.tolist(), f.type)
        columns.append(arr)
    values = pa.StructArray.from_arrays(columns, fields=list(struct_type))
    mask = pa.array([i not in parts for i in range(n)])
    return pa.ListArray.from_arrays(offsets, values, mask=mask)


def _udf_forecast(ts_lists: Any, y_lists: Any, horizons: Any, levels: Any, fills: Any, methods: Any) -> Any:
    # Annotations are plain Any: DuckDB evaluates a UDF's annotations when binding it.
    params = list(zip(horizons.to_pylist(), levels.to_pylist(), fills.to_pylist(), methods.to_pylist(), strict=True))
    parts: dict[int, pd.DataFrame] = {}
    for (horizon, level, _, _), members in _udf_rows(ts_lists, y_lists, params, 2, 3).items():
        if not 1 <= int(horizon) <= 10_000:
            raise InvalidInputError(f"The 'horizon' parameter must be an integer in [1, 10000]. Got {horizon} instead.")
        frames = _forecast_series([s for _, s in members], int(horizon), _check_level(float(level), "level"), 1)
        parts.update({row: frame for (row, _), frame in zip(members, frames, strict=True)})
    return _list_of_structs(len(params), parts, _FC_FIELDS, _FC_TYPE)


def _udf_anomalies(ts_lists: Any, y_lists: Any, levels: Any, fills: Any) -> Any:
    params = list(zip(levels.to_pylist(), fills.to_pylist(), strict=True))
    parts: dict[int, pd.DataFrame] = {}
    for (level, _), members in _udf_rows(ts_lists, y_lists, params, 1).items():
        frames = _anomaly_series([s for _, s in members], _check_level(float(level), "level"), 1)
        parts.update({row: frame for (row, _), frame in zip(members, frames, strict=True)})
    return _list_of_structs(len(params), parts, _AN_FIELDS, _AN_TYPE)


def _arrow_type(sqltype: Any) -> pa.DataType:
    import pyarrow as pa

    text = str(sqltype)
    fields = []
    inner = text[text.index("(") + 1 : text.rindex(")")]
    mapping = {"TIMESTAMP": pa.timestamp("us"), "DOUBLE": pa.float64(), "VARCHAR": pa.string(), "BOOLEAN": pa.bool_()}
    for part in inner.split(","):
        name, typ = part.strip().split(" ", 1)
        fields.append(pa.field(name, mapping[typ.strip()]))
    return pa.list_(pa.struct(fields))


def register_forecast_functions(conn: Any) -> None:
    """Bind ``ai_forecast_series``/``ai_anomaly_series`` and the ``ai_forecast``/``ai_detect_anomalies`` macros."""
    from aiw.sql.functions import bind_udf

    bind_udf(
        conn,
        "ai_forecast_series",
        _udf_forecast,
        ["TIMESTAMP[]", "DOUBLE[]", "INTEGER", "DOUBLE", "VARCHAR", "VARCHAR"],
        _FC_TYPE,
    )
    bind_udf(conn, "ai_anomaly_series", _udf_anomalies, ["TIMESTAMP[]", "DOUBLE[]", "DOUBLE", "VARCHAR"], _AN_TYPE)
    for macro in _MACROS:
        conn.execute(macro)
