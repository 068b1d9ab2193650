"""``ai_sentiment`` in SQL: rows/s of the DuckDB function over distinct rows, end to end through the
platform's read-only query runner, against (a) the bare vaderSentiment loop in Python and (b) the
same scorer as a row-at-a-time Python UDF in SQLite (the original design), scores checked identical.

This is the SQL-level figure; ``bench_sentiment.py`` measures the provider alone. Rows are the
same distinct "notes" (two review sentences of ../shared/data/sentiment and a row number), stored
in a DuckDB table of a temporary workspace and in an SQLite table. Ours is ``SELECT id,
ai_sentiment(note) FROM notes`` through :func:`aiw.sql.runner.run_query` with every score fetched,
in a fresh process whose worker processes start during its first query (charged to it). The
machine may be shared, so the contenders take ``--rounds`` turns, in the order A B C, then C B A,
and so on, which cancels a steady drift in the load; rates are over all rounds. Each round has
its own ``--rows`` rows, and no row occurs twice in the whole run: nothing any contender keeps
from one text (scores are not cached at all; ours keeps how it classified each token) is reused
for the same text.

Run: ``.venv/bin/python benchmarks/bench_sql_sentiment.py [--rows 1000000] [--rounds 2]``
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result
from bench_sentiment import _reviews, _rows  # the same rows as the provider benchmark

from aiw.providers import sentiment
from aiw.settings import build_settings
from aiw.sql.runner import run_query
from aiw.workspace import Workspace


def _workers_cpu() -> float:
    """CPU seconds (user + system) used so far by the sentiment worker processes (Linux /proc)."""
    total = 0.0
    for pool in list(sentiment._POOLS.values()):
        processes = getattr(pool, "_processes", None)  # private: fail loudly rather than count 0 s
        if processes is None:
            raise RuntimeError("cannot find the sentiment pool's worker processes to measure their CPU time")
        for pid in list(processes):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="distinct rows scored by every contender")
    parser.add_argument("--rounds", type=int, default=2, help="times every contender scores all rows")
    args = parser.parse_args()

    import pyarrow as pa
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()

    def vader(text: str) -> float:
        return analyzer.polarity_scores(text)["compound"]

    n = args.rows
    every = _rows(n * args.rounds, [t for rs in _reviews().values() for t, _ in rs])
    assert len(set(every)) == len(every)
    rounds = [every[r * n : (r + 1) * n] for r in range(args.rounds)]
    print(f"{n:,} distinct rows a round, {args.rounds} rounds, load average {os.getloadavg()}", file=sys.stderr)

    lite = sqlite3.connect(":memory:")
    lite.create_function("vader", 1, vader, deterministic=True)
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(build_settings(home=Path(tmp) / "ws")).init()
        conn = ws.connect_warehouse(ai_functions=False)
        for r, rows in enumerate(rounds):
            lite.execute(f"CREATE TABLE notes_{r} (id INTEGER PRIMARY KEY, note TEXT)")
            lite.executemany(f"INSERT INTO notes_{r} (id, note) VALUES (?, ?)", enumerate(rows))
            conn.register("src", pa.table({"id": np.arange(n, dtype=np.int64), "note": rows}))
            conn.execute(f"CREATE TABLE notes_{r} AS SELECT * FROM src ORDER BY id")
            conn.unregister("src")
        conn.close()

        def ours(r: int) -> np.ndarray:
            result = run_query(ws, f"SELECT id, ai_sentiment(note) AS s FROM notes_{r}", row_limit=n, timeout_s=36_000)
            scores = np.empty(n)
            scores[result.table.column("id").to_numpy()] = result.table.column("s").to_numpy()
            return scores

        def bare_loop(r: int) -> np.ndarray:  # (a) the bare VADER loop
            return np.array([vader(t) for t in rounds[r]])

        def sqlite_udf(r: int) -> np.ndarray:  # (b) a row-at-a-time Python UDF in SQLite
            return np.array([row[0] for row in lite.execute(f"SELECT vader(note) FROM notes_{r} ORDER BY id")])

        contenders = {"ai_sentiment_duckdb": ours, "bare_vader_loop": bare_loop, "sqlite_row_udf": sqlite_udf}
        wall: dict[str, list[float]] = {name: [] for name in contenders}
        cpu = dict.fromkeys(contenders, 0.0)  # this process's CPU seconds, plus the workers' for ours
        load: dict[str, list[float]] = {name: [] for name in contenders}  # 1-minute load average at start
        results: dict[str, list[np.ndarray]] = {name: [] for name in contenders}
        names = list(contenders)
        for r in range(args.rounds):
            for name in names if r % 2 == 0 else names[::-1]:
                load[name].append(os.getloadavg()[0])
                w, c, wc = time.perf_counter(), time.process_time(), _workers_cpu()
                got = contenders[name](r)
                wall[name].append(time.perf_counter() - w)
                cpu[name] += time.process_time() - c + (_workers_cpu() - wc if name == "ai_sentiment_duckdb" else 0)
                results[name].append(got)
                print(
                    f"  round {r + 1} {name}: {n / wall[name][-1]:,.0f} rows/s (load {load[name][-1]:.1f})",
                    file=sys.stderr,
                )
        ws.db.dispose()

    bare = results["bare_vader_loop"]  # vaderSentiment's own scores, round by round
    mismatches = {
        name: sum(int((got != ref).sum()) for got, ref in zip(runs, bare, strict=True))
        for name, runs in results.items()
        if name != "bare_vader_loop"  # the reference itself
    }
    rate = {name: n * len(times) / sum(times) for name, times in wall.items()}
    for name, value in rate.items():
        print(f"{name:>20}: {value:>10,.0f} rows/s", file=sys.stderr)
    print(f"scores different from vaderSentiment's: {mismatches}", file=sys.stderr)
    ours_rate = rate["ai_sentiment_duckdb"]
    path = write_result(
        "sql_sentiment",
        {
            "rows": n,
            "rounds": args.rounds,
            "rows_distinct_across_rounds": True,
            "order": "A B C, then C B A, ... (A = ai_sentiment_duckdb, B = bare_vader_loop, C = sqlite_row_udf)",
            "duckdb_threads": "default (all cores)",
            "workers": os.cpu_count(),
            "load_average_1min_at_start": load,
            "load_average_at_end": list(os.getloadavg()),
            "rows_per_s": {k: round(v, 1) for k, v in rate.items()},
            "rows_per_s_by_round": {k: [round(n / t, 1) for t in times] for k, times in wall.items()},
            "seconds": wall,
            "cpu_seconds": cpu,
            "rows_per_cpu_second": {k: round(n * args.rounds / v, 1) for k, v in cpu.items() if v > 0},
            "ratios": {
                "duckdb_vs_bare": round(ours_rate / rate["bare_vader_loop"], 2),
                "duckdb_vs_sqlite_udf": round(ours_rate / rate["sqlite_row_udf"], 2),
                "duckdb_first_query_vs_bare": round(n / wall["ai_sentiment_duckdb"][0] / rate["bare_vader_loop"], 2),
                "duckdb_vs_bare_per_cpu_second": round(cpu["bare_vader_loop"] / cpu["ai_sentiment_duckdb"], 2),
            },
            "goal": "ai_sentiment >= 3x both peers, scores identical",
            "goals_met": {
                "3x_bare_loop": ours_rate >= 3 * rate["bare_vader_loop"],
                "3x_sqlite_udf": ours_rate >= 3 * rate["sqlite_row_udf"],
                "identical": not any(mismatches.values()),
            },
            "mismatches_vs_vadersentiment": mismatches,
        },
    )
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
