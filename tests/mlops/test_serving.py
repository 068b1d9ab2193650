"""Real-time serving: payload formats and checks, runtimes, REST, alias moves, metrics, traffic."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from mlops_helpers import SAMPLE_ROW, People, auth, make_workspace, promote, register

from aiw.errors import InvalidInputError

pytestmark = pytest.mark.unit


def _schema() -> Any:
    from aiw.mlops.registry import ColumnSpec
    from aiw.mlops.serving import InputSchema

    return InputSchema((ColumnSpec("amount", "double"), ColumnSpec("n", "long"), ColumnSpec("region", "string")))


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_split": {"columns": ["amount", "n", "region"], "data": [[1.5, 2, "north"], [3, 4, "south"]]}},
        {"dataframe_split": {"columns": ["region", "n", "amount"], "data": [["north", 2, 1.5], ["south", 4, 3]]}},
        {"dataframe_records": [{"amount": 1.5, "n": 2, "region": "north"}, {"region": "south", "n": 4, "amount": 3}]},
        {"instances": [{"amount": 1.5, "n": 2, "region": "north"}, {"amount": 3, "n": 4, "region": "south"}]},
        {"instances": [[1.5, 2, "north"], [3, 4, "south"]]},
        {"inputs": {"amount": [1.5, 3], "n": [2, 4], "region": ["north", "south"]}},
        {"inputs": [{"amount": 1.5, "n": 2, "region": "north"}, {"amount": 3, "n": 4, "region": "south"}]},
    ],
)
def test_every_mlflow_format_gives_the_same_typed_columns(body: dict[str, Any]) -> None:
    import numpy as np

    from aiw.mlops.serving import parse_payload

    batch = parse_payload(json.dumps(body).encode(), _schema(), max_rows=10)
    assert batch.rows == 2
    assert batch.columns["amount"].dtype == np.float64 and batch.columns["amount"].tolist() == [1.5, 3.0]
    assert batch.columns["n"].dtype == np.int64 and batch.columns["n"].tolist() == [2, 4]
    assert batch.columns["region"].tolist() == ["north", "south"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"dataframe_records": [{"amount": 1.0, "n": 2}]}, "column 'region' (string) is missing"),
        (
            {"dataframe_records": [{"amount": 1.0, "n": 2, "region": "x", "colour": "red"}]},
            "column 'colour' is not an input of this model",
        ),
        (
            {"dataframe_records": [{"amount": "1.0", "n": 2, "region": "x"}]},
            "column 'amount' has the wrong type in row 0: expected a number, got string \"1.0\"",
        ),
        (
            {"dataframe_records": [{"amount": 1.0, "n": 2, "region": "x"}, {"amount": 1.0, "n": 2.5, "region": "x"}]},
            "column 'n' has the wrong type in row 1: expected an integer, got number 2.5",
        ),
        ({"dataframe_records": [{"amount": True, "n": 2, "region": "x"}]}, "expected a number, got boolean true"),
        ({"dataframe_records": [{"amount": 1.0, "n": 2, "region": None}]}, "column 'region' has the wrong type"),
        ({"inputs": {"amount": [1.0], "n": [1], "region": [7]}}, "expected a string, got integer 7"),
        ({"dataframe_split": {"columns": ["amount", "n"], "data": [[1.0, 2]]}}, "column 'region' (string) is missing"),
        ({"dataframe_records": []}, "holds no rows"),
        ({"dataframe_records": [{"amount": 1.0, "n": 1, "region": "x"}] * 11}, "at most 10 are scored"),
        ({"records": []}, "exactly one of the keys"),
        ({"dataframe_records": [], "inputs": []}, "exactly one of the keys"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_bad_payloads_name_the_column_and_why(body: Any, message: str) -> None:
    from aiw.mlops.serving import parse_payload

    with pytest.raises(InvalidInputError) as info:
        parse_payload(json.dumps(body).encode(), _schema(), max_rows=10)
    assert message in str(info.value)


def test_null_numbers_are_missing_values_and_not_json_is_refused() -> None:
    import math

    from aiw.mlops.serving import parse_payload

    batch = parse_payload({"dataframe_records": [{"amount": None, "n": 1, "region": "x"}]}, _schema(), max_rows=5)
    assert math.isnan(batch.columns["amount"][0])
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        parse_payload(b"{not json", _schema(), max_rows=5)


def test_onnx_runtime_reproduces_the_model_and_is_chosen(mlops_ws: Any, champion: str) -> None:
    import numpy as np

    from aiw.mlops.serving import ModelResolver, parse_payload

    with ModelResolver(mlops_ws) as resolver:
        loaded, version = resolver.resolve(champion)  # default alias: champion
        assert version == 1 and loaded.runtime == "onnx"
        assert loaded.verification is not None and loaded.verification.passed
        assert loaded.verification.rows == 500 and loaded.verification.max_abs_diff < 1e-4
        batch = parse_payload(
            {"dataframe_records": [SAMPLE_ROW, {**SAMPLE_ROW, "amount": 90000.0}]}, loaded.schema, max_rows=10
        )
        fast, exact = loaded.predictor.predict(batch), loaded.reference.predict(batch)
        assert fast.predictions.tolist() == exact.predictions.tolist()
        assert np.max(np.abs(fast.probabilities - exact.probabilities)) < 1e-4
        assert resolver.resolve(champion, "1")[0] is loaded and resolver.resolve(champion)[0] is loaded
        # Now both caches answer without any I/O: the request path asks no database and no MLflow.
        assert resolver.cached(champion, "champion") is loaded and resolver.cached(champion, 1) is loaded
        assert resolver.cached(champion, "staging") is None


def test_sklearn_runtime_when_asked(mlops_home: Path, champion: str) -> None:
    from aiw.mlops.serving import ModelResolver

    ws = make_workspace(mlops_home, serving={"runtime": "sklearn"})
    with ModelResolver(ws) as resolver:
        loaded, _ = resolver.resolve(champion)
        assert loaded.runtime == "sklearn" and loaded.predictor is loaded.reference


def test_a_model_load_freezes_the_heap_unless_turned_off(mlops_home: Path, mlops_ws: Any, champion: str) -> None:
    """Full collections of a serving process's heap paused requests for 100-300 ms (p99 96 ms)."""
    import gc

    from aiw.mlops.serving import ModelResolver

    gc.unfreeze()
    try:
        with ModelResolver(make_workspace(mlops_home, serving={"gc_freeze": False})) as resolver:
            resolver.resolve(champion)
        assert gc.get_freeze_count() == 0
        with ModelResolver(mlops_ws) as resolver:  # on by default
            resolver.resolve(champion)
            frozen = gc.get_freeze_count()
            resolver.resolve(champion)  # cached: no second collection or freeze
            assert gc.get_freeze_count() == frozen
        assert frozen > 100_000  # this process's whole heap (pytest, sklearn, MLflow ...)
    finally:
        gc.unfreeze()


def _predict(client: Any, key: str, path: str, body: Any) -> Any:
    return client.post(path, headers=auth(key), content=json.dumps(body))


def test_rest_predict_in_every_address_form(client: Any, api_keys: dict[str, str], champion: str) -> None:
    key = api_keys["data_scientist"]
    for path in (
        f"/v1/models/{champion}/predict",
        f"/v1/models/{champion}@champion/predict",
        f"/v1/models/{champion}/predict?alias=champion",
        f"/v1/models/{champion}/versions/1/predict",
    ):
        r = _predict(client, key, path, {"dataframe_records": [SAMPLE_ROW, SAMPLE_ROW]})
        assert r.status_code == 200, (path, r.text)
        body = r.json()
        assert body["version"] == 1 and body["model"] == champion and body["predictions"] in ([0, 0], [1, 1])
        assert body["classes"] == [0, 1] and len(body["probabilities"]) == 2
        assert abs(sum(body["probabilities"][0]) - 1) < 1e-5
    r = _predict(
        client,
        api_keys["approver"],
        f"/v1/models/{champion}/predict",
        {"dataframe_split": {"columns": list(SAMPLE_ROW), "data": [list(SAMPLE_ROW.values())]}},
    )
    assert r.status_code == 200 and r.json()["alias"] == "champion"


def test_rest_refusals_are_clear_and_audited(
    client: Any, api_keys: dict[str, str], champion: str, mlops_ws: Any
) -> None:
    key = api_keys["data_scientist"]
    bad = {**SAMPLE_ROW, "credit_score": "excellent"}
    r = _predict(client, key, f"/v1/models/{champion}/predict", {"dataframe_records": [bad]})
    assert r.status_code == 422 and "column 'credit_score' has the wrong type" in r.json()["error"]["message"]
    missing = {k: v for k, v in SAMPLE_ROW.items() if k != "channel"}
    r = _predict(client, key, f"/v1/models/{champion}/predict", {"dataframe_records": [missing]})
    assert r.status_code == 422 and "column 'channel' (string) is missing" in r.json()["error"]["message"]
    r = _predict(client, key, "/v1/models/no-such-model/predict", {"dataframe_records": [SAMPLE_ROW]})
    assert r.status_code == 404 and "No model named 'no-such-model'" in r.json()["error"]["message"]
    r = _predict(client, key, f"/v1/models/{champion}/versions/42/predict", {"dataframe_records": [SAMPLE_ROW]})
    assert r.status_code == 404 and "has no version 42" in r.json()["error"]["message"]
    r = _predict(client, key, f"/v1/models/{champion}@nightly/predict", {"dataframe_records": [SAMPLE_ROW]})
    assert r.status_code == 404 and "has no alias 'nightly'" in r.json()["error"]["message"]
    limit = mlops_ws.settings.serving.max_body_bytes
    big = {"dataframe_records": [SAMPLE_ROW] * (limit // 300)}
    r = _predict(client, key, f"/v1/models/{champion}/predict", big)
    assert r.status_code == 413 and r.json()["error"]["type"] == "payload_too_large"
    r = _predict(client, api_keys["viewer"], f"/v1/models/{champion}/predict", {"dataframe_records": [SAMPLE_ROW]})
    assert r.status_code == 403
    records = mlops_ws.audit.records(action="models.predict", outcome="denied", limit=20)
    kinds = {rec.details["kind"] for rec in records}
    assert {"invalid_input", "not_found", "payload_too_large"} <= kinds
    assert any("credit_score" in rec.details["reason"] for rec in records)


def test_prometheus_metrics_per_model_and_version(client: Any, api_keys: dict[str, str], champion: str) -> None:
    key = api_keys["data_scientist"]
    r = _predict(client, key, f"/v1/models/{champion}/predict", {"dataframe_records": [SAMPLE_ROW]})
    assert r.status_code == 200
    text = client.get("/metrics", headers=auth(api_keys["viewer"])).text
    assert f'aiw_model_requests_total{{model="{champion}",outcome="ok",version="1"}}' in text
    assert f'aiw_model_latency_seconds_bucket{{le="0.005",model="{champion}",version="1"}}' in text
    assert f'aiw_model_predictions_total{{label="0",model="{champion}",version="1"}}' in text
    assert f'aiw_model_score_count{{model="{champion}",version="1"}}' in text
    assert 'aiw_model_errors_total{kind="invalid_input"' in text


def test_served_traffic_is_recorded_and_bounded(mlops_home: Path, champion: str) -> None:
    """Serving writes the one traffic store that monitoring reads, bounded per model."""
    import asyncio
    from datetime import UTC, datetime, timedelta

    from aiw.governance.identity import Principal
    from aiw.mlops.monitoring.traffic import Window, traffic_frame
    from aiw.mlops.serving import ModelServer

    ws = make_workspace(mlops_home, serving={"traffic_rows": 5, "traffic_sample_rows": 2})
    server = ModelServer(ws)
    who = Principal("t", "data_scientist")

    async def go() -> None:
        for i in range(8):
            body = json.dumps({"dataframe_records": [{**SAMPLE_ROW, "amount": 100.0 + i}] * 3}).encode()
            await server.predict(champion, None, body, who)

    try:
        asyncio.run(go())
        server.traffic.flush()
        recent = server.traffic.recent(champion, limit=100)
        assert len(recent) == 5  # bounded per model, in rows
        newest, second = recent[0], recent[1]
        assert newest["version"] == "1" and newest["alias"] == "champion" and newest["source"] == "rest"
        assert newest["features"]["amount"] == 107.0 and newest["latency_ms"] > 0
        assert newest["score"] is not None and 0.0 <= newest["score"] <= 1.0
        # two sampled rows of the last request: `<id>` and `<id>:1`, the id labels are attached by
        assert newest["request_id"] == second["request_id"] + ":1"
        assert [r["features"]["amount"] for r in recent] == [107.0, 107.0, 106.0, 106.0, 105.0]
        frame = server.traffic.frame(champion, limit=4)
        assert len(frame) == 4 and {"prediction", "score", "version", "amount"} <= set(frame.columns)
        assert frame["amount"].tolist() == [106.0, 106.0, 107.0, 107.0]  # oldest first
        now = datetime.now(UTC)
        window = traffic_frame(ws.db, champion, Window(now - timedelta(minutes=5), now + timedelta(minutes=1)))
        assert len(window) == 5  # what drift monitoring reads is what the server stored
    finally:
        server.close()


def test_drift_monitoring_reads_what_the_server_served(mlops_home: Path, champion: str) -> None:
    """`aiw monitor drift --model` compares the served traffic with the training table."""
    import asyncio

    from aiw.governance.identity import Principal
    from aiw.mlops.monitoring.service import MonitoringService
    from aiw.mlops.monitoring.traffic import attach_labels
    from aiw.mlops.serving import ModelServer

    ws = make_workspace(mlops_home)
    server = ModelServer(ws)
    who = Principal("t", "data_scientist")

    answered: list[str] = []

    async def go() -> None:
        for i in range(20):  # amounts far beyond anything in training: drift
            rows = [{**SAMPLE_ROW, "amount": 50_000.0 + 1_000.0 * i + j} for j in range(20)]
            out = await server.predict(champion, None, json.dumps({"dataframe_records": rows}).encode(), who)
            answered.append(json.loads(out)["request_id"])

    try:
        asyncio.run(go())
        server.traffic.flush()
    finally:
        server.close()
    # the request id in each answer is what true labels are attached by (row i > 0: "<id>:<i>")
    labels = dict.fromkeys(answered, 0) | {f"{answered[0]}:1": 1, "never-served": 1}
    assert attach_labels(ws.db, ws.audit, champion, labels, actor="tests") == len(answered) + 1
    service = MonitoringService(ws)
    named = service.check_model(champion, actor="tests", hours=1, reference_table="claims")
    assert named.current_source.startswith("traffic:") and named.reference_source == "table:claims"
    assert named.report.current_rows >= 400 and named.performance is not None
    assert named.performance.current.labelled == len(answered) + 1
    # trained from the base tables (no one training table): the held-out rows logged with the model
    check = service.check_model(champion, actor="tests", hours=1)
    assert check.reference_source == f"model:{champion}/1:held-out rows (500)"
    assert {c.column for c in check.report.columns} >= {"amount", "region", "credit_score"}
    for report in (named.report, check.report):
        verdicts = {c.column: c for c in report.columns}
        assert verdicts["amount"].drifted, verdicts["amount"]


def test_alias_move_is_served_without_restart_or_failed_requests(
    mlops_home: Path, trained: Any, people: People, model_name: str
) -> None:
    """Clients hammer the champion while it moves from v1 to v2: no request fails, v2 takes over."""
    from fastapi.testclient import TestClient

    from aiw.api.app import create_app

    ws = make_workspace(mlops_home, serving={"alias_ttl_s": 0.5})
    for _ in range(2):
        register(ws, trained, model_name, people.ds)
    promote(ws, model_name, 1, people)
    _, key = ws.keys.create("hammer", "data_scientist", actor="tests")
    body = json.dumps({"dataframe_records": [SAMPLE_ROW]})
    seen: list[int] = []
    failures: list[str] = []
    stop = threading.Event()

    with TestClient(create_app(ws.settings)) as c:
        assert c.post(f"/v1/models/{model_name}/predict", headers=auth(key), content=body).json()["version"] == 1

        def hammer() -> None:
            while not stop.is_set():
                r = c.post(f"/v1/models/{model_name}/predict", headers=auth(key), content=body)
                if r.status_code != 200:
                    failures.append(r.text)
                else:
                    seen.append(r.json()["version"])

        threads = [threading.Thread(target=hammer) for _ in range(3)]
        for t in threads:
            t.start()
        # Promote v2 from ANOTHER process's point of view: a separate workspace object, so the
        # server only learns of it through its alias TTL, as it would from the CLI.
        other = make_workspace(mlops_home)
        promote(other, model_name, 2, people)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not seen or seen[-1] != 2):
            time.sleep(0.1)
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join()
    assert not failures, failures[:3]
    assert seen[0] == 1 and seen[-1] == 2
    assert seen.index(2) > 0 and all(v == 2 for v in seen[seen.index(2) :])  # never back to 1 once moved
