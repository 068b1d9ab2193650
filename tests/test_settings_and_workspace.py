"""Settings, the workspace, the adapter registry and the metadata database."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiw import _registry
from aiw.db import MetadataDB
from aiw.errors import BackendError, ConfigError, InvalidInputError
from aiw.settings import build_settings
from aiw.workspace import Workspace, safe_join

pytestmark = pytest.mark.unit


def test_env_nesting_and_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIW_HOME", str(tmp_path))
    monkeypatch.setenv("AIW_SQL__ROW_LIMIT", "42")
    s = build_settings(rag={"top_k": 3})
    assert s.home == tmp_path and s.sql.row_limit == 42 and s.rag.top_k == 3


def test_malformed_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIW_SQL__ROW_LIMIT", "lots")
    with pytest.raises(ConfigError, match="AIW_SQL__ROW_LIMIT"):
        build_settings()


def test_unknown_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIW_SQL__ROWLIMIT", "5")
    with pytest.raises(ConfigError, match="AIW_SQL__ROWLIMIT"):
        build_settings()


def test_placeholder_secrets_refused_in_production() -> None:
    with pytest.raises(ConfigError, match="AIW_LLM__API_KEY"):
        build_settings(environment="production", llm={"api_key": "changeme"})


def test_secrets_do_not_print() -> None:
    s = build_settings(llm={"api_key": "sk-very-secret"})
    assert "sk-very-secret" not in repr(s) and "sk-very-secret" not in str(s.model_dump())


def test_registry_resolves_and_explains() -> None:
    assert _registry.resolve("llm", "pathlib:Path") is Path
    with pytest.raises(ConfigError, match=r"Unknown index adapter 'elastic'.*lancedb"):
        _registry.resolve("index", "elastic")
    with pytest.raises(ConfigError, match="Cannot load"):
        _registry.resolve("index", "nowhere.module:Thing")


def test_init_is_idempotent_and_status_reports(workspace: Workspace) -> None:
    workspace.init()
    names = {c.concern: c for c in workspace.status()}
    assert names["metadata"].reachable and names["metadata"].backend == "sqlite"
    assert names["warehouse"].backend == "embedded"


def test_unreachable_server_is_reported(tmp_path: Path) -> None:
    ws = Workspace(build_settings(home=tmp_path, metadata={"url": "postgresql://u:pw@127.0.0.1:1/db"}))
    meta = next(c for c in ws.status() if c.concern == "metadata")
    assert not meta.reachable and "pw" not in meta.location
    with pytest.raises(BackendError, match="Metadata database"):
        ws.init()


def test_bad_metadata_url() -> None:
    with pytest.raises(ConfigError, match="mysql"):
        MetadataDB("mysql://x@y/z")


def test_safe_join_refuses_escapes(tmp_path: Path) -> None:
    assert safe_join(tmp_path, "a/b.txt") == tmp_path.resolve() / "a" / "b.txt"
    for bad in ("../x", "/etc/passwd", "a/../../x"):
        with pytest.raises(InvalidInputError, match="escapes"):
            safe_join(tmp_path, bad)
    with pytest.raises(InvalidInputError, match="NUL"):
        safe_join(tmp_path, "a\x00b")


@pytest.mark.integration
def test_metadata_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    ws = Workspace(build_settings(home=tmp_path, metadata={"url": pg_url})).init()
    ws.init()  # idempotent on PostgreSQL too
    key, secret = ws.keys.create("pg", "admin", actor="t")
    assert ws.keys.authenticate(secret).key_id == key.id
    assert ws.audit.verify().ok
    ws.db.dispose()
