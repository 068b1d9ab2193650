"""``ai_embed`` in SQL: texts/s of the DuckDB function over distinct texts, end to end through the
read-only query runner, against ``SentenceTransformer.encode`` on the same texts (goal: within
10%), and a second query over the same texts answered from the persistent embedding cache (goal:
at least 50x faster than the first).

This is the SQL-level figure; ``bench_embed.py`` measures the provider alone. Texts are the same
distinct "notes" as there. The machine may be shared, so the two contenders alternate block by
block (who goes first alternates too): a burst of load elsewhere hits both alike. Wall and CPU
time (all threads of the process) are reported.

Run: ``.venv/bin/python benchmarks/bench_sql_embed.py [--texts 20000] [--block 1000]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from _common import write_result
from bench_embed import _texts  # the same texts as the provider benchmark

from aiw.settings import build_settings
from aiw.sql.runner import run_query
from aiw.workspace import Workspace


def _timed(fn: Any, *args: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _vectors(result: object) -> np.ndarray:
    table = result.table  # type: ignore[attr-defined]
    flat = table.column("v").combine_chunks().flatten().to_numpy()
    return flat.reshape(table.num_rows, -1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=20_000, help="distinct texts embedded")
    parser.add_argument("--block", type=int, default=1_000, help="texts per alternating block")
    args = parser.parse_args()

    import pyarrow as pa

    from aiw.providers.embeddings import SentenceEmbedder

    texts = _texts(args.texts)
    assert len(set(texts)) == len(texts)
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(build_settings(home=Path(tmp) / "ws")).init()
        batch_size = ws.settings.embeddings.batch_size
        conn = ws.connect_warehouse(ai_functions=False)
        conn.register("src", pa.table({"id": np.arange(len(texts), dtype=np.int64), "note": texts}))
        conn.execute("CREATE TABLE notes AS SELECT * FROM src")
        conn.close()
        model = SentenceEmbedder(ws.settings.embeddings).model
        model.encode(texts[:64], batch_size=batch_size)  # load and warm the shared weights
        run_query(ws, "SELECT ai_embed('warm up') AS v")  # the same for the SQL path (this text is not timed)
        print(f"{len(texts):,} distinct texts, batch size {batch_size}", file=sys.stderr)

        peer_parts, sql_parts = [], []
        peer_wall = peer_cpu = sql_wall = sql_cpu = 0.0
        for b, start in enumerate(range(0, len(texts), args.block)):
            stop = min(start + args.block, len(texts))
            block = texts[start:stop]
            for who in ("peer", "sql") if b % 2 == 0 else ("sql", "peer"):
                if who == "peer":
                    vectors, wall, cpu = _timed(
                        lambda block=block: model.encode(
                            block,
                            batch_size=batch_size,
                            normalize_embeddings=True,
                            convert_to_numpy=True,
                            show_progress_bar=False,
                        )
                    )
                    peer_parts.append(vectors)
                    peer_wall, peer_cpu = peer_wall + wall, peer_cpu + cpu
                else:
                    sql = f"SELECT id, ai_embed(note) AS v FROM notes WHERE id >= {start} AND id < {stop} ORDER BY id"
                    result, wall, cpu = _timed(run_query, ws, sql)
                    sql_parts.append(_vectors(result))
                    sql_wall, sql_cpu = sql_wall + wall, sql_cpu + cpu
        print(
            f"SentenceTransformer.encode:  {len(texts) / peer_wall:8.1f} texts/s ({peer_wall:.1f} s)", file=sys.stderr
        )
        print(f"ai_embed in DuckDB, first:   {len(texts) / sql_wall:8.1f} texts/s ({sql_wall:.1f} s)", file=sys.stderr)
        second, second_wall, second_cpu = _timed(
            lambda: run_query(ws, "SELECT id, ai_embed(note) AS v FROM notes ORDER BY id", row_limit=len(texts))
        )
        print(
            f"ai_embed in DuckDB, second:  {len(texts) / second_wall:8.1f} texts/s ({second_wall:.3f} s)",
            file=sys.stderr,
        )
        first = np.concatenate(sql_parts)
        again = _vectors(second)
        ws.db.dispose()

    peer = np.concatenate(peer_parts)
    max_diff = float(np.abs(first - peer).max())
    path = write_result(
        "sql_embed",
        {
            "texts": len(texts),
            "block": args.block,
            "batch_size": batch_size,
            "torch_threads": __import__("torch").get_num_threads(),
            "load_average_at_end": list(os.getloadavg()),
            "texts_per_s": {
                "sentence_transformers_encode": len(texts) / peer_wall,
                "ai_embed_first_run": len(texts) / sql_wall,
                "ai_embed_second_run_cached": len(texts) / second_wall,
            },
            "seconds": {
                "sentence_transformers_encode": peer_wall,
                "ai_embed_first_run": sql_wall,
                "ai_embed_second_run_cached": second_wall,
            },
            "cpu_seconds": {
                "sentence_transformers_encode": peer_cpu,
                "ai_embed_first_run": sql_cpu,
                "ai_embed_second_run_cached": second_cpu,
            },
            "ratios": {
                "ai_embed_first_vs_encode_wall": round(peer_wall / sql_wall, 3),
                "ai_embed_first_vs_encode_cpu": round(peer_cpu / sql_cpu, 3),
                "second_run_speedup_vs_first": round(sql_wall / second_wall, 1),
            },
            "goals_met": {
                "first_run_within_10_percent_of_encode_wall": sql_wall <= 1.10 * peer_wall,
                "second_run_at_least_50x_faster": sql_wall >= 50 * second_wall,
                "second_run_identical": bool(np.array_equal(first, again)),
            },
            "max_abs_diff_vs_encode": max_diff,
        },
    )
    print(f"max |ai_embed - encode| = {max_diff:.2e}; wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
