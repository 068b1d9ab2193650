"""Streaming scoring on the local NATS JetStream: at least once, idempotent, a kill -9 loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from mlops_helpers import SAMPLE_ROW, People

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NATS = os.environ.get("AIW_TEST_NATS_URL", "nats://127.0.0.1:4222")


@pytest.fixture
def subjects() -> tuple[str, str]:
    """Unique input and output subjects; fails (never skips) when NATS does not answer."""
    import socket

    try:
        socket.create_connection(("127.0.0.1", 4222), timeout=2).close()
    except OSError:
        pytest.fail("NATS at 127.0.0.1:4222 does not answer; start it (see .ci/run)", pytrace=False)
    tag = secrets.token_hex(4)
    return f"aiwtest.{tag}.claims", f"aiwtest.{tag}.scores"


async def _publish(subject: str, records: list[Any]) -> None:
    import nats

    from aiw.mlops.serving.stream import stream_name_for

    nc = await nats.connect(NATS)
    try:
        js = nc.jetstream()
        try:
            await js.find_stream_name_by_subject(subject)
        except Exception:
            await js.add_stream(name=stream_name_for(subject), subjects=[subject])
        for rec in records:
            payload = rec if isinstance(rec, bytes) else json.dumps(rec).encode()
            await js.publish(subject, payload)
    finally:
        await nc.close()


async def _results(subject: str) -> list[dict[str, Any]]:
    import nats

    from aiw.mlops.serving.stream import stream_name_for

    nc = await nats.connect(NATS)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream_name_for(subject))
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(stream_name_for(subject), seq)
            out.append(json.loads(msg.data))
        return out
    finally:
        await nc.close()


async def _count(subject: str) -> int:
    import nats

    from aiw.mlops.serving.stream import stream_name_for

    nc = await nats.connect(NATS)
    try:
        try:
            return int((await nc.jetstream().stream_info(stream_name_for(subject))).state.messages)
        except Exception:
            return 0
    finally:
        await nc.close()


async def _cleanup(*subjects: str) -> None:
    import nats

    from aiw.mlops.serving.stream import stream_name_for

    nc = await nats.connect(NATS)
    try:
        for subject in subjects:
            with contextlib.suppress(Exception):  # already gone
                await nc.jetstream().delete_stream(stream_name_for(subject))
    finally:
        await nc.close()


def _records(start: int, n: int) -> list[dict[str, Any]]:
    return [{"id": f"c-{i}", **SAMPLE_ROW, "amount": 100.0 + 37 * i} for i in range(start, start + n)]


def test_scores_at_least_once_and_a_kill_mid_stream_loses_nothing(
    mlops_ws: Any, mlops_home: Path, champion: str, people: People, subjects: tuple[str, str]
) -> None:
    from aiw.mlops.serving import ModelResolver, parse_payload
    from aiw.mlops.serving.stream import StreamScorer

    sub_in, sub_out = subjects
    try:
        asyncio.run(_publish(sub_in, _records(0, 150)))
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIW_")}
        env.update(
            AIW_HOME=str(mlops_home), AIW_ACTOR="stream-runner", AIW_ROLE="data_scientist", AIW_ENGINE__NATS_URL=NATS
        )
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from aiw.cli import main; main()",
                "models",
                "stream",
                champion,
                "--in",
                sub_in,
                "--out",
                sub_out,
                "--batch",
                "3",
                "--ack-wait",
                "2",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and asyncio.run(_count(sub_out)) < 5:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)  # a crash mid-stream: no clean shutdown, no final acks
        proc.wait(timeout=30)
        done_before = asyncio.run(_count(sub_out))
        assert 5 <= done_before < 150, done_before
        # More records arrive while the scorer is down, one of them broken.
        asyncio.run(_publish(sub_in, [*_records(150, 50), b"{not json"]))
        scorer = StreamScorer(mlops_ws, champion, sub_in, sub_out, people.ds, batch=25, ack_wait_s=2)
        try:
            stats = asyncio.run(scorer.run(idle_timeout_s=5))
        finally:
            scorer.close()
        results = asyncio.run(_results(sub_out))
    finally:
        asyncio.run(_cleanup(sub_in, sub_out))
    ids = [r["id"] for r in results]
    assert len(ids) == len(set(ids)) == 201  # every record exactly once: nothing lost, nothing doubled
    assert {f"c-{i}" for i in range(200)} <= set(ids)
    errors = [r for r in results if "error" in r]
    assert len(errors) == 1 and "not a JSON object" in errors[0]["error"]
    assert stats.received >= 201 - done_before and stats.errors == 1
    by_id = {r["id"]: r for r in results}
    with ModelResolver(mlops_ws) as resolver:
        loaded, _ = resolver.resolve(champion)
        rec = _records(42, 1)[0]
        batch = parse_payload(
            {"dataframe_records": [{k: v for k, v in rec.items() if k != "id"}]}, loaded.schema, max_rows=1
        )
        expected = loaded.predictor.predict(batch)
    assert by_id["c-42"]["prediction"] == expected.predictions.tolist()[0]
    assert by_id["c-42"]["score"] == pytest.approx(float(expected.score[0]), abs=1e-6)
    assert by_id["c-42"]["version"] == 1 and by_id["c-42"]["model"] == champion


def test_bad_records_get_error_results_and_subjects_are_checked(
    mlops_ws: Any, champion: str, people: People, subjects: tuple[str, str]
) -> None:
    from aiw.errors import InvalidInputError, PolicyViolation
    from aiw.mlops.serving.stream import StreamScorer

    sub_in, sub_out = subjects
    with pytest.raises(InvalidInputError, match="subject"):
        StreamScorer(mlops_ws, champion, "claims.>", sub_out, people.ds)
    with pytest.raises(InvalidInputError, match="differ"):
        StreamScorer(mlops_ws, champion, sub_in, sub_in, people.ds)
    with pytest.raises(PolicyViolation):
        StreamScorer(mlops_ws, champion, sub_in, sub_out, people.viewer)
    bad = [
        {"id": "m1", **{k: v for k, v in SAMPLE_ROW.items() if k != "region"}},
        {"id": "m2", **SAMPLE_ROW, "amount": "lots"},
        {"id": "m3", **SAMPLE_ROW, "colour": "red"},
        {"id": "ok", **SAMPLE_ROW},
    ]
    try:
        asyncio.run(_publish(sub_in, bad))
        scorer = StreamScorer(mlops_ws, champion, sub_in, sub_out, people.ds, batch=10, ack_wait_s=2)
        try:
            stats = asyncio.run(scorer.run(max_messages=4, idle_timeout_s=10))
        finally:
            scorer.close()
        results = {r["id"]: r for r in asyncio.run(_results(sub_out))}
    finally:
        asyncio.run(_cleanup(sub_in, sub_out))
    assert stats.received == 4 and stats.errors == 3 and stats.scored == 1
    assert "column 'region' (string) is missing" in results["m1"]["error"]
    assert "column 'amount' has the wrong type" in results["m2"]["error"]
    assert "column 'colour' is not an input" in results["m3"]["error"]
    assert results["ok"]["prediction"] in (0, 1) and 0 <= results["ok"]["score"] <= 1


def test_a_record_the_model_fails_on_is_answered_with_an_error_and_the_rest_scored(
    mlops_ws: Any, trained: Any, people: People, subjects: tuple[str, str]
) -> None:
    """A model that raises on one record must neither stop the stream nor take the batch down."""
    import pandas as pd
    from mlflow.utils.file_utils import local_file_uri_to_path

    from aiw.mlops.monitoring.traffic import recent_predictions
    from aiw.mlops.registry import ModelRegistry
    from aiw.mlops.rollout.faults import FaultyClassifier, log_faulty_model
    from aiw.mlops.serving.loader import read_sklearn_model
    from aiw.mlops.serving.stream import StreamScorer
    from aiw.mlops.training import CATEGORICAL_FEATURES, LABEL, NUMERIC_FEATURES, load_claim_features

    folder = Path(local_file_uri_to_path(trained.logged.artifact_uri))
    pipeline = read_sklearn_model(folder, trained.logged.trusted_types)
    frame, _, _ = load_claim_features(mlops_ws)
    columns = [*NUMERIC_FEATURES, *CATEGORICAL_FEATURES]
    logged = log_faulty_model(
        mlops_ws, pipeline, frame[columns].head(600), frame[LABEL].head(600), name="stream-faulty", failure_rate=0.2
    )
    version = ModelRegistry(mlops_ws).register(logged, "stream-faulty", people.ds).version
    probe = FaultyClassifier(failure_rate=0.2)
    records = _records(0, 40)
    failing = {r["id"] for r in records if probe.failing(pd.DataFrame([{k: v for k, v in r.items() if k != "id"}]))[0]}
    assert 0 < len(failing) < len(records)
    sub_in, sub_out = subjects
    try:
        asyncio.run(_publish(sub_in, records))
        scorer = StreamScorer(
            mlops_ws, "stream-faulty", sub_in, sub_out, people.ds, ref=version, batch=50, ack_wait_s=5
        )
        try:
            stats = asyncio.run(scorer.run(max_messages=len(records), idle_timeout_s=10))
        finally:
            scorer.close()
        results = {r["id"]: r for r in asyncio.run(_results(sub_out))}
    finally:
        asyncio.run(_cleanup(sub_in, sub_out))
    assert stats.received == len(records) and stats.errors == len(failing)
    assert stats.scored == len(records) - len(failing) and set(results) == {r["id"] for r in records}
    for rid, result in results.items():
        if rid in failing:
            assert result["error_type"] == "RuntimeError" and "failed while scoring 1 row" in result["error"]
        else:
            assert "error" not in result and result["prediction"] in (0, 1)
    # Each scored record is stored under its own id (labels attach to it; a redelivery is not kept twice).
    stored = recent_predictions(mlops_ws.db, "stream-faulty", limit=1000)
    assert sorted(r["request_id"] for r in stored) == sorted(r["id"] for r in records if r["id"] not in failing)
    assert all(r["source"] == "stream" for r in stored)
