"""Scoring by entity key through the real API (uvicorn), with features from the real Feast SQLite
online store, and a model that raises answered as a typed ``model_error`` on a connection that
stays open.

One workspace for the module: sample claims, the dbt marts, the feature store applied and
materialized, a small fraud model at @champion and a faulty twin (raises on about 10% of rows).
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlops_helpers import SAMPLE_ROW, People, auth, make_workspace, promote

pytestmark = pytest.mark.integration

MISSING = [999_999_001, 999_999_002]


class Env:
    """What the module fixture built."""

    def __init__(
        self, ws: Any, base: str, key: str, model: str, faulty: str, columns: list[str], claim_ids: list[int]
    ) -> None:
        self.ws, self.base, self.key, self.model, self.faulty = ws, base, key, model, faulty
        self.columns, self.claim_ids = columns, claim_ids

    def post(self, path: str, body: Any) -> httpx.Response:
        return httpx.post(f"{self.base}{path}", headers=auth(self.key), content=json.dumps(body), timeout=60)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, people: People) -> Iterator[Env]:
    from mlflow.utils.file_utils import local_file_uri_to_path

    from aiw.data._warehouse import warehouse
    from aiw.data.dbt_runner import DbtRunner
    from aiw.data.sample import generate
    from aiw.features.store import FeatureStoreService
    from aiw.mlops.registry import ModelRegistry
    from aiw.mlops.rollout.faults import log_faulty_model
    from aiw.mlops.serving.loader import read_sklearn_model
    from aiw.mlops.tour import ApiServerThread
    from aiw.mlops.training import (
        CATEGORICAL_FEATURES,
        LABEL,
        NUMERIC_FEATURES,
        load_claim_features,
        train_claims_fraud,
    )

    ws = make_workspace(tmp_path_factory.mktemp("online") / "ws")
    generate(ws, rows=1500, seed=7)
    built = DbtRunner(ws).build(actor="tests")
    assert built.success, built.error
    store = FeatureStoreService(ws, ws.settings.features)
    store.apply(actor="tests")
    store.materialize(actor="tests")

    trained = train_claims_fraud(ws, name="fraud-online", seed=0, max_iter=40)
    registry = ModelRegistry(ws)
    model = "fraud-online"
    registry.register(trained.logged, model, people.ds)
    promote(ws, model, 1, people)

    folder = Path(local_file_uri_to_path(trained.logged.artifact_uri))
    pipeline = read_sklearn_model(folder, trained.logged.trusted_types)
    frame, _, _ = load_claim_features(ws)
    columns = [*NUMERIC_FEATURES, *CATEGORICAL_FEATURES]
    faulty_logged = log_faulty_model(
        ws, pipeline, frame[columns].head(600), frame[LABEL].head(600), name="fraud-faulty", failure_rate=0.1
    )
    registry.register(faulty_logged, "fraud-faulty", people.ds)

    with warehouse(ws) as conn:
        ids = [
            int(r[0])
            for r in conn.execute("SELECT claim_id FROM marts.claim_features ORDER BY claim_id LIMIT 5").fetchall()
        ]
    _, key = ws.keys.create("online-ds", "data_scientist", actor="tests")
    with ApiServerThread(ws.settings) as base:
        yield Env(ws, base, key, model, "fraud-faulty", columns, ids)
    ws.db.dispose()


def _mart_records(env: Env, ids: list[int]) -> list[dict[str, Any]]:
    from aiw.data._warehouse import warehouse

    cols = ", ".join(env.columns)
    with warehouse(env.ws) as conn:
        frame = conn.execute(
            f"SELECT claim_id, {cols} FROM marts.claim_features WHERE claim_id IN ({', '.join(map(str, ids))})"
        ).df()
    by_id = {
        int(r["claim_id"]): {c: r[c].item() if hasattr(r[c], "item") else r[c] for c in env.columns}
        for _, r in frame.iterrows()
    }
    return [by_id[i] for i in ids]


def _probs(r: httpx.Response) -> list[float]:
    return [p for row in r.json()["probabilities"] for p in row]


def test_predict_by_entity_keys_reads_the_online_store(env: Env) -> None:
    """Every address form takes entity keys; the answer equals scoring the mart's own rows."""
    ids = [env.claim_ids[3], env.claim_ids[0], env.claim_ids[3]]  # any order, repeats allowed
    direct = env.post(f"/v1/models/{env.model}/predict", {"dataframe_records": _mart_records(env, ids)})
    assert direct.status_code == 200, direct.text
    assert "features" not in direct.json()  # the ordinary path says nothing about a feature store
    for path in (
        f"/v1/models/{env.model}/predict",
        f"/v1/models/{env.model}@champion/predict",
        f"/v1/models/{env.model}/versions/1/predict",
    ):
        r = env.post(path, {"entities": {"claim_id": ids}})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["version"] == 1 and body["predictions"] == direct.json()["predictions"]
        assert _probs(r) == pytest.approx(_probs(direct))
        source = body["features"]
        assert source["source"] == "online_store" and source["online_store"] == "sqlite"
        assert source["refs"] == [f"claim_features:{c}" for c in env.columns]
    # a feature service, or the features named one by one, give the same answer
    by_service = env.post(
        f"/v1/models/{env.model}/predict",
        {"entities": {"claim_id": ids, "customer_id": [1, 1, 1]}, "feature_service": "claims_fraud"},
    )
    assert by_service.status_code == 200, by_service.text
    assert _probs(by_service) == pytest.approx(_probs(direct))
    named = [f"claim_features:{c}" for c in env.columns]
    r = env.post(f"/v1/models/{env.model}/predict", {"entities": {"claim_id": ids}, "features": named})
    assert r.status_code == 200 and _probs(r) == pytest.approx(_probs(direct))


def test_keys_missing_from_the_online_store_are_named(env: Env) -> None:
    ids = [env.claim_ids[0], *MISSING]
    r = env.post(f"/v1/models/{env.model}/predict", {"entities": {"claim_id": ids}})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_input" and "'claim_features'" in error["message"]
    # the keys that are missing, and only those
    assert error["message"].endswith(f"for claim_id {MISSING[0]}, {MISSING[1]}"), error["message"]
    assert "aiw features materialize" in error["hint"]
    assert error["missing"] == {"claim_id": list(MISSING)}  # machine-readable too
    metrics = httpx.get(f"{env.base}/metrics", headers=auth(env.key), timeout=30).text
    assert f'aiw_model_errors_total{{kind="features_missing",model="{env.model}",version="1"}}' in metrics
    denied = env.ws.audit.records(action="models.predict", outcome="denied", limit=5)
    assert any(str(MISSING[0]) in json.dumps(d.details) for d in denied)


@pytest.mark.parametrize(
    ("body", "status", "needles"),
    [
        ({"entities": {"policy_id": [1]}}, 422, ["'policy_id'", "claim_id, customer_id"]),
        ({"entities": {"claim_id": ["17"]}}, 422, ["entities['claim_id'][0] must be an integer key"]),
        ({"entities": {"claim_id": [True]}}, 422, ["must be an integer key"]),
        ({"entities": {"claim_id": [1, 2], "customer_id": [1]}}, 422, ["one value per row", "claim_id: 2"]),
        ({"entities": {"claim_id": 17}}, 422, ["entities['claim_id'] must be a list"]),
        ({"entities": {}}, 422, ["'entities' must be an object"]),
        ({"entities": {"claim_id": []}}, 422, ["holds no rows"]),
        ({"entities": {"claim_id": [1]}, "extra": 1}, 422, ["unknown keys: extra"]),
        (
            {"entities": {"claim_id": [1]}, "features": ["claim_features:amount"], "feature_service": "claims_fraud"},
            422,
            ["either 'features' or 'feature_service'"],
        ),
        ({"entities": {"claim_id": [1]}, "feature_service": "nope"}, 422, ["Unknown feature service 'nope'"]),
        (
            {"entities": {"claim_id": [1]}, "features": ["claim_features:nope"]},
            422,
            ["Unknown online feature 'claim_features:nope'"],
        ),
        # the label view is offline: the sensitive attribute can never be served
        (
            {"entities": {"claim_id": [1]}, "features": ["claim_labels:gender"]},
            422,
            ["Unknown online feature 'claim_labels:gender'"],
        ),
        (
            {"entities": {"claim_id": [1]}, "features": ["claim_features:amount"]},
            422,
            ["No online feature feeds the model's input columns", "among the named features"],
        ),
        (
            {"entities": {"customer_id": [1]}},
            422,
            ["No online feature feeds", "looked up by customer_id", "add claim_id to 'entities'"],
        ),
        (
            {"entities": {"claim_id": [1], "customer_id": [1]}},
            422,
            ["is a feature of several views", "customer_features:"],
        ),
    ],
)
def test_bad_entity_requests_say_what_and_how(env: Env, body: dict[str, Any], status: int, needles: list[str]) -> None:
    r = env.post(f"/v1/models/{env.model}/predict", body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    text = error["message"] + " " + (error.get("hint") or "")
    for needle in needles:
        assert needle in text, text


def test_the_ordinary_path_never_imports_feast() -> None:
    code = (
        "import sys, json\n"
        "from aiw.mlops.serving.inputs import InputSchema, parse_request\n"
        "from aiw.mlops.registry.versions import ColumnSpec\n"
        "import aiw.mlops.serving.server, aiw.api.routes.models, aiw.features\n"
        "s = InputSchema((ColumnSpec('amount', 'double'),))\n"
        "parse_request(json.dumps({'dataframe_records': [{'amount': 1.0}]}), s, max_rows=5)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'feast')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def _rows_for(env: Env, *, failing: bool) -> dict[str, Any]:
    """A valid input row on which the faulty model fails (or does not)."""
    import pandas as pd

    from aiw.mlops.rollout.faults import FaultyClassifier

    probe = FaultyClassifier(failure_rate=0.1)
    for i in range(2000):
        row = {**SAMPLE_ROW, "amount": 1000.0 + i}
        if bool(probe.failing(pd.DataFrame([row]))[0]) == failing:
            return row
    raise AssertionError("no such row")


def test_a_model_that_raises_is_a_typed_error_and_the_connection_stays_open(env: Env) -> None:
    bad, good = _rows_for(env, failing=True), _rows_for(env, failing=False)
    host, port = env.base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    headers = {**auth(env.key), "Content-Type": "application/json"}
    path = f"/v1/models/{env.faulty}/versions/1/predict"
    try:
        conn.request("POST", path, body=json.dumps({"dataframe_records": [good, bad]}), headers=headers)
        first = conn.getresponse()
        error = json.loads(first.read())["error"]
        assert first.status == 500 and first.getheader("connection", "").lower() != "close"
        assert error["type"] == "model_error" and error["status"] == 500
        assert error["model"] == env.faulty and error["version"] == 1 and error["error_type"] == "RuntimeError"
        assert error["message"] == f"Model '{env.faulty}' version 1 failed while scoring 2 rows: RuntimeError"
        assert "injected failure" not in json.dumps(error)  # the exception's text stays in the server log
        sock = conn.sock
        assert sock is not None
        conn.request("POST", path, body=json.dumps({"dataframe_records": [good]}), headers=headers)
        second = conn.getresponse()
        assert second.status == 200 and json.loads(second.read())["version"] == 1
        assert conn.sock is sock  # the same connection answered both
    finally:
        conn.close()
    metrics = httpx.get(f"{env.base}/metrics", headers=auth(env.key), timeout=30).text
    assert f'aiw_model_errors_total{{kind="model_error",model="{env.faulty}",version="1"}} 1.0' in metrics


def test_a_failing_model_logs_its_traceback_at_most_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from aiw.mlops.serving import loader

    loader._tracebacks.pop(("noisy", 7, "RuntimeError"), None)
    with caplog.at_level(logging.DEBUG, logger="aiw.mlops.serving.loader"):
        for _ in range(3):
            loader.model_failure("noisy", 7, "sklearn", 1, RuntimeError("boom"))
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and errors[0].exc_info is not None
        last, quiet = loader._tracebacks[("noisy", 7, "RuntimeError")]
        assert quiet == 2
        loader._tracebacks[("noisy", 7, "RuntimeError")] = (last - loader._TRACEBACK_EVERY_S, quiet)  # a minute on
        loader.model_failure("noisy", 7, "sklearn", 1, RuntimeError("boom"))
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and "2 more failures of this kind since the last traceback" in errors[1].getMessage()
