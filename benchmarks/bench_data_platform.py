"""The data platform at scale: daily-validation end to end, point-in-time joins, online lookups.

Measured:
* ``daily-validation`` end to end on N generated claims (default 100,000 and 1,000,000): wall
  seconds of each step (dbt build with its tests and source freshness, quality gates, embedding
  refresh, serving drift, summary report). The document corpus is the same 32 documents at
  every size; the embedding cache is warmed once beforehand, so the refresh step measures the
  diff, the gate and the swap, and the cold embedding of the corpus is reported apart.
* A point-in-time training set of P entity rows (default 1,000,000: customers at the claims'
  report times) against the ``customer_features`` history, through Feast
  (``get_historical_features``, file offline store), and the same join written as a DuckDB
  ``ASOF JOIN`` over the same Parquet file (the limit). The two results are compared.
* Online lookups of a batch of 100 customers, p50/p99 over R repeats, from the SQLite online
  store and from Redis (AIW_TEST_REDIS_URL, default redis://127.0.0.1:6379/0; its own Feast
  project, torn down afterwards).

Run: ``.venv/bin/python benchmarks/bench_data_platform.py [--sizes 100000,1000000]
[--pit-rows 1000000] [--repeats 200]``; ``--quick`` uses 20,000 and 100,000 claims and 100,000 rows.
Writes ``bench-results/data_platform.json``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REDIS_URL = os.environ.get("AIW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _workspace(home: Path, **overrides: Any) -> Any:
    from aiw.settings import build_settings
    from aiw.workspace import Workspace

    return Workspace(build_settings(home=home, **overrides)).init()


def warm_embeddings(root: Path) -> tuple[Path, float]:
    """Embed the sample corpus once (cold), so later workspaces reuse the cache."""
    from aiw.data.dbt_runner import DbtRunner
    from aiw.data.sample import generate
    from aiw.pipelines.embedding_refresh import EmbeddingRefresher

    ws = _workspace(root / "warm")
    generate(ws, rows=1000, seed=1)
    DbtRunner(ws).build(select=["+document_index"], freshness=False, actor="bench")
    started = time.perf_counter()
    report = EmbeddingRefresher(ws, ws.settings).refresh(actor="bench")
    seconds = time.perf_counter() - started
    print(f"cold embedding of the corpus: {report.chunks_written} chunks in {seconds:.1f} s", flush=True)
    return ws.path("cache"), seconds


def daily_validation(root: Path, rows: int, cache: Path) -> tuple[Any, dict[str, Any]]:
    from aiw.data.sample import generate
    from aiw.pipelines.definitions import get_pipeline
    from aiw.pipelines.runner import PipelineRunner

    ws = _workspace(root / f"dv-{rows}")
    t0 = time.perf_counter()
    generate(ws, rows=rows, seed=7)
    gen_s = time.perf_counter() - t0
    shutil.rmtree(ws.path("cache"))
    shutil.copytree(cache, ws.path("cache"))
    run = PipelineRunner(ws, ws.settings).run(get_pipeline("daily-validation"), actor="bench")
    steps = {
        s.step: {"status": s.status, "seconds": round(s.seconds or 0.0, 2), "note": s.error[:200]} for s in run.steps
    }
    out = {
        "claims": rows,
        "generate_s": round(gen_s, 2),
        "total_s": round(run.seconds or 0.0, 2),
        "status": run.status,
        "steps": steps,
    }
    print(
        f"daily-validation on {rows:,} claims: {out['total_s']} s "
        + ", ".join(f"{k} {v['seconds']} s ({v['status']})" for k, v in steps.items()),
        flush=True,
    )
    return ws, out


def point_in_time(ws: Any, n_rows: int) -> dict[str, Any]:
    import duckdb
    import pandas as pd

    from aiw.features.store import FeatureStoreService

    service = FeatureStoreService(ws, ws.settings.features)
    t0 = time.perf_counter()
    service.apply(actor="bench")
    apply_s = time.perf_counter() - t0
    hist = service.data_dir / "customer_features.parquet"
    claims = service.data_dir / "claim_features.parquet"
    con = duckdb.connect()
    # entity rows: customers at their claims' report times, sampled with replacement up to n_rows
    entity = con.execute(f"""SELECT customer_id, event_timestamp + INTERVAL 1 HOUR AS event_timestamp
        FROM read_parquet('{claims}') USING SAMPLE {n_rows} ROWS (reservoir, 7)""").df()
    if len(entity) < n_rows:
        entity = entity.sample(n_rows, replace=True, random_state=7).reset_index(drop=True)
    entity["event_timestamp"] = pd.to_datetime(entity["event_timestamp"]).dt.tz_localize("UTC")
    entity["row"] = np.arange(len(entity))
    refs = ["customer_features:claims_to_date", "customer_features:premium_to_date", "customer_features:tenure_days"]
    t0 = time.perf_counter()
    feast_df = service.historical(entity, refs)
    feast_s = time.perf_counter() - t0
    ent = entity.assign(event_timestamp=entity["event_timestamp"].dt.tz_localize(None))
    con.register("entity", ent)
    t0 = time.perf_counter()
    asof = con.execute(f"""
        SELECT e.row, e.customer_id, e.event_timestamp, f.claims_to_date, f.premium_to_date, f.tenure_days
        FROM entity e ASOF LEFT JOIN read_parquet('{hist}') f
          ON e.customer_id = f.customer_id AND e.event_timestamp >= f.event_timestamp""").df()
    asof_s = time.perf_counter() - t0
    merged = feast_df[["row", "claims_to_date"]].merge(
        asof[["row", "claims_to_date"]], on="row", suffixes=("_feast", "_asof")
    )
    same = bool((merged.claims_to_date_feast.fillna(-1) == merged.claims_to_date_asof.fillna(-1)).all())
    out = {
        "entity_rows": len(entity),
        "history_rows": int(con.execute(f"SELECT count(*) FROM read_parquet('{hist}')").fetchone()[0]),
        "feast_s": round(feast_s, 2),
        "duckdb_asof_s": round(asof_s, 3),
        "feast_over_asof": round(feast_s / asof_s, 1) if asof_s > 0 else None,
        "results_identical": same,
        "apply_s": round(apply_s, 2),
    }
    print(
        f"point-in-time {len(entity):,} rows: Feast {feast_s:.1f} s, DuckDB ASOF {asof_s:.2f} s, identical {same}",
        flush=True,
    )
    return out


def online(ws: Any, repeats: int, batch: int, store: str) -> dict[str, Any]:
    import secrets

    from aiw.data._warehouse import warehouse
    from aiw.features.store import FeatureStoreService

    features = ws.settings.features
    if store == "redis":
        features = features.model_copy(update={"online_url": REDIS_URL, "project": f"bench{secrets.token_hex(3)}"})
    service = FeatureStoreService(ws, features)
    if store == "redis":
        service.apply(actor="bench", export=False)
    t0 = time.perf_counter()
    service.materialize(actor="bench", views=["customer_features"])
    mat_s = time.perf_counter() - t0
    with warehouse(ws) as conn:
        ids = [int(r[0]) for r in conn.execute("SELECT customer_id FROM main.customers").fetchall()]
    rng = random.Random(3)
    refs = ["customer_features:claims_to_date", "customer_features:premium_to_date", "customer_features:tenure_days"]
    service.online([{"customer_id": ids[0]}], refs)  # warm up
    lat = []
    try:
        for _ in range(repeats):
            rows = [{"customer_id": i} for i in rng.sample(ids, batch)]
            t0 = time.perf_counter()
            got = service.online(rows, refs)
            lat.append((time.perf_counter() - t0) * 1000)
            assert len(got) == batch
    finally:
        if store == "redis":
            service.store.teardown()
    out = {
        "store": store,
        "batch": batch,
        "repeats": repeats,
        "materialize_s": round(mat_s, 2),
        "p50_ms": round(float(np.percentile(lat, 50)), 2),
        "p99_ms": round(float(np.percentile(lat, 99)), 2),
        "mean_ms": round(float(np.mean(lat)), 2),
    }
    print(
        f"online {store}: batch {batch} p50 {out['p50_ms']} ms p99 {out['p99_ms']} ms (materialize {mat_s:.1f} s)",
        flush=True,
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="Claims per daily-validation run.")
    parser.add_argument("--pit-rows", type=int, default=1_000_000, help="Entity rows of the training set.")
    parser.add_argument("--repeats", type=int, default=200, help="Online lookups per store.")
    parser.add_argument("--batch", type=int, default=100, help="Keys per online lookup.")
    parser.add_argument("--quick", action="store_true", help="20,000 and 100,000 claims, 100,000 PIT rows.")
    parser.add_argument("--keep", action="store_true", help="Keep the workspaces (printed).")
    args = parser.parse_args()
    sizes = [20_000, 100_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    pit_rows = 100_000 if args.quick else args.pit_rows
    root = Path(tempfile.mkdtemp(prefix="aiw-bench-dp-"))
    try:
        cache, cold_s = warm_embeddings(root)
        runs = []
        ws = None
        for n in sizes:
            ws, result = daily_validation(root, n, cache)
            runs.append(result)
        assert ws is not None
        pit = point_in_time(ws, pit_rows)
        lookups = [online(ws, args.repeats, args.batch, "sqlite")]
        try:
            lookups.append(online(ws, args.repeats, args.batch, "redis"))
        except Exception as exc:  # report a missing Redis rather than losing the other figures
            lookups.append({"store": "redis", "error": f"{type(exc).__name__}: {exc}"})
        path = write_result(
            "data_platform",
            {
                "sizes": sizes,
                "cold_corpus_embedding_s": round(cold_s, 1),
                "daily_validation": runs,
                "point_in_time": pit,
                "online": lookups,
                "notes": [
                    "the embedding cache is warm in daily-validation; cold_corpus_embedding_s is the first embed",
                    f"point-in-time and online figures use the {sizes[-1]:,}-claim workspace",
                ],
            },
        )
        print(f"written {path}")
    finally:
        if args.keep:
            print(f"workspaces kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
