"""The CLI's foundation commands: init, status, keys, audit; one-line errors with exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from aiw.settings import load_settings

pytestmark = pytest.mark.unit


@pytest.fixture
def run(settings):  # type: ignore[no-untyped-def]
    from aiw.cli import app

    load_settings.cache_clear()
    runner = CliRunner()

    def _run(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(app, list(args), catch_exceptions=False)

    yield _run
    load_settings.cache_clear()


def _main(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from aiw.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_init_status_keys_audit(run, settings) -> None:  # type: ignore[no-untyped-def]
    assert run("init").exit_code == 0
    status = run("status")
    assert "metadata" in status.output and "sqlite" in status.output
    created = run("keys", "create", "--role", "analyst", "--name", "bob")
    assert created.exit_code == 0
    secret = created.output.strip().splitlines()[-1]
    assert secret.startswith("aiw_")
    listing = run("keys", "list")
    assert "bob" in listing.output and secret not in listing.output
    key_id = secret.split("_")[1]
    assert run("keys", "revoke", key_id).exit_code == 0
    log = run("audit", "log", "--action", "keys.", "--json")
    actions = [json.loads(line)["action"] for line in log.output.strip().splitlines()]
    assert actions == ["keys.revoke", "keys.create"]
    assert "Audit log" in run("audit", "log").output
    verified = run("audit", "verify")
    assert verified.exit_code == 0 and "intact" in verified.output


def test_errors_are_one_line_with_exit_codes(settings) -> None:  # type: ignore[no-untyped-def]
    env = {"AIW_HOME": str(settings.home)}
    bad_role = _main("keys", "create", "--role", "boss", env=env)
    assert bad_role.returncode == 2 and "Unknown role 'boss'" in bad_role.stderr
    assert len(bad_role.stderr.strip().splitlines()) == 1
    missing = _main("keys", "revoke", "nope", env=env)
    assert missing.returncode == 3 and "No API key" in missing.stderr
    bad_setting = _main("status", env={**env, "AIW_SQL__ROW_LIMIT": "many"})
    assert bad_setting.returncode == 78 and "AIW_SQL__ROW_LIMIT" in bad_setting.stderr
    unreachable = _main("init", env={**env, "AIW_METADATA__URL": "postgresql://x@127.0.0.1:1/db"})
    assert unreachable.returncode == 7 and "Metadata database" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr


def test_verify_names_the_tampered_record(run, workspace) -> None:  # type: ignore[no-untyped-def]
    for i in range(3):
        workspace.audit.append("t", "test.x", f"r:{i}")
    with workspace.db.engine.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER audit_log_no_update"))
        conn.execute(sa.text("UPDATE audit_log SET resource = 'r:forged' WHERE seq = 2"))
    result = _main("audit", "verify", env={"AIW_HOME": str(workspace.root)})
    assert result.returncode == 6 and "record 2" in result.stderr


def test_help_lists_every_group() -> None:
    result = _main("--help")
    assert result.returncode == 0
    for group in ("init", "status", "keys", "audit", "data", "serve", "ui", "demo"):
        assert group in result.stdout
