"""``aiw deploy`` as an operator runs it (in process, through Typer's runner), identities from
AIW_ACTOR/AIW_ROLE, exit codes per error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from aiw.settings import load_settings

pytestmark = pytest.mark.unit


@pytest.fixture
def aiw(rollout_ws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``aiw(*args, role=...)`` -> the Typer result, over the session workspace."""
    from aiw.cli import app

    monkeypatch.setenv("AIW_HOME", str(rollout_ws.root))
    monkeypatch.setenv("AIW_POLICIES", json.dumps({"*": {"approvals": 1, "gates": {"auc": ">=0.55"}}}))
    monkeypatch.setenv("COLUMNS", "250")
    load_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str, actor: str = "cli-dana", role: str = "data_scientist") -> Any:
        return runner.invoke(app, ["deploy", *args], env={"AIW_ACTOR": actor, "AIW_ROLE": role})

    yield run
    load_settings.cache_clear()


def test_canary_status_rollback_and_history_from_the_command_line(aiw: Any, model_name: str, rollout_ws: Any) -> None:
    r = aiw("canary", model_name, "--version", "2", "--steps", "50,100", "--bake", "1h", "--min-requests", "40")
    assert r.exit_code == 0, r.output
    assert "rollout #" in r.output and "canary of v2 against v1" in r.output and "canary 50% -> 100%" in r.output
    r = aiw("canary", model_name, "--version", "2")
    assert type(r.exception).__name__ == "ConflictError" and "already has a running rollout" in str(r.exception)
    r = aiw("status", model_name)
    assert r.exit_code == 0 and "running" in r.output and "step 1/2, candidate share 50%" in r.output
    assert "start" in r.output and "cli-dana" in r.output
    status = json.loads(aiw("status", model_name, "--json").output)
    assert status["rollout"]["guardrails"]["min_requests"] == 40 and status["champion_version"] == 1
    r = aiw("rollback", model_name, role="viewer", actor="vic")
    assert r.exit_code != 0 and "lacks the permission 'deployments:write'" in str(r.exception)
    r = aiw("rollback", model_name, "--reason", "changed my mind")
    assert r.exit_code == 0 and f"{model_name}@champion stays v1" in r.output
    r = aiw("history", model_name)
    assert r.exit_code == 0 and "rolled_back" in r.output and "changed my mind" in r.output
    history = json.loads(aiw("history", model_name, "--json").output)
    assert [d["action"] for d in history[0]["decisions"]] == ["start", "rollback"]
    r = aiw("shadow", model_name, "--version", "3", "--bake", "soon")
    assert r.exit_code != 0 and "duration" in str(r.exception)
    r = aiw("promote", model_name, role="admin")
    assert r.exit_code != 0 and "no running rollout" in str(r.exception)


def test_an_unknown_version_is_a_one_line_reason_and_exit_code_3(model_name: str, rollout_ws: Any) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("AIW_")}
    env.update(AIW_HOME=str(rollout_ws.root), AIW_ROLE="data_scientist")
    r = subprocess.run(
        [sys.executable, "-c", "from aiw.cli import main; main()", "deploy", "canary", model_name, "--version", "99"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert r.returncode == 3 and "has no version 99" in r.stderr and len(r.stderr.strip().splitlines()) <= 2
