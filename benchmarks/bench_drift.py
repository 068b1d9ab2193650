"""Data drift: our DataDriftDetector against Evidently's DataDriftPreset on the same data.

Data: N rows x 50 columns (25 numeric: normal, lognormal, wide integers, a 4-valued discrete
column; 25 categorical strings with 2 to 40 categories), reference and a current table in
which about a third of the columns drifted. Both tools read the same Parquet files with pandas.

Measured, per size:
* Evidently 0.7.23 ``Report([DataDriftPreset()]).run(current, reference)`` in its own virtual
  environment (``bench-results/.venv-evidently``, created here with pip: Evidently needs
  pandas < 3 and is not a project dependency), wall seconds;
* ours: ``fit`` + ``score`` on the same pandas frames, with the default profile
  (``max_points=100_000``) and fully exact (``max_points=None``); and on Arrow tables;
* agreement: for every column where both chose the same method, |ours - Evidently|.

Run: ``.venv/bin/python benchmarks/bench_drift.py [--sizes 100000,300000] [--ours-sizes 1000000]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, write_result

from aiw.mlops.monitoring.drift import DataDriftDetector

EVIDENTLY = "evidently==0.7.23"
VENV = RESULTS / ".venv-evidently"
EV_METHOD = {
    "K-S p_value": "ks",
    "Wasserstein distance (normed)": "wasserstein",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
    "Jensen-Shannon distance": "jensenshannon",
    "PSI": "psi",
}

EV_SCRIPT = r"""
import json, sys, time
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
t = time.perf_counter()
snap = Report([DataDriftPreset()]).run(cur, ref)
seconds = time.perf_counter() - t
cols = {}
for m in snap.dict()["metrics"]:
    cfg = m["config"]
    if cfg["type"].endswith("ValueDrift"):
        cols[cfg["column"]] = {"method": cfg.get("method"), "score": m["value"], "threshold": cfg.get("threshold")}
    elif cfg["type"].endswith("DriftedColumnsCount"):
        drifted = m["value"]
print(json.dumps({"seconds": seconds, "columns": cols, "drifted": drifted}))
"""


def make_data(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current frames of n rows x 50 columns; about a third of the columns drift."""
    rng = np.random.default_rng(seed)
    cats = np.array([f"c{k:02d}" for k in range(40)], dtype=object)

    def frame(drift: bool) -> pd.DataFrame:
        cols: dict[str, Any] = {}
        for j in range(25):
            moved = drift and j % 3 == 0
            kind = j % 4
            if kind == 0:
                cols[f"num_{j}"] = rng.normal(0.25 if moved else 0.0, 1 + j / 10, n)
            elif kind == 1:
                cols[f"num_{j}"] = rng.lognormal(3.2 if moved else 3.0, 0.8, n)
            elif kind == 2:
                cols[f"num_{j}"] = rng.integers(0, 500 + (60 if moved else 0), n).astype(np.int64)
            else:
                cols[f"num_{j}"] = rng.integers(0, 4, n).astype(np.float64) + (rng.random(n) < 0.1) * moved
        for j in range(25):
            k = 2 + (j * 7) % 39
            p = np.linspace(1, 2, k)
            if drift and j % 3 == 1:
                p = p[::-1]
            cols[f"cat_{j}"] = cats[rng.choice(k, n, p=p / p.sum())]
        return pd.DataFrame(cols)

    return frame(False), frame(True)


def ensure_evidently() -> Path:
    """The benchmark's own venv with Evidently (and pandas < 3), created with pip on first use."""
    python = VENV / "bin" / "python"
    probe = [str(python), "-c", "import evidently, pandas; assert evidently.__version__ == '0.7.23'"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    (VENV / ".gitignore").write_text("*\n")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", EVIDENTLY, "pandas<3"], check=True)
    subprocess.run(probe, check=True)
    return python


def run_evidently(python: Path, ref_path: Path, cur_path: Path) -> dict[str, Any]:
    """Evidently's report in its venv: wall seconds of ``Report.run`` and each column's score."""
    script = ref_path.with_name("evidently_run.py")
    script.write_text(EV_SCRIPT)
    env = {**os.environ, "DO_NOT_TRACK": "1", "EVIDENTLY_DISABLE_TELEMETRY": "1"}
    out = subprocess.run(
        [str(python), str(script), str(ref_path), str(cur_path)], capture_output=True, text=True, env=env, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"Evidently failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_ours(ref: Any, cur: Any, **params: Any) -> dict[str, Any]:
    """fit + score, timed separately; per-column method and score."""
    c0, t0 = time.process_time(), time.perf_counter()
    det = DataDriftDetector(**params).fit(ref)
    c1, t1 = time.process_time(), time.perf_counter()
    report = det.score(cur)
    c2, t2 = time.process_time(), time.perf_counter()
    profile = det.profile_.to_json()
    return {
        "fit_s": t1 - t0,
        "score_s": t2 - t1,
        "total_s": t2 - t0,
        "cpu_fit_s": c1 - c0,
        "cpu_score_s": c2 - c1,
        "profile_bytes": len(profile),
        "drifted": report.n_drifted,
        "dataset_drift": report.dataset_drift,
        "exact_columns": sum(c.exact for c in report.columns),
        "columns": {c.column: {"method": c.method, "score": c.score} for c in report.columns},
    }


def agreement(ours: dict[str, Any], ev: dict[str, Any]) -> dict[str, Any]:
    """Max |ours - Evidently| per method over columns where both chose that method."""
    same, differ, worst = 0, [], {}
    for col, e in ev["columns"].items():
        o = ours["columns"].get(col)
        method = EV_METHOD.get(e["method"], e["method"])
        if o is None or o["method"] != method:
            differ.append({"column": col, "ours": None if o is None else o["method"], "evidently": method})
            continue
        same += 1
        diff = abs(float(o["score"]) - float(e["score"]))
        worst[method] = max(worst.get(method, 0.0), diff)
    return {
        "columns_same_method": same,
        "columns_other_method": differ,
        "max_abs_diff_by_method": worst,
        "max_abs_diff": max(worst.values(), default=None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,300000", help="Row counts run with both tools.")
    parser.add_argument("--ours-sizes", default="1000000", help="Row counts run with ours only.")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    both = [int(s) for s in args.sizes.split(",") if s]
    ours_only = [int(s) for s in args.ours_sizes.split(",") if s]
    python = ensure_evidently() if both else None
    warm_ref, warm_cur = make_data(2000, args.seed + 1)
    run_ours(warm_ref, warm_cur)  # imports and first-call costs are not what is measured
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-drift-") as tmp:
        for n in sorted(set(both + ours_only)):
            ref, cur = make_data(n, args.seed)
            ref_path, cur_path = Path(tmp) / f"ref_{n}.parquet", Path(tmp) / f"cur_{n}.parquet"
            ref.to_parquet(ref_path)
            cur.to_parquet(cur_path)
            ref, cur = pd.read_parquet(ref_path), pd.read_parquet(cur_path)  # what Evidently reads too
            row: dict[str, Any] = {"rows": n, "columns": ref.shape[1]}
            default = run_ours(ref, cur)
            exact = run_ours(ref, cur, max_points=None)
            arrow = run_ours(pa.Table.from_pandas(ref), pa.Table.from_pandas(cur))
            row["ours_default"] = {k: v for k, v in default.items() if k != "columns"}
            row["ours_exact"] = {k: v for k, v in exact.items() if k != "columns"}
            row["ours_arrow"] = {k: v for k, v in arrow.items() if k != "columns"}
            print(
                f"{n:>9} rows  ours fit+score {default['total_s']:.2f} s (score {default['score_s']:.2f} s; "
                f"CPU {default['cpu_fit_s'] + default['cpu_score_s']:.2f} s), exact {exact['total_s']:.2f} s, "
                f"arrow {arrow['total_s']:.2f} s",
                flush=True,
            )
            if n in both and python is not None:
                ev = run_evidently(python, ref_path, cur_path)
                row["evidently_s"] = ev["seconds"]
                row["evidently_drifted"] = ev["drifted"]
                row["speedup_default"] = ev["seconds"] / default["total_s"]
                row["speedup_exact"] = ev["seconds"] / exact["total_s"]
                row["agreement_exact"] = agreement(exact, ev)
                row["agreement_default"] = agreement(default, ev)
                print(
                    f"{'':>9}       Evidently {ev['seconds']:.1f} s -> {row['speedup_default']:.0f}x "
                    f"(exact {row['speedup_exact']:.0f}x); max |diff| exact "
                    f"{row['agreement_exact']['max_abs_diff']:.2e}, default "
                    f"{row['agreement_default']['max_abs_diff']:.2e}",
                    flush=True,
                )
            runs.append(row)
            del ref, cur
    target = write_result(
        "drift",
        {
            "peer": EVIDENTLY,
            "what": "fit + score of 50 columns (25 numeric, 25 categorical); Evidently: "
            "Report([DataDriftPreset()]).run on the same pandas frames",
            "load_average_1m": os.getloadavg()[0],
            "note": "wall seconds on a shared 2-core machine; cpu_* is process CPU time (all threads)",
            "runs": runs,
        },
    )
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
