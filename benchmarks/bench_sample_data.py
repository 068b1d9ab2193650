"""Sample data generation: ``aiw.data.sample.generate`` at 100,000 and 1,000,000 claims, against Faker.

Measured, each in a fresh subprocess and a fresh workspace (so peak memory is per run):

* ours: ``generate(ws, rows=N, seed=1, end_date=2025-06-30)``, which writes all six tables
  (customers N/2, policies 3N/4, claims N, payments ~N, anomalies, 32 documents) into DuckDB with
  seasonality, anomalies, a fraud label and composed notes; wall seconds, claims/s, all rows/s,
  seconds per table, peak RSS;
* the peer: the usual way to fake such a table, Faker row at a time (``Faker.seed``; names,
  dates, a 3-sentence ``paragraph`` as the note, ``random`` for the rest), the rows gathered in a
  pandas DataFrame and loaded into DuckDB with one ``CREATE TABLE AS``. It makes the claims table
  only (no customers, policies, payments, seasonality or label model): it does less work.

The target is one million claims in under a minute on 2 cores. The machine is shared with other
jobs, so CPU seconds (all threads of the process) are recorded beside wall seconds, and the load
average at the start and the end of the run.

Run: ``.venv/bin/python benchmarks/bench_sample_data.py [--sizes 100000,1000000] [--peer-rows 100000]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result

END = "2025-06-30"


def _cpu() -> float:
    """CPU seconds of this process, every thread (insensitive to other jobs on the machine)."""
    t = os.times()
    return t.user + t.system


def _ours(rows: int, home: Path) -> dict[str, Any]:
    from aiw.data.sample import generate
    from aiw.settings import build_settings
    from aiw.workspace import Workspace

    ws = Workspace(build_settings(home=home)).init()
    started, cpu = time.perf_counter(), _cpu()
    summary = generate(ws, rows=rows, seed=1, end_date=END)
    seconds, cpu = time.perf_counter() - started, _cpu() - cpu
    written = sum(summary.rows.values())
    return {
        "rows": rows,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "claims_per_s": round(rows / seconds),
        "all_rows_per_s": round(written / seconds),
        "tables": summary.rows,
        "seconds_per_table": {k: round(v, 2) for k, v in summary.seconds.items()},
        "fraud_rate": round(summary.fraud_rate, 4),
        "anomalies": summary.anomalies,
        "warehouse_mb": round(ws.warehouse_path.stat().st_size / 2**20, 1),
    }


def _peer(rows: int, home: Path) -> dict[str, Any]:
    import random
    from datetime import date, datetime, timedelta

    import duckdb
    import pandas as pd
    from faker import Faker

    fake = Faker()
    Faker.seed(1)
    rnd = random.Random(1)
    end = date.fromisoformat(END)
    start = end - timedelta(days=3 * 365 - 1)
    lines = ("auto", "home", "health", "travel", "life")
    types = ("collision", "water_damage", "outpatient", "lost_baggage", "death_benefit")
    regions = ("north", "south", "east", "west", "central")
    channels = ("web", "phone", "agent", "app")
    statuses = ("open", "under_review", "approved", "denied", "paid")
    started, cpu = time.perf_counter(), _cpu()
    records = []
    for i in range(rows):
        k = rnd.randrange(5)
        incident = fake.date_between(start, end)
        delay = min(int(rnd.lognormvariate(1, 1)), (end - incident).days)
        reported = datetime.combine(incident + timedelta(days=delay), datetime.min.time()) + timedelta(
            seconds=rnd.randrange(86400)
        )
        records.append(
            (
                i + 1,
                rnd.randint(1, rows * 3 // 4),
                rnd.randint(1, rows // 2),
                lines[k],
                types[k],
                rnd.choice(regions),
                rnd.choice(channels),
                incident,
                reported,
                round(rnd.lognormvariate(8, 1), 2),
                rnd.choice(statuses),
                delay,
                rnd.randrange(4),
                fake.paragraph(nb_sentences=3),
                rnd.random() < 0.045,
                reported,
            )
        )
    frame = pd.DataFrame.from_records(
        records,
        columns=[
            "claim_id",
            "policy_id",
            "customer_id",
            "line_of_business",
            "claim_type",
            "region",
            "channel",
            "incident_date",
            "reported_at",
            "amount",
            "status",
            "days_to_report",
            "prior_claims",
            "adjuster_notes",
            "is_fraud",
            "updated_at",
        ],
    )
    home.mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect(str(home / "peer.duckdb"))
    conn.register("frame", frame)
    conn.execute("CREATE TABLE claims AS SELECT * FROM frame")
    conn.close()
    seconds, cpu = time.perf_counter() - started, _cpu() - cpu
    notes = frame.adjuster_notes
    return {
        "rows": rows,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "claims_per_s": round(rows / seconds),
        "distinct_notes_ratio": round(notes.nunique() / len(notes), 4),
    }


def _worker(kind: str, rows: int) -> None:
    with tempfile.TemporaryDirectory(prefix=f"bench-sample-{kind}-") as tmp:
        result = (_ours if kind == "ours" else _peer)(rows, Path(tmp) / "ws")
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(result))


def _run(kind: str, rows: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", kind, "--rows", str(rows)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"{kind:>5} {rows:>10,} claims: {result['seconds']:7.2f} s wall, {result['cpu_seconds']:7.2f} s CPU, "
        f"{result['claims_per_s']:>9,} claims/s",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--peer-rows", type=int, default=100_000)
    parser.add_argument("--worker", choices=["ours", "peer"])
    parser.add_argument("--rows", type=int)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.rows)
        return
    load_start = os.getloadavg()
    sizes = [int(s) for s in args.sizes.split(",")]
    ours = {str(n): _run("ours", n) for n in sizes}
    peer = _run("peer", args.peer_rows)
    load_end = os.getloadavg()
    same = str(args.peer_rows)
    payload: dict[str, Any] = {
        "what": "rows/s of sample data generation into the DuckDB warehouse; peer: Faker row at a time "
        "+ pandas + DuckDB, claims table only",
        "ours": ours,
        "peer_faker": peer,
        "ratios": {
            "ours_vs_faker_claims_per_s": round(ours[same]["claims_per_s"] / peer["claims_per_s"], 1),
            "faker_vs_ours_cpu_seconds": round(peer["cpu_seconds"] / ours[same]["cpu_seconds"], 1),
        }
        if same in ours
        else {},
        # Wall time depends on what else runs; CPU seconds bound the wall time on an idle machine
        # from above (DuckDB uses both cores, so an idle run is faster still).
        "target": {
            "claims": 1_000_000,
            "max_seconds": 60,
            "met_wall": ours["1000000"]["seconds"] < 60 if "1000000" in ours else None,
            "met_cpu": ours["1000000"]["cpu_seconds"] < 60 if "1000000" in ours else None,
        },
        "load_average": {"start": [round(x, 2) for x in load_start], "end": [round(x, 2) for x in load_end]},
    }
    path = write_result("sample_data", payload)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
