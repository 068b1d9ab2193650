"""Safe rollout: what a live canary costs each request, and how fast a failing candidate is rolled back.

Set-up: a workspace with sample claims, the fraud model (v1, ``@champion``), the same files again
as v2 (an identical, approved candidate: both arms cost the same, so any difference is the
router's) and v3, v2 wrapped to fail on 10% of claims (approved too). The API runs with uvicorn in
its own process (one worker), as ``aiw serve`` runs it.

Measured:

1. **Canary overhead**: ``wrk`` (C, 2 threads, 32 connections, one-row ``dataframe_records``
   requests) against ``POST /v1/models/NAME/predict``: with no rollout (the peer), with a canary
   of v2 holding at 50%, and with a shadow of v2 (every request mirrored). Phases alternate
   (none, canary, shadow, none, ...) so that drift in the machine's load hits all; the added p50
   and p99 are the median over trials of (phase - the no-rollout phase just before it).
2. **Router cost in process**: ``route()`` + ``Route.done()`` per request, timed directly
   (no HTTP), with no rollout of the model (the path every request takes) and with a live canary.
3. **Time to rollback**: a canary of v3 with the default plan and guardrails (steps 5,10,25,50,100,
   bake window 60 s, error rate 5%, min 100 requests) under 16 client threads; from the first
   failed response seen by a client to the rollback decision (stored by the controller), and to
   the last failed response; plus how many requests failed of how many sent.

Run: ``.venv/bin/python benchmarks/bench_rollout.py [--duration 10] [--trials 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result

POLICY = {"*": {"approvals": 1, "gates": {"auc": ">=0.55"}}}
MODEL = "bench-fraud"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _setup(home: Path, rows: int) -> tuple[Any, list[dict[str, Any]], str]:
    """Workspace, model versions 1-3, traffic rows and a data scientist's API key."""
    from aiw.data.sample import generate
    from aiw.governance.identity import Principal
    from aiw.mlops.registry import ModelRegistry, PromotionWorkflow
    from aiw.mlops.rollout.faults import log_faulty_model
    from aiw.mlops.serving.loader import ModelResolver
    from aiw.mlops.training import (
        CATEGORICAL_FEATURES,
        LABEL,
        NUMERIC_FEATURES,
        load_claim_features,
        train_claims_fraud,
    )
    from aiw.settings import build_settings
    from aiw.workspace import Workspace

    ws = Workspace(build_settings(home=home, policies=POLICY)).init()
    generate(ws, rows=rows, seed=7)
    ds, approver, admin = Principal("dana", "data_scientist"), Principal("alex", "approver"), Principal("root", "admin")
    trained = train_claims_fraud(ws, name=MODEL, seed=0)
    registry, workflow = ModelRegistry(ws), PromotionWorkflow(ws)

    def approve(version: int) -> None:
        request = workflow.request(MODEL, version, "production", ds, reason="bench")
        workflow.approve(request.id, approver, comment="bench")

    v1 = registry.register(trained.logged, MODEL, ds).version
    approve(v1)
    workflow.promote(MODEL, v1, "production", admin)
    approve(registry.register(trained.logged, MODEL, ds).version)
    frame, _, _ = load_claim_features(ws)
    features = [*NUMERIC_FEATURES, *CATEGORICAL_FEATURES]
    with ModelResolver(ws) as resolver:
        pipeline = resolver.load(MODEL, v1).reference.model
    faulty = log_faulty_model(ws, pipeline, frame[features].head(600), frame[LABEL].head(600), name=MODEL)
    approve(registry.register(faulty, MODEL, ds).version)
    _, key = ws.keys.create("bench", "data_scientist", actor="bench")
    return ws, frame[features].sample(frac=1.0, random_state=1).to_dict("records"), key


class Server:
    """``uvicorn aiw.api.app:create_app --factory`` in its own process."""

    def __init__(self, home: Path, log: Path) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIW_")}
        env.update(AIW_HOME=str(home), AIW_POLICIES=json.dumps(POLICY), HF_HUB_OFFLINE="1")
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "aiw.api.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        import httpx

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError(f"the API did not start; see {log}")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _wrk(
    url: str, key: str, row: dict[str, Any], *, seconds: int, connections: int, script_dir: Path
) -> dict[str, float]:
    """p50/p90/p99 (ms) and requests/s of wrk posting ``row`` for ``seconds``."""
    script = script_dir / "post.lua"
    body = json.dumps({"dataframe_records": [row]}).replace("\\", "\\\\").replace('"', '\\"')
    script.write_text(
        f'wrk.method = "POST"\nwrk.body = "{body}"\n'
        f'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
    )
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    ).stdout
    result: dict[str, float] = {}
    for pct in ("50", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m:
            result[f"p{pct}_ms"] = float(m.group(1)) * _UNIT[m.group(2)]
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    result["rps"] = float(rps.group(1)) if rps else float("nan")
    result["non_2xx"] = float(non2xx.group(1)) if non2xx else 0.0
    if "p50_ms" not in result:
        raise RuntimeError(f"could not read wrk's output:\n{out}")
    return result


def _api(method: str, base: str, path: str, key: str, **kwargs: Any) -> Any:
    import httpx

    r = httpx.request(method, f"{base}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=60, **kwargs)
    r.raise_for_status()
    return r.json()


def _live(base: str, key: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rollout = _api("GET", base, f"/v1/deployments/{MODEL}", key)["rollout"]
        if rollout and rollout["status"] == "running":
            return
        time.sleep(0.2)
    raise RuntimeError("the rollout did not start")


def overhead(
    base: str, key: str, rows: list[dict[str, Any]], *, seconds: int, trials: int, connections: int, tmp: Path
) -> dict[str, Any]:
    """wrk phases: none / canary at 50% / shadow, alternating."""
    url = f"{base}/v1/models/{MODEL}/predict"
    for v in (1, 2):  # load both versions before measuring
        _api("POST", base, f"/v1/models/{MODEL}/versions/{v}/predict", key, json={"dataframe_records": rows[:1]})
    _wrk(url, key, rows[0], seconds=3, connections=connections, script_dir=tmp)  # warm-up
    phases: dict[str, list[dict[str, float]]] = {"none": [], "canary_50": [], "shadow": []}
    hold = {"min_requests": 10_000_000, "bake": "1h"}  # hold at the first step for the whole measurement
    for _ in range(trials):
        phases["none"].append(_wrk(url, key, rows[0], seconds=seconds, connections=connections, script_dir=tmp))
        _api("POST", base, f"/v1/deployments/{MODEL}/canary", key, json={"version": 2, "steps": [50, 100], **hold})
        _live(base, key)
        phases["canary_50"].append(_wrk(url, key, rows[0], seconds=seconds, connections=connections, script_dir=tmp))
        _api("POST", base, f"/v1/deployments/{MODEL}/rollback", key, json={"reason": "bench phase over"})
        _api("POST", base, f"/v1/deployments/{MODEL}/shadow", key, json={"version": 2, **hold})
        _live(base, key)
        phases["shadow"].append(_wrk(url, key, rows[0], seconds=seconds, connections=connections, script_dir=tmp))
        _api("POST", base, f"/v1/deployments/{MODEL}/rollback", key, json={"reason": "bench phase over"})
    medians = {name: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for name, runs in phases.items()}
    # Paired: each trial's phase against the no-rollout phase measured just before it, then the
    # median over trials (the machine's load drifts between trials more than within one).
    added = {
        name: {
            f"{q}_ms": statistics.median(
                run[f"{q}_ms"] - base[f"{q}_ms"] for run, base in zip(phases[name], phases["none"], strict=True)
            )
            for q in ("p50", "p99")
        }
        for name in ("canary_50", "shadow")
    }
    return {
        "wrk": {"threads": 2, "connections": connections, "seconds": seconds, "trials": trials},
        "runs": phases,
        "median": medians,
        "added_vs_none": added,
        "load_average": os.getloadavg(),
    }


def router_cost(ws: Any, rows: list[dict[str, Any]], *, calls: int = 200_000) -> dict[str, float]:
    """ns per route() (+ done()) in this process, without and with a live canary."""
    import numpy as np

    from aiw.governance.identity import Principal
    from aiw.mlops.rollout.router import RolloutRouter
    from aiw.mlops.rollout.service import DeploymentService
    from aiw.mlops.serving.predictor import Prediction

    router = RolloutRouter(ws, autostart=False, seed=0)
    try:
        t = time.perf_counter()
        for _ in range(calls):
            router.route("no-rollout-here", None)
        none_ns = (time.perf_counter() - t) / calls * 1e9
        service = DeploymentService(ws, router=router)
        service.canary(
            MODEL, 2, Principal("dana", "data_scientist"), steps=[50, 100], bake="1h", min_requests=10_000_000
        )
        prediction = Prediction(np.array([0]), np.array([[0.9, 0.1]]), (0, 1))
        t = time.perf_counter()
        for _ in range(calls):
            route = router.route(MODEL, None)
            assert route is not None
            route.done(0.001, prediction)
        live_ns = (time.perf_counter() - t) / calls * 1e9
        service.rollback(MODEL, Principal("dana", "data_scientist"), reason="bench over")
    finally:
        router.close()
    return {"calls": calls, "no_rollout_ns": none_ns, "canary_route_and_record_ns": live_ns}


def rollback_time(
    ws: Any, base: str, key: str, rows: list[dict[str, Any]], *, trials: int, workers: int = 16
) -> dict[str, Any]:
    """Canary of the faulty v3 at the default plan; first failure -> rollback decision."""
    from aiw.mlops.rollout.loadgen import LoadGenerator
    from aiw.mlops.rollout.store import RolloutStore

    store = RolloutStore(ws.db, ws.audit)
    results = []
    for _ in range(trials):
        with LoadGenerator(f"{base}/v1/models/{MODEL}/predict", key, rows, workers=workers) as load:
            time.sleep(1.0)  # steady traffic first
            before = load.mark()
            started = time.time()
            rollout = _api("POST", base, f"/v1/deployments/{MODEL}/canary", key, json={"version": 3})
            deadline = time.monotonic() + 300
            while store.get(rollout["id"]).running:
                if time.monotonic() > deadline:
                    raise RuntimeError("no rollback within 300 s")
                time.sleep(0.05)
            time.sleep(1.0)  # traffic after the rollback: must all be on the champion
            after = load.mark()
            first, last = load.first_failure_at, load.last_failure_at
        done = store.get(rollout["id"])
        decision = store.decisions(done.id)[-1]
        sent = sum(after.values()) - sum(before.values())
        failed = sum(n for k, n in after.items() if not k.startswith("v")) - sum(
            n for k, n in before.items() if not k.startswith("v")
        )
        assert first is not None and last is not None
        results.append(
            {
                "status": done.status,
                "reason": done.reason,
                "code": decision.code,
                "seconds_start_to_rollback": decision.at.timestamp() - started,
                "seconds_first_failure_to_rollback": decision.at.timestamp() - first,
                "seconds_first_to_last_failure": last - first,
                "requests": sent,
                "failed": failed,
                "failed_share": failed / max(sent, 1),
                "candidate_requests": int(decision.metrics.get("candidate", {}).get("requests", 0)),
                "candidate_errors": int(decision.metrics.get("candidate", {}).get("errors", 0)),
            }
        )
    return {
        "plan": "steps 5,10,25,50,100; bake 60 s; max error rate 5%; min 100 requests per arm (defaults)",
        "candidate": "v3 fails on 10% of claims",
        "client_threads": workers,
        "trials": results,
        "median_seconds_first_failure_to_rollback": statistics.median(
            r["seconds_first_failure_to_rollback"] for r in results
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=3000, help="Sample claims to generate.")
    parser.add_argument("--duration", type=int, default=10, help="Seconds per wrk phase.")
    parser.add_argument("--trials", type=int, default=3, help="Alternating phases and rollback trials.")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections.")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="aiw-bench-rollout-") as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        ws, rows, key = _setup(tmp / "ws", args.rows)
        setup_s = time.perf_counter() - t0
        server = Server(tmp / "ws", tmp / "server.log")
        try:
            over = overhead(
                server.base, key, rows, seconds=args.duration, trials=args.trials, connections=args.connections, tmp=tmp
            )
            back = rollback_time(ws, server.base, key, rows, trials=args.trials)
        finally:
            server.close()
        cost = router_cost(ws, rows)
    payload = {
        "setup_seconds": setup_s,
        "overhead": over,
        "router_in_process": cost,
        "rollback": back,
        "goal": "added p50 under 1 ms at 32 concurrent clients",
    }
    path = write_result("rollout", payload)
    a = over["added_vs_none"]
    print(
        json.dumps(
            {
                "none": over["median"]["none"],
                "canary_50": over["median"]["canary_50"],
                "shadow": over["median"]["shadow"],
                "added": a,
                "router_in_process": cost,
                "rollback_median_s": back["median_seconds_first_failure_to_rollback"],
                "rollback_trials": [
                    {
                        k: r[k]
                        for k in (
                            "seconds_first_failure_to_rollback",
                            "requests",
                            "failed",
                            "candidate_requests",
                            "candidate_errors",
                        )
                    }
                    for r in back["trials"]
                ],
            },
            indent=1,
            default=str,
        )
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
