"""The feature store's server backend: the Redis online store (AIW_TEST_REDIS_URL, default 127.0.0.1:6379)."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.integration

REDIS_URL = os.environ.get("AIW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def test_redis_online_store_matches_sqlite(built_ws, tmp_path) -> None:  # type: ignore[no-untyped-def]
    parsed = urlparse(REDIS_URL)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 6379
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        pytest.fail(f"Redis at {host}:{port} does not answer; start it (see .ci/run)", pytrace=False)
    import redis

    from aiw.features.store import FeatureStoreService
    from aiw.settings import build_settings
    from aiw.workspace import Workspace

    project = f"aiwt{secrets.token_hex(4)}"  # a project of its own: keys never collide with others'
    built_ws.db.dispose()
    shutil.copytree(built_ws.root, tmp_path / "ws")
    ws = Workspace(build_settings(home=tmp_path / "ws", features={"online_url": REDIS_URL, "project": project}))
    ws.ensure()
    service = FeatureStoreService(ws, ws.settings.features)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        assert service.online_kind == "redis"
        service.apply(actor="tests")
        result = service.materialize(actor="tests", views=["customer_features"])
        assert result.online_store == "redis"
        assert not (service.repo / "online.db").exists()  # nothing went to SQLite
        rows = [{"customer_id": c} for c in (1, 2, 3, 10**9)]
        got = service.online(rows, ["customer_features:claims_to_date", "customer_features:region"])
        from aiw.data._warehouse import warehouse

        with warehouse(ws) as conn:
            truth = dict(
                conn.execute("""SELECT customer_id, claims_to_date FROM marts.customer_features
                QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY event_timestamp DESC) = 1""").fetchall()
            )
        assert [g["claims_to_date"] for g in got[:3]] == [truth[1], truth[2], truth[3]]
        assert got[3]["claims_to_date"] is None and got[3]["region"] is None
        assert any(project.encode() in key for key in client.scan_iter(count=1000))
    finally:
        service.store.teardown()
        client.close()
        ws.db.dispose()
