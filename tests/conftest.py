"""Shared fixtures. Expensive ones (models, servers) are per session; workspaces per test."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

PG_URL = os.environ.get("AIW_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("AIW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NATS_URL = os.environ.get("AIW_TEST_NATS_URL", "nats://127.0.0.1:4222")
REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test must say whether it is a unit or an integration test."""
    missing = [item.nodeid for item in items if not any(item.get_closest_marker(m) for m in ("unit", "integration"))]
    if missing:
        raise pytest.UsageError("tests without a 'unit' or 'integration' marker:\n  " + "\n  ".join(missing))


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Fail (never skip) when a server backend the test needs does not answer."""
    if not _answers(host, port):
        pytest.fail(f"{name} at {host}:{port} does not answer; start it (see .ci/run)", pytrace=False)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Settings for a fresh embedded workspace under tmp_path, isolated from the environment."""
    from aiw.settings import build_settings

    for var in list(os.environ):
        if var.startswith("AIW_") and not var.startswith("AIW_TEST_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("AIW_HOME", str(tmp_path / "ws"))
    return build_settings()


@pytest.fixture
def workspace(settings):  # type: ignore[no-untyped-def]
    """An initialised embedded workspace."""
    from aiw.workspace import Workspace

    ws = Workspace(settings).init()
    yield ws
    ws.db.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import sqlalchemy as sa

    from aiw.db import normalise_url

    schema = f"aiw_t_{secrets.token_hex(4)}"
    admin = sa.create_engine(normalise_url(PG_URL))
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    """The bundled all-MiniLM-L6-v2 as a ``SentenceEmbedder``, loaded once for the whole session."""
    from aiw.providers.embeddings import SentenceEmbedder

    return SentenceEmbedder()


@pytest.fixture
def sentiment_pool_parts(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """``start(workers) -> parts``: start this process's real sentiment process pool, wait until it
    is up (bounded, not a timing check; fails when it does not start), and count the parts of
    work sent to it from then on, so a test can show that scoring left this process.
    """
    import time

    from aiw.providers import sentiment

    def start(workers: int) -> list[int]:
        sentiment._POOL_FAILED.discard(os.getpid())  # an earlier test may have broken its pool on purpose
        for _ in range(600):
            pool = sentiment._ready_pool(workers)
            if pool is not None:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"the sentiment process pool of {workers} workers did not start within 60 s")
        parts: list[int] = []
        real_map = pool.map

        def counting_map(fn, chunks, *args, **kwargs):  # type: ignore[no-untyped-def]
            chunks = list(chunks)
            parts.append(len(chunks))
            return real_map(fn, chunks, *args, **kwargs)

        monkeypatch.setattr(pool, "map", counting_map)
        return parts

    return start
