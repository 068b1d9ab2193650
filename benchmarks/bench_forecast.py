"""Forecast accuracy (MASE, sMAPE) and time on M4 Hourly: ``aiw.sql.forecast`` against Prophet.

Every series of ``../shared/data/forecast/m4_hourly_*.csv`` (414, or ``--series N``) is forecast
48 hours ahead from its training part and scored against the held-out 48 values with the M4
definitions (MASE scaled by the in-sample seasonal naive error with m = 24; sMAPE on 0-200).
Contenders, same series, same machine, one after the other:

* ours with ``method='auto'`` (what ``ai_forecast`` does: for a season of 24, MSTL with a drift
  trend), on one process and on every core (``n_jobs``), and ``method='ets'`` (AutoETS over the
  24-hour season), single-process;
* Prophet with its defaults, one model per series, in its own virtual environment
  (``bench-results/.venv-prophet``, created with pip on first use; Prophet is not a dependency of
  the platform). If it cannot be installed the Prophet figures are skipped with the reason.

Goal: accuracy no worse than Prophet, at least 10x faster.

Run: ``.venv/bin/python benchmarks/bench_forecast.py [--series 414] [--skip-prophet] [--skip-ets]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, write_result

from aiw.sql.forecast import forecast

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "forecast"
HORIZON, SEASON = 48, 24
PUBLISHED = {
    "naive2_mase": 2.395,
    "seasonal_naive_mase": 1.193,
    "es_rnn_winner_mase": 0.893,
    "statsforecast_autoarima_mase": 0.92,
    "prophet_mase": 1.78,
}
PROPHET_VENV = RESULTS / ".venv-prophet"

_PROPHET_WORKER = r"""
import json, logging, sys, time, warnings
warnings.simplefilter("ignore")
logging.getLogger("cmdstanpy").setLevel(logging.ERROR)
logging.getLogger("prophet").setLevel(logging.ERROR)
import pandas as pd
from prophet import Prophet
src, dst, horizon = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = pd.read_csv(src, parse_dates=["ds"])
out, started = [], time.perf_counter()
for uid, part in data.groupby("unique_id", sort=False):
    model = Prophet()
    model.fit(part[["ds", "y"]])
    future = model.make_future_dataframe(horizon, freq="h", include_history=False)
    fc = model.predict(future)
    out.append(pd.DataFrame({"unique_id": uid, "step": range(1, horizon + 1), "yhat": fc["yhat"].to_numpy()}))
seconds = time.perf_counter() - started
pd.concat(out).to_csv(dst, index=False)
print(json.dumps({"seconds": seconds}))
"""


def _load(n: int | None) -> tuple[pd.DataFrame, dict[str, np.ndarray], dict[str, np.ndarray]]:
    train = pd.read_csv(DATA / "m4_hourly_train.csv")
    test = pd.read_csv(DATA / "m4_hourly_test.csv").set_index("V1")
    if n:
        train = train.head(n)
    frames, history, actual = [], {}, {}
    start = pd.Timestamp("2020-01-01")  # M4 Hourly has no dates; any hourly clock will do
    for row in train.itertuples(index=False):
        uid = row[0]
        y = np.asarray(row[1:], dtype=float)
        y = y[~np.isnan(y)]
        history[uid] = y
        actual[uid] = test.loc[uid].to_numpy(dtype=float)[:HORIZON]
        frames.append(pd.DataFrame({"unique_id": uid, "ds": pd.date_range(start, periods=len(y), freq="h"), "y": y}))
    return pd.concat(frames, ignore_index=True), history, actual


def _scores(
    pred: dict[str, np.ndarray], history: dict[str, np.ndarray], actual: dict[str, np.ndarray]
) -> dict[str, float]:
    mase, smape = [], []
    for uid, y in history.items():
        f, a = pred[uid], actual[uid]
        scale = np.mean(np.abs(y[SEASON:] - y[:-SEASON]))
        mase.append(np.mean(np.abs(a - f)) / scale)
        smape.append(np.mean(200 * np.abs(a - f) / (np.abs(a) + np.abs(f))))
    return {"mase": round(float(np.mean(mase)), 4), "smape": round(float(np.mean(smape)), 3)}


def _ours(long: pd.DataFrame, method: str, n_jobs: int) -> tuple[dict[str, np.ndarray], float, list[str]]:
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fc = forecast(
            long,
            "ds",
            "y",
            "unique_id",
            horizon=HORIZON,
            method=method,  # type: ignore[arg-type]
            n_jobs=n_jobs,
        )
    seconds = time.perf_counter() - started
    pred = {str(uid): part["forecast"].to_numpy() for uid, part in fc.groupby("series", sort=False)}
    return pred, seconds, sorted(set(fc["model"]))


def _prophet_python() -> tuple[Path | None, str]:
    python = PROPHET_VENV / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", "import prophet"], capture_output=True).returncode == 0:
        return python, "existing venv"
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", "--clear", str(PROPHET_VENV)], check=True, capture_output=True, timeout=300
        )
        # the venv module of a project venv may lack pip on some builds; ensurepip covers that
        pip = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "prophet", "pandas"],
            capture_output=True,
            text=True,
            timeout=1800,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"cannot create {PROPHET_VENV}: {exc}"
    if pip.returncode != 0:
        return None, f"pip install prophet failed: {pip.stderr.strip().splitlines()[-1:]}"
    return python, "installed now"


def _prophet(long: pd.DataFrame) -> tuple[dict[str, np.ndarray] | None, dict[str, object]]:
    python, how = _prophet_python()
    if python is None:
        print(f"Prophet skipped: {how}", file=sys.stderr)
        return None, {"skipped": how}
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "series.csv", Path(tmp) / "forecast.csv"
        long.to_csv(src, index=False)
        started = time.perf_counter()
        run = subprocess.run(
            [str(python), "-c", _PROPHET_WORKER, str(src), str(dst), str(HORIZON)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        wall = time.perf_counter() - started
        if run.returncode != 0:
            reason = (run.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"Prophet failed: {reason}", file=sys.stderr)
            return None, {"skipped": f"Prophet failed: {reason}"}
        seconds = json.loads(run.stdout.strip().splitlines()[-1])["seconds"]
        fc = pd.read_csv(dst)
    pred = {str(uid): part.sort_values("step")["yhat"].to_numpy() for uid, part in fc.groupby("unique_id")}
    return pred, {"venv": how, "seconds_fit_predict": round(seconds, 2), "seconds_wall_with_imports": round(wall, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=None, help="first N series only (default: all 414)")
    parser.add_argument("--skip-prophet", action="store_true", help="do not run Prophet")
    parser.add_argument("--skip-ets", action="store_true", help="do not run the AutoETS variant")
    args = parser.parse_args()

    long, history, actual = _load(args.series)
    n = len(history)
    print(f"M4 Hourly: {n} series, horizon {HORIZON}, m = {SEASON}", file=sys.stderr)
    forecast(long[long["unique_id"] == long["unique_id"].iloc[0]], "ds", "y", horizon=2)  # numba compile, once
    results: dict[str, dict[str, object]] = {}
    cores = os.cpu_count() or 1
    runs = [("ours_auto", "auto", 1), ("ours_auto_all_cores", "auto", cores)]
    runs += [] if args.skip_ets else [("ours_ets", "ets", 1)]
    for name, method, n_jobs in runs:
        pred, seconds, models = _ours(long, method, n_jobs)
        results[name] = {
            **_scores(pred, history, actual),
            "seconds": round(seconds, 2),
            "n_jobs": n_jobs,
            "ms_per_series": round(1000 * seconds / n, 1),
            "models": models,
        }
        print(f"{name}: {results[name]}", file=sys.stderr)
    ratios: dict[str, float] = {}
    prophet_info: dict[str, object] = {"skipped": "--skip-prophet"}
    if not args.skip_prophet:
        prophet_pred, prophet_info = _prophet(long)
        if prophet_pred is not None:
            seconds = float(prophet_info["seconds_fit_predict"])  # type: ignore[arg-type]
            results["prophet"] = {
                **_scores(prophet_pred, history, actual),
                "seconds": round(seconds, 2),
                "ms_per_series": round(1000 * seconds / n, 1),
            }
            print(f"prophet: {results['prophet']}", file=sys.stderr)
            for name in [k for k in results if k.startswith("ours_")]:
                ratios[f"{name}_speedup_vs_prophet"] = round(seconds / float(results[name]["seconds"]), 1)  # type: ignore[arg-type]
                ratios[f"{name}_mase_minus_prophet"] = round(
                    float(results[name]["mase"])  # type: ignore[arg-type]
                    - float(results["prophet"]["mase"]),
                    4,
                )  # type: ignore[arg-type]
    target = write_result(
        "forecast",
        {
            "series": n,
            "horizon": HORIZON,
            "season": SEASON,
            "results": results,
            "prophet": prophet_info,
            "ratios": ratios,
            "goal": "MASE no worse than Prophet's, at least 10x faster",
            "published": PUBLISHED,
            "load_average_at_end": list(os.getloadavg()),
        },
    )
    print(json.dumps({"results": results, "ratios": ratios}, indent=2))
    print(f"written to {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
