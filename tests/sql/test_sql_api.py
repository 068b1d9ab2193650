"""``POST /v1/sql`` and ``/v1/insights/*`` through the real app, keys and roles."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def api(sample_ws: Any) -> Iterator[tuple[TestClient, dict[str, str]]]:
    from aiw.api import create_app

    keys = {
        role: sample_ws.keys.create(f"sql-{role}", role, actor="test")[1]
        for role in ("viewer", "analyst", "data_scientist")
    }
    with TestClient(create_app(sample_ws.settings), raise_server_exceptions=False) as client:
        yield client, {role: f"Bearer {key}" for role, key in keys.items()}


def test_sql_for_an_analyst(api: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = api
    response = client.post(
        "/v1/sql",
        json={
            "sql": "SELECT claim_id, incident_date, ai_sentiment('great') AS s FROM claims ORDER BY claim_id",
            "limit": 2,
        },
        headers={"Authorization": auth["analyst"]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["columns"] == ["claim_id", "incident_date", "s"] and body["truncated"] is True
    assert len(body["rows"]) == 2 and body["rows"][0][0] == 1 and isinstance(body["rows"][0][1], str)
    assert body["rows"][0][2] > 0.5 and body["elapsed_ms"] >= 0


def test_sql_refusals_and_roles(api: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = api
    refused = client.post("/v1/sql", json={"sql": "DROP TABLE claims"}, headers={"Authorization": auth["analyst"]})
    assert refused.status_code == 422
    assert "write statements are not allowed" in refused.json()["error"]["message"]
    denied = client.post("/v1/sql", json={"sql": "SELECT 1"}, headers={"Authorization": auth["viewer"]})
    assert denied.status_code == 403
    assert client.post("/v1/sql", json={"sql": "SELECT 1"}).status_code == 401
    bad = client.post("/v1/sql", json={"sql": "SELECT 1", "limit": 0}, headers={"Authorization": auth["analyst"]})
    assert bad.status_code == 422
    no_llm = client.post(
        "/v1/sql", json={"sql": "SELECT ai_complete('hi')"}, headers={"Authorization": auth["analyst"]}
    )
    assert no_llm.status_code == 500 and "AIW_LLM__ADAPTER" in no_llm.json()["error"]["message"] + no_llm.json()[
        "error"
    ].get("hint", "")


def test_insights_routes(api: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = api
    request = {"source": "claims", "ts": "incident_date", "agg": "count", "grain": "day", "fill": "zero", "horizon": 5}
    fc = client.post("/v1/insights/forecast", json=request, headers={"Authorization": auth["analyst"]})
    assert fc.status_code == 200, fc.text
    body = fc.json()
    assert body["columns"] == ["series", "ts", "forecast", "lower", "upper", "model"] and len(body["rows"]) == 5
    assert all(r[3] <= r[2] <= r[4] for r in body["rows"])
    an = client.post(
        "/v1/insights/anomalies",
        json={
            **{k: v for k, v in request.items() if k != "horizon"},
            "series": "line_of_business",
            "only_anomalies": True,
        },
        headers={"Authorization": auth["data_scientist"]},
    )
    assert an.status_code == 200, an.text
    rows = an.json()["rows"]
    assert rows and all(r[6] is True for r in rows)
    viewer = client.post("/v1/insights/forecast", json=request, headers={"Authorization": auth["viewer"]})
    assert viewer.status_code == 403
