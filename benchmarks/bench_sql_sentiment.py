"""``ai_sentiment`` in SQL: rows/s of the DuckDB function over distinct rows, end to end through the
platform's read-only query runner, against (a) the bare vaderSentiment loop in Python and (b) the
same scorer as a row-at-a-time Python UDF in SQLite (the original design), scores checked identical.

This is the SQL-level figure; ``bench_sentiment.py`` measures the provider alone. Rows are the
same distinct "notes" (two review sentences of ../shared/data/sentiment and a row number), stored
in a DuckDB table of a temporary workspace; the query is
``SELECT id, ai_sentiment(note) FROM notes`` and every score is fetched.

Run: ``.venv/bin/python benchmarks/bench_sql_sentiment.py [--rows 1000000]``
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result
from bench_sentiment import _reviews, _rows  # the same rows as the provider benchmark

from aiw.settings import build_settings
from aiw.sql.runner import run_query
from aiw.workspace import Workspace


def _timed(fn: Any, *args: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="distinct rows scored by every contender")
    args = parser.parse_args()

    import pyarrow as pa
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()

    def vader(text: str) -> float:
        return analyzer.polarity_scores(text)["compound"]

    rows = _rows(args.rows, [t for rs in _reviews().values() for t, _ in rs])
    assert len(set(rows)) == len(rows)
    print(f"{len(rows):,} distinct rows", file=sys.stderr)

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(build_settings(home=Path(tmp) / "ws")).init()
        conn = ws.connect_warehouse(ai_functions=False)
        conn.register("src", pa.table({"id": np.arange(len(rows), dtype=np.int64), "note": rows}))
        conn.execute("CREATE TABLE notes AS SELECT * FROM src")
        conn.close()

        def ours() -> np.ndarray:
            result = run_query(ws, "SELECT id, ai_sentiment(note) AS s FROM notes", row_limit=len(rows),
                               timeout_s=36_000)
            ids = result.table.column("id").to_numpy()
            scores = np.empty(len(rows))
            scores[ids] = result.table.column("s").to_numpy()
            return scores

        cold, t_cold = _timed(ours)
        print(f"ai_sentiment in DuckDB (first query): {len(rows) / t_cold:>10,.0f} rows/s", file=sys.stderr)
        warm, t_warm = _timed(ours)
        print(f"ai_sentiment in DuckDB (second):      {len(rows) / t_warm:>10,.0f} rows/s", file=sys.stderr)
        ws.db.dispose()

    bare, t_bare = _timed(lambda: np.array([vader(t) for t in rows]))
    print(f"bare VADER loop:                      {len(rows) / t_bare:>10,.0f} rows/s", file=sys.stderr)
    lite = sqlite3.connect(":memory:")
    lite.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, note TEXT)")
    lite.executemany("INSERT INTO notes (id, note) VALUES (?, ?)", enumerate(rows))
    lite.create_function("vader", 1, vader, deterministic=True)
    udf, t_udf = _timed(lambda: np.array([r[0] for r in lite.execute("SELECT vader(note) FROM notes ORDER BY id")]))
    print(f"SQLite row UDF:                       {len(rows) / t_udf:>10,.0f} rows/s", file=sys.stderr)

    mismatches = {"duckdb_first": int((cold != bare).sum()), "duckdb_second": int((warm != bare).sum()),
                  "sqlite_udf": int((udf != bare).sum())}
    rate = {"ai_sentiment_duckdb_first": len(rows) / t_cold, "ai_sentiment_duckdb_second": len(rows) / t_warm,
            "bare_vader_loop": len(rows) / t_bare, "sqlite_row_udf": len(rows) / t_udf}
    path = write_result("sql_sentiment", {
        "rows": len(rows),
        "duckdb_threads": "default (all cores)",
        "load_average_at_end": list(os.getloadavg()),
        "rows_per_s": {k: round(v, 1) for k, v in rate.items()},
        "seconds": {"ai_sentiment_duckdb_first": t_cold, "ai_sentiment_duckdb_second": t_warm,
                    "bare_vader_loop": t_bare, "sqlite_row_udf": t_udf},
        "ratios": {"duckdb_vs_bare": round(rate["ai_sentiment_duckdb_first"] / rate["bare_vader_loop"], 2),
                   "duckdb_vs_sqlite_udf": round(rate["ai_sentiment_duckdb_first"] / rate["sqlite_row_udf"], 2)},
        "goal": "ai_sentiment >= 3x both peers, scores identical",
        "goals_met": {"3x_bare_loop": rate["ai_sentiment_duckdb_first"] >= 3 * rate["bare_vader_loop"],
                      "3x_sqlite_udf": rate["ai_sentiment_duckdb_first"] >= 3 * rate["sqlite_row_udf"],
                      "identical": not any(mismatches.values())},
        "mismatches_vs_bare_loop": mismatches,
    })
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
