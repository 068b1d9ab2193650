"""Real-time serving: our REST server against ``mlflow models serve`` on the same fraud model.

Both servers run on this machine in the same run, one at a time, and are driven by the same load
generator (wrk with a Lua POST script; a Python asyncio/httpx generator if wrk is missing) with the
same one-row ``dataframe_records`` body, at 1, 8 and 32 concurrent connections. Figures:
requests/s, p50 and p99 latency, and non-2xx answers; ratios ours / MLflow's.

Run: ``.venv/bin/python benchmarks/bench_serving.py [--duration 15] [--connections 1,8,32]``
(needs ``apt-get install -y wrk`` for wrk; ``mlflow models serve`` needs the venv's bin on PATH,
which this script puts there).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result

from aiw.testing.fraud import FRAUD_ROW

BODY = json.dumps({"dataframe_records": [FRAUD_ROW]})
VENV_BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, headers: dict[str, str], timeout: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            r = httpx.post(url, content=BODY, headers={**headers, "Content-Type": "application/json"}, timeout=120)
            if r.status_code == 200:
                return
            last = f"{r.status_code} {r.text[:200]}"
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(0.5)
    raise RuntimeError(f"server at {url} did not answer 200 in {timeout} s: {last}")


def _setup(home: Path) -> tuple[str, str, Path]:
    """A workspace with the fraud model at @champion; returns (model name, key, model folder)."""
    from aiw.data.sample import generate
    from aiw.governance.identity import Principal
    from aiw.mlops.registry import ModelRegistry, PromotionWorkflow
    from aiw.mlops.registry.versions import local_path_of
    from aiw.mlops.training import train_claims_fraud
    from aiw.settings import build_settings
    from aiw.workspace import Workspace

    ws = Workspace(build_settings(home=home)).init()
    generate(ws, rows=3000, seed=7)
    trained = train_claims_fraud(ws, name="claims-fraud")
    ds, ap, admin = Principal("ds", "data_scientist"), Principal("ap", "approver"), Principal("admin", "admin")
    mv = ModelRegistry(ws).register(trained.logged, "claims-fraud", ds)
    wf = PromotionWorkflow(ws)
    req = wf.request("claims-fraud", mv.version, "production", ds)
    wf.approve(req.id, ap)
    wf.promote("claims-fraud", mv.version, "production", admin)
    _, key = ws.keys.create("bench", "data_scientist", actor="bench")
    folder = local_path_of(mv.artifact_uri)
    assert folder is not None
    return "claims-fraud", key, folder


def _wrk(url: str, key: str, connections: int, duration: int, script: Path) -> dict[str, Any]:
    threads = 1 if connections == 1 else 2
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "AIW_KEY": key},
        timeout=duration + 60,
    ).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    total = re.search(r"(\d+) requests in", out)
    return {
        "connections": connections,
        "requests_per_s": float(rps.group(1)) if rps else 0.0,
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "requests": int(total.group(1)) if total else 0,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(0) if errors else "",
    }


async def _py_load(url: str, key: str, connections: int, duration: int) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    bad = 0
    stop = time.perf_counter() + duration
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal bad
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            r = await client.post(url, content=BODY, headers=headers)
            latencies.append(time.perf_counter() - t0)
            bad += r.status_code != 200

    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")

    return {
        "connections": connections,
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "requests": len(latencies),
        "non_2xx": bad,
        "socket_errors": "",
    }


def _drive(url: str, key: str, connections: list[int], duration: int, script: Path | None) -> list[dict[str, Any]]:
    results = []
    for c in connections:
        r = _wrk(url, key, c, duration, script) if script else asyncio.run(_py_load(url, key, c, duration))
        print(
            f"    {c:>2} connections: {r['requests_per_s']:8.0f} req/s  p50 {r['p50_ms']:7.2f} ms  "
            f"p99 {r['p99_ms']:8.2f} ms  non-2xx {r['non_2xx']}",
            flush=True,
        )
        results.append(r)
    return results


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds per concurrency level")
    parser.add_argument("--connections", default="1,8,32")
    args = parser.parse_args()
    connections = [int(c) for c in args.connections.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIW_")}
    env.update(AIW_HOME=str(tmp / "ws"), PATH=f"{VENV_BIN}:{env.get('PATH', '')}", HF_HUB_OFFLINE="1")
    print("setting up the model ...", flush=True)
    name, key, folder = _setup(tmp / "ws")
    script = None
    if shutil.which("wrk"):
        script = tmp / "post.lua"
        body = BODY.replace("\\", "\\\\").replace("'", "\\'")
        script.write_text(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            'wrk.headers["Authorization"] = "Bearer " .. os.getenv("AIW_KEY")\n'
            f"wrk.body = '{body}'\n"
        )
    generator = "wrk 4.1 (Lua POST script)" if script else "python asyncio+httpx"
    results: dict[str, Any] = {}
    try:
        port = _free_port()
        command = [
            str(VENV_BIN / "uvicorn"),
            "aiw.api.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--http",
            "httptools",
            "--loop",
            "uvloop",
        ]
        ours = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}/v1/models/{name}/predict"
            _wait(url, {"Authorization": f"Bearer {key}"})
            print(f"  aiw serve ({url})", flush=True)
            results["aiw"] = _drive(url, key, connections, args.duration, script)
        finally:
            _stop(ours)
        port = _free_port()
        peer_env = {**env, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"}
        peer = subprocess.Popen(
            [
                str(VENV_BIN / "mlflow"),
                "models",
                "serve",
                "-m",
                str(folder),
                "--env-manager",
                "local",
                "--host",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            env=peer_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}/invocations"
            _wait(url, {})
            print(f"  mlflow models serve ({url})", flush=True)
            results["mlflow"] = _drive(url, key, connections, args.duration, script)
        finally:
            _stop(peer)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ratios = []
    for ours_r, peer_r in zip(results["aiw"], results["mlflow"], strict=True):
        ratios.append(
            {
                "connections": ours_r["connections"],
                "throughput_ratio": round(ours_r["requests_per_s"] / max(peer_r["requests_per_s"], 1e-9), 2),
                "p99_ratio": round(ours_r["p99_ms"] / max(peer_r["p99_ms"], 1e-9), 3),
                "goal_10x_throughput": ours_r["requests_per_s"] >= 10 * peer_r["requests_per_s"],
                "goal_lower_p99": ours_r["p99_ms"] < peer_r["p99_ms"],
            }
        )
    path = write_result(
        "serving",
        {
            "model": "claims-fraud (HistGradientBoostingClassifier pipeline, 17 inputs), one row per request",
            "load_generator": generator,
            "duration_s_per_level": args.duration,
            "ours": "aiw API (uvicorn, 1 worker, httptools, uvloop) with API-key auth, metrics and traffic log",
            "peer": "mlflow models serve --env-manager local (same model folder)",
            "load_average_at_end": os.getloadavg(),
            "results": results,
            "ratios": ratios,
        },
    )
    for r in ratios:
        print(f"  {r['connections']:>2} connections: {r['throughput_ratio']}x throughput, p99 ratio {r['p99_ratio']}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
