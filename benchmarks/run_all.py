"""Run every benchmark (``benchmarks/bench_*.py``) one after another: ``make bench``.

Each benchmark runs in its own process (so one's memory and threads do not colour the next), writes
its own JSON under ``bench-results/``, and this runner writes ``bench-results/summary.json`` with
each one's exit code, wall time and the machine's load average before it started. A failing
benchmark is reported and the others still run; the exit code is non-zero when any failed.

    python benchmarks/run_all.py                      # all of them (an hour or more on 2 cores)
    python benchmarks/run_all.py --only rag,drift     # bench_rag.py and bench_drift.py
    python benchmarks/run_all.py --list
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import write_result

HERE = Path(__file__).resolve().parent


def _benchmarks() -> dict[str, Path]:
    return {p.stem.removeprefix("bench_"): p for p in sorted(HERE.glob("bench_*.py"))}


def main() -> int:
    found = _benchmarks()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help=f"Comma-separated names among: {', '.join(found)}.")
    parser.add_argument("--skip", default="", help="Comma-separated names to leave out.")
    parser.add_argument("--list", action="store_true", help="List the benchmarks and exit.")
    args = parser.parse_args()
    if args.list:
        print("\n".join(found))
        return 0
    chosen = [n.strip() for n in args.only.split(",") if n.strip()] or list(found)
    skip = {n.strip() for n in args.skip.split(",") if n.strip()}
    unknown = sorted((set(chosen) | skip) - set(found))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; choose among: {', '.join(found)}")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    runs = []
    for name in (n for n in chosen if n not in skip):
        load = os.getloadavg()[0]
        print(f"== {name} (load average {load:.2f})", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, str(found[name])], cwd=HERE.parent, env=env)
        seconds = round(time.perf_counter() - started, 1)
        print(f"== {name}: {'ok' if code == 0 else f'FAILED (exit {code})'} in {seconds} s", flush=True)
        runs.append({"benchmark": name, "exit_code": code, "seconds": seconds, "load_before": round(load, 2)})
    failed = [r["benchmark"] for r in runs if r["exit_code"] != 0]
    path = write_result("summary", {"runs": runs, "failed": failed})
    print(f"summary: {path}" + (f"; failed: {', '.join(failed)}" if failed else "; all passed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
