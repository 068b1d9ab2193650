"""Foundation figures: audit appends per second (SQLite, PostgreSQL), verify time over 100,000
records, and the wall time of ``aiw --help``.

Run: ``.venv/bin/python benchmarks/bench_foundation.py [--records 100000]``
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result

from aiw.settings import build_settings
from aiw.workspace import Workspace

PG = "postgresql://postgres@127.0.0.1:5432/test"


def _appends_per_second(ws: Workspace, n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        ws.audit.append("bench", "bench.append", f"r:{i}", details={"i": i})
    return n / (time.perf_counter() - started)


def _fill(ws: Workspace, total: int) -> None:
    """Append up to ``total`` records in batches of one transaction each (same chain code)."""
    have = ws.audit.verify().checked
    while have < total:
        batch = min(5000, total - have)
        with ws.db.begin() as conn:
            for i in range(batch):
                ws.audit.append("bench", "bench.fill", f"r:{have + i}", details={"i": have + i}, conn=conn)
        have += batch


def _measure(url: str, appends: int, records: int, label: str) -> dict[str, float]:
    home = Path(tempfile.mkdtemp(prefix="aiw-bench-"))
    ws = Workspace(build_settings(home=home, metadata={"url": url})).init()
    rate = _appends_per_second(ws, appends)
    _fill(ws, records)
    started = time.perf_counter()
    report = ws.audit.verify()
    verify_s = time.perf_counter() - started
    assert report.ok and report.checked == records, report
    print(f"{label}: {rate:,.0f} appends/s (one transaction each); verify {records:,} records in {verify_s:.2f} s")
    ws.db.dispose()
    return {
        "appends_per_s": round(rate, 1),
        "verify_records": records,
        "verify_s": round(verify_s, 3),
        "verify_records_per_s": round(records / verify_s, 1),
    }


def _help_time(runs: int = 5) -> dict[str, float]:
    aiw = Path(sys.executable).with_name("aiw")
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([str(aiw), "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    print(f"aiw --help: median {statistics.median(times):.3f} s over {runs} runs")
    return {"median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    result = {"sqlite": _measure("", args.appends, args.records, "SQLite")}
    schema = f"aiw_bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(PG.replace("postgresql://", "postgresql+psycopg://"))
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        result["postgresql"] = _measure(
            f"{PG}?options=-csearch_path%3D{schema}", args.appends, args.records, "PostgreSQL"
        )
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    result["help"] = _help_time()
    print(write_result("foundation", result))


if __name__ == "__main__":
    main()
