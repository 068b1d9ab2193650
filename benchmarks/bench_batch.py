"""Batch scoring of a warehouse table: rows/s in-process and on Ray, and that both agree.

The table holds the claim features of 20,000 generated claims, repeated (with fresh ids) up to
``--rows`` rows. The governed fraud model scores it with ``score_table`` on the local engine and
on a local Ray (two CPUs); the two output tables are compared.

Run: ``.venv/bin/python benchmarks/bench_batch.py [--rows 1000000] [--chunk-rows 100000]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--engines", default="local,ray")
    args = parser.parse_args()

    from aiw.data.sample import generate
    from aiw.governance.identity import Principal
    from aiw.mlops.registry import ModelRegistry, PromotionWorkflow
    from aiw.mlops.serving.batch import RayEngine, score_table
    from aiw.mlops.training import CLAIM_FEATURES_SQL, train_claims_fraud
    from aiw.settings import build_settings
    from aiw.workspace import Workspace

    for var in [v for v in os.environ if v.startswith("AIW_")]:
        del os.environ[var]
    tmp = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    results = {}
    try:
        ws = Workspace(build_settings(home=tmp / "ws")).init()
        generate(ws, rows=20_000, seed=7)
        trained = train_claims_fraud(ws, name="claims-fraud")
        ds, ap, admin = Principal("ds", "data_scientist"), Principal("ap", "approver"), Principal("ad", "admin")
        mv = ModelRegistry(ws).register(trained.logged, "claims-fraud", ds)
        wf = PromotionWorkflow(ws)
        wf.approve(wf.request("claims-fraud", mv.version, "production", ds).id, ap)
        wf.promote("claims-fraud", mv.version, "production", admin)
        conn = ws.connect_warehouse(ai_functions=False)
        try:
            conn.execute(f"CREATE TABLE base AS {CLAIM_FEATURES_SQL}")
            base = int(conn.execute("SELECT count(*) FROM base").fetchone()[0])
            copies = -(-args.rows // base)
            conn.execute(
                f"CREATE TABLE to_score AS SELECT * REPLACE (claim_id * {copies} + r.range AS claim_id) "
                f"FROM base, range({copies}) AS r ORDER BY claim_id LIMIT {args.rows}"
            )
        finally:
            conn.close()
        for engine_name in args.engines.split(","):
            engine = RayEngine(ws.settings.engine) if engine_name == "ray" else engine_name
            try:
                r = score_table(
                    ws,
                    "claims-fraud",
                    "to_score",
                    f"scored_{engine_name}",
                    ds,
                    engine=engine,
                    chunk_rows=args.chunk_rows,
                )
            finally:
                if isinstance(engine, RayEngine):
                    engine.close()
            results[engine_name] = {
                "rows": r.rows,
                "chunks": r.chunks,
                "seconds": round(r.seconds, 2),
                "rows_per_s": round(r.rows_per_s),
            }
            print(f"  {engine_name}: {r.rows:,} rows in {r.seconds:.1f} s = {r.rows_per_s:,.0f} rows/s", flush=True)
        identical = None
        if {"local", "ray"} <= set(results):
            conn = ws.connect_warehouse(ai_functions=False)
            try:
                diff = conn.execute(
                    "SELECT count(*) FROM (SELECT * FROM scored_local EXCEPT ALL SELECT * FROM scored_ray)"
                ).fetchone()[0]
            finally:
                conn.close()
            identical = diff == 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    path = write_result(
        "batch",
        {
            "model": "claims-fraud (HistGradientBoostingClassifier pipeline, scikit-learn runtime, exact)",
            "rows": args.rows,
            "chunk_rows": args.chunk_rows,
            "results": results,
            "local_and_ray_identical": identical,
            "ray": "local Ray, 2 CPUs, 2 scorer actors (start-up included in the time)",
            "load_average_at_end": os.getloadavg(),
        },
    )
    print(f"identical outputs: {identical}; wrote {path}")


if __name__ == "__main__":
    main()
