"""The same pipeline definitions run as a Prefect flow, in-process (Prefect's temporary server).

Slow: Prefect starts a temporary API server (about 20 s here, 75 s on a cold machine).

Known environment problem: Prefect 3.8.8's server cannot start with FastAPI 0.165 (it passes
``Body(min_items=...)``, which FastAPI removed), and Prefect 3.9.1 needs a certifi newer than the
registry mirror has. The flow therefore runs in a subprocess with ``prefect_compat/`` on
PYTHONPATH, a test-only shim that maps the removed argument (see its docstring).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

_FLOW_SCRIPT = r"""
import json, os, sys
from prefect import flow
from aiw.errors import PipelineError
from aiw.pipelines import definitions
from aiw.pipelines.dag import Pipeline, Step
from aiw.pipelines.prefect_flows import FLOWS, run_flow
from aiw.pipelines.runner import PipelineRunner
from aiw.settings import build_settings
from aiw.workspace import Workspace

def ok(ctx):
    return {"step": ctx.step}

def boom(ctx):
    raise ValueError("bad batch")

definitions.PIPELINES["toy"] = lambda: Pipeline("toy", (
    Step("a", ok), Step("b", boom, ("a",)), Step("c", ok, ("b",)), Step("d", ok, ("a",)),
    Step("report", ok, ("c", "d"), trigger="all_done")))

@flow(name="aiw-toy")
def toy_flow(home: str) -> str:
    return run_flow("toy", home, {"x": 1}, actor="tests").id

home = sys.argv[1]
state = toy_flow(home, return_state=True)
try:
    state.result()
    error = ""
except PipelineError as exc:
    error = str(exc)
ws = Workspace(build_settings(home=home)).ensure()
[run] = PipelineRunner(ws, ws.settings).runs("toy")
print("RESULT " + json.dumps({"failed": state.is_failed(), "error": error, "trigger": run.trigger,
                              "status": run.status, "params": run.params,
                              "steps": {s.step: s.status for s in run.steps}, "flows": sorted(FLOWS)}))
"""


def test_deploy_needs_a_prefect_server(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from aiw.errors import ConfigError
    from aiw.pipelines.prefect_flows import FLOWS, deploy

    assert FLOWS["daily-validation"].name == "aiw-daily-validation"
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with pytest.raises(ConfigError, match="PREFECT_API_URL"):
        deploy("/tmp/nowhere", {})


def test_a_pipeline_runs_as_a_prefect_flow(workspace) -> None:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    shim = Path(__file__).with_name("prefect_compat")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(shim), env.get("PYTHONPATH", "")) if p)
    env["PREFECT_LOGGING_LEVEL"] = "WARNING"
    done = subprocess.run(
        [sys.executable, "-c", _FLOW_SCRIPT, str(workspace.root)], env=env, capture_output=True, text=True, timeout=600
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, done.stdout[-2000:] + done.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT ") :])
    assert result["failed"] and "step 'b' failed: ValueError: bad batch" in result["error"]
    assert result["trigger"] == "prefect" and result["status"] == "failed" and result["params"] == {"x": 1}
    assert result["steps"] == {
        "a": "success",
        "b": "failed",
        "c": "upstream_failed",
        "d": "success",
        "report": "success",
    }
    assert result["flows"] == ["daily-validation", "embedding-refresh", "training"]
