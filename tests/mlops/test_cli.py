"""``aiw models`` as an operator runs it: one process per command, identities from AIW_ACTOR/AIW_ROLE."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mlops_helpers import People, register

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _aiw(home: Path, *args: str, actor: str = "cli-admin", role: str = "admin") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIW_")}
    env.update(
        AIW_HOME=str(home),
        AIW_ACTOR=actor,
        AIW_ROLE=role,
        COLUMNS="200",
        AIW_POLICIES='{"*": {"approvals": 1, "gates": {"auc": ">=0.55"}}}',
    )
    return subprocess.run(
        [sys.executable, "-c", "from aiw.cli import main; main()", "models", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_governed_lifecycle_from_the_command_line(
    mlops_ws: Any, mlops_home: Path, trained: Any, people: People, model_name: str
) -> None:
    r = _aiw(
        mlops_home,
        "register",
        model_name,
        trained.logged.run_id,
        "--description",
        "from the CLI",
        actor="dana",
        role="data_scientist",
    )
    assert r.returncode == 0, r.stderr
    assert f"registered {model_name} version 1" in r.stdout
    r = _aiw(mlops_home, "request", model_name, "1", "--to", "production", actor="dana", role="data_scientist")
    assert r.returncode == 0, r.stderr
    request_id = r.stdout.split("#", 1)[1].split(":", 1)[0].strip()
    r = _aiw(mlops_home, "approve", request_id, actor="dana", role="approver")
    assert r.returncode == 5 and "no self-approval" in r.stderr
    r = _aiw(mlops_home, "promote", model_name, "1", "--to", "production")
    assert r.returncode == 5 and "no approved request" in r.stderr
    r = _aiw(mlops_home, "approve", request_id, "--comment", "ok", actor="alex", role="approver")
    assert r.returncode == 0 and "is approved" in r.stdout, r.stderr
    r = _aiw(mlops_home, "promote", model_name, "1", "--to", "production")
    assert r.returncode == 0 and f"{model_name}@champion -> version 1" in r.stdout, r.stderr
    r = _aiw(mlops_home, "show", model_name)
    assert r.returncode == 0 and "champion" in r.stdout and "promoted" in r.stdout
    r = _aiw(mlops_home, "card", model_name, "1")
    assert r.returncode == 0 and f"model-cards/{model_name}/v1.md" in r.stdout
    r = _aiw(mlops_home, "show", model_name, "7")
    assert r.returncode == 3 and "has no version 7" in r.stderr
    r = _aiw(mlops_home, "list", role="nobody")
    assert r.returncode == 2 and "Unknown role" in r.stderr
    actions = [
        (rec.actor, rec.action, rec.outcome)
        for rec in mlops_ws.audit.records(resource=f"model:{model_name}", newest_first=False, limit=50)
    ]
    assert ("dana", "models.approve", "denied") in actions and ("cli-admin", "models.promote", "success") in actions


def test_score_command_writes_the_table(mlops_ws: Any, mlops_home: Path, champion: str) -> None:
    from aiw.mlops.training import CLAIM_FEATURES_SQL

    conn = mlops_ws.connect_warehouse(ai_functions=False)
    try:
        conn.execute(f"CREATE OR REPLACE TABLE cli_input AS {CLAIM_FEATURES_SQL} LIMIT 500")
    finally:
        conn.close()
    r = _aiw(
        mlops_home,
        "score",
        champion,
        "--table",
        "cli_input",
        "--out",
        "cli_scored",
        "--chunk-rows",
        "200",
        role="data_scientist",
    )
    assert r.returncode == 0, r.stderr
    assert "scored 500 rows of cli_input" in r.stdout and "on local" in r.stdout
    conn = mlops_ws.connect_warehouse(ai_functions=False)
    try:
        assert conn.execute("SELECT count(*), count(score) FROM cli_scored").fetchone() == (500, 500)
    finally:
        conn.close()


def test_unknown_model_has_a_clear_exit(
    mlops_home: Path, model_name: str, people: People, mlops_ws: Any, trained: Any
) -> None:
    register(mlops_ws, trained, model_name, people.ds)
    r = _aiw(mlops_home, "request", model_name, "1", "--to", "prod", role="data_scientist")
    assert r.returncode == 2 and "Unknown promotion target" in r.stderr
    r = _aiw(mlops_home, "request", "no-such-model", "1", "--to", "staging", role="data_scientist")
    assert r.returncode == 3 and "No model named 'no-such-model'" in r.stderr
