"""Served traffic, prediction/performance drift, and end-to-end checks through the service, the
CLI, the REST API and the dashboard page."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aiw.errors import InvalidInputError
from aiw.mlops.monitoring import traffic
from aiw.mlops.monitoring.service import MonitoringService

pytestmark = pytest.mark.unit

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def _claims(n: int, *, shift: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": rng.lognormal(7 + shift, 0.5, n),
            "days_to_report": rng.integers(0, 60, n) + int(shift * 20),
            "channel": rng.choice(
                ["web", "phone", "agent", "app"], n, p=[0.4, 0.3, 0.2, 0.1] if shift == 0 else [0.1, 0.2, 0.3, 0.4]
            ),
        }
    )


@pytest.fixture
def warehouse(workspace):  # type: ignore[no-untyped-def]
    conn = workspace.connect_warehouse(ai_functions=False)
    ref, cur, same = _claims(3000, shift=0, seed=1), _claims(2000, shift=1.0, seed=2), _claims(2000, shift=0, seed=3)
    for name, frame in (("claims_ref", ref), ("claims_cur", cur), ("claims_same", same)):
        conn.register("frame_view", frame)
        conn.execute(f"CREATE TABLE {name} AS SELECT * FROM frame_view")
        conn.unregister("frame_view")
    conn.close()
    return workspace


def _serve(
    workspace,
    model: str,
    n: int,
    start: datetime,
    *,
    shift: float,
    seed: int,  # type: ignore[no-untyped-def]
    accuracy: float,
) -> list[str]:
    rng = np.random.default_rng(seed)
    frame = _claims(n, shift=shift, seed=seed)
    records, ids = [], []
    for i, row in enumerate(frame.itertuples(index=False)):
        label = int(rng.random() < 0.3)
        pred = label if rng.random() < accuracy else 1 - label
        rid = f"{seed}-{i}"
        ids.append(rid)
        records.append(
            traffic.TrafficRecord(
                model,
                "1",
                rid,
                {"amount": row.amount, "days_to_report": int(row.days_to_report), "channel": row.channel},
                pred,
                ts=start + timedelta(seconds=i),
                score=float(0.8 * pred + 0.2 * rng.random()),
            )
        )
    traffic.record_predictions(workspace.db, records)
    return ids


def test_record_and_label_traffic(workspace) -> None:  # type: ignore[no-untyped-def]
    rec = {
        "model": "m",
        "version": "3",
        "request_id": "r1",
        "features": {"x": 1.5},
        "prediction": 1,
        "ts": NOW - timedelta(minutes=5),
    }
    assert traffic.record_predictions(workspace.db, [rec, {**rec, "request_id": "r2", "prediction": 0}]) == 2
    traffic.record_predictions(workspace.db, [rec])  # a retried request: ignored, not an error
    window = traffic.Window(NOW - timedelta(hours=1), NOW)
    frame = traffic.traffic_frame(workspace.db, "m", window)
    assert list(frame.request_id) == ["r1", "r2"] and list(frame.prediction) == [1, 0]
    assert (
        traffic.attach_labels(workspace.db, workspace.audit, "m", {"r1": 1, "r2": 1, "nope": 0}, actor="labeler") == 2
    )
    assert workspace.audit.records(action="monitor.labels.attach")[0].details == {"given": 3, "attached": 2}
    perf = traffic.performance_drift(
        workspace.db, "m", traffic.Window(NOW - timedelta(hours=2), NOW - timedelta(hours=1)), window
    )
    assert perf.current.accuracy == 0.5 and perf.reference.labelled == 0 and perf.accuracy_drop is None
    with pytest.raises(InvalidInputError, match="timezone-aware"):
        traffic.record_predictions(workspace.db, [{**rec, "request_id": "r3", "ts": datetime(2025, 1, 1)}])
    with pytest.raises(InvalidInputError, match="NaN"):
        traffic.record_predictions(workspace.db, [{**rec, "request_id": "r4", "prediction": float("nan")}])


def test_prediction_and_performance_drift_over_windows(workspace) -> None:  # type: ignore[no-untyped-def]
    ref_w, cur_w = traffic.traffic_windows(1, now=NOW)
    ref_ids = _serve(workspace, "fraud", 600, ref_w.start, shift=0, seed=1, accuracy=0.95)
    cur_ids = _serve(workspace, "fraud", 600, cur_w.start, shift=1.0, seed=2, accuracy=0.6)
    report = traffic.prediction_drift(workspace.db, "fraud", ref_w, cur_w)
    assert report.subject == "model:fraud:predictions" and {c.column for c in report.columns} == {"prediction", "score"}
    frames = {w: traffic.traffic_frame(workspace.db, "fraud", w) for w in (ref_w, cur_w)}
    labels = {
        rid: int(p)
        for w, ids in ((ref_w, ref_ids), (cur_w, cur_ids))
        for rid, p in zip(ids, frames[w].prediction, strict=True)
    }
    # truth: the reference window was right 100%, the current one only half of the time
    labels.update({rid: 1 - labels[rid] for rid in cur_ids[::2]})
    traffic.attach_labels(workspace.db, workspace.audit, "fraud", labels, actor="t")
    perf = traffic.performance_drift(workspace.db, "fraud", ref_w, cur_w)
    assert perf.reference.accuracy == 1.0 and perf.current.accuracy == pytest.approx(0.5)
    assert perf.accuracy_drop == pytest.approx(0.5) and perf.auc_drop is not None and perf.auc_drop > 0.2


def test_check_tables_stores_report_files_gauges_and_alerts(warehouse) -> None:  # type: ignore[no-untyped-def]
    from prometheus_client import REGISTRY

    service = MonitoringService(warehouse)
    check = service.check_tables("claims_ref", "claims_cur", actor="tester")
    assert check.report.dataset_drift and set(check.report.drifted_columns) == {"amount", "days_to_report", "channel"}
    assert {a.rule for a in check.alerts} == {"column-drift", "dataset-drift", "severe-drift"}
    saved = json.loads(Path(check.json_path).read_text())
    assert saved["dataset_drift"] is True and "<svg" in Path(check.html_path).read_text()
    assert check.profile_path is not None and check.profile_path.exists()
    value = REGISTRY.get_sample_value("aiw_drift_detected", {"subject": "table:claims_cur", "column": "amount"})
    assert value == 1.0
    assert REGISTRY.get_sample_value("aiw_dataset_drift_share", {"subject": "table:claims_cur"}) == 1.0
    calm = service.check_tables("claims_ref", "claims_same", actor="tester")
    assert not calm.report.dataset_drift and calm.alerts == []
    latest = service.latest_reports()
    assert [r.subject for r in latest] == ["table:claims_same", "table:claims_cur"]
    assert warehouse.audit.records(action="monitor.drift")[0].details["report_id"] == calm.id
    with pytest.raises(InvalidInputError, match="not a table name"):
        service.check_tables("claims_ref; drop table x", "claims_cur", actor="t")


def test_check_model_uses_traffic_windows_and_training_table(warehouse) -> None:  # type: ignore[no-untyped-def]
    ref_w, cur_w = traffic.traffic_windows(1, now=NOW)
    _serve(warehouse, "claims-model", 400, ref_w.start, shift=0, seed=5, accuracy=0.9)
    _serve(warehouse, "claims-model", 400, cur_w.start, shift=1.0, seed=6, accuracy=0.9)
    service = MonitoringService(warehouse)
    check = service.check_model("claims-model", actor="t", hours=1, now=NOW)
    assert check.reference_source.startswith("traffic:") and check.report.dataset_drift
    assert {"amount", "channel", "prediction"} <= {c.column for c in check.report.columns}
    with_table = service.check_model("claims-model", actor="t", hours=1, now=NOW, reference_table="claims_ref")
    assert with_table.reference_source == "table:claims_ref"
    assert {c.column for c in with_table.report.columns} == {"amount", "days_to_report", "channel"}
    with pytest.raises(InvalidInputError, match="No served traffic"):
        service.check_model("unknown-model", actor="t", hours=1, now=NOW)


def test_cli_api_and_dashboard(warehouse, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient
    from streamlit.testing.v1 import AppTest
    from typer.testing import CliRunner

    from aiw.api import create_app
    from aiw.cli import app as cli
    from aiw.settings import load_settings

    load_settings.cache_clear()
    runner = CliRunner()
    out = runner.invoke(cli, ["monitor", "drift", "--reference", "claims_ref", "--current", "claims_cur", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["report"]["dataset_drift"] is True
    table_out = runner.invoke(cli, ["monitor", "drift", "--reference", "claims_ref", "--current", "claims_same"])
    assert table_out.exit_code == 0 and "no dataset drift" in table_out.output
    assert runner.invoke(cli, ["monitor", "drift", "--current", "x"]).exit_code == 2
    listed = runner.invoke(cli, ["monitor", "alerts", "--json"])
    assert listed.exit_code == 0 and '"dataset-drift"' in listed.output

    keys = {r: warehouse.keys.create(f"{r}-k", r, actor="t")[1] for r in ("viewer", "data_scientist")}
    with TestClient(create_app(warehouse.settings)) as client:
        auth = {"Authorization": f"Bearer {keys['data_scientist']}"}
        resp = client.post("/v1/monitor/drift", json={"reference": "claims_ref", "current": "claims_cur"}, headers=auth)
        assert resp.status_code == 201, resp.text
        assert resp.json()["report"]["n_drifted"] == 3
        viewer = {"Authorization": f"Bearer {keys['viewer']}"}
        assert (
            client.post(
                "/v1/monitor/drift", json={"reference": "claims_ref", "current": "claims_cur"}, headers=viewer
            ).status_code
            == 403
        )
        assert client.post("/v1/monitor/drift", json={"reference": "claims_ref"}, headers=auth).status_code == 422
        alerts = client.get("/v1/monitor/alerts?severity=critical", headers=viewer)
        assert alerts.status_code == 200 and {a["rule"] for a in alerts.json()} == {"severe-drift"}
        reports = client.get("/v1/monitor/reports", headers=viewer).json()
        assert client.get(f"/v1/monitor/reports/{reports[0]['id']}", headers=viewer).json()["report"]["columns"]
        metrics = client.get("/metrics", headers=viewer).text
        assert 'aiw_drift_score{column="amount",method="wasserstein",subject="table:claims_cur"}' in metrics

    page = Path(__file__).resolve().parents[2] / "src/aiw/dashboard/pages/7_Monitoring.py"
    at = AppTest.from_file(str(page), default_timeout=60).run()
    assert not at.exception
    shown = " ".join(str(df.value.to_dict()) for df in at.dataframe)
    assert "table:claims_cur" in shown and "days_to_report" in shown and "severe-drift" in shown
    assert any(m.label == "With dataset drift" and m.value == "1" for m in at.metric)
    load_settings.cache_clear()


def test_labels_arrive_by_file_cli_and_api(workspace, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from aiw.api import create_app
    from aiw.cli import app as cli
    from aiw.errors import NotFoundError
    from aiw.settings import load_settings

    served = [
        {
            "model": "m",
            "version": "1",
            "request_id": f"q{i}",
            "features": {"x": float(i)},
            "prediction": i % 2,
            "score": 0.9 if i % 2 else 0.1,
            "ts": NOW - timedelta(minutes=1),
        }
        for i in range(6)
    ]
    traffic.record_predictions(workspace.db, served)
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("request_id,label\nq0,0\nq1,0\nq9,1\n", encoding="utf-8")
    assert traffic.load_labels(csv_file) == {"q0": "0", "q1": "0", "q9": "1"}
    (tmp_path / "labels.jsonl").write_text('{"request_id": "q2", "label": 0}\n\n{"request_id": "q3", "label": 1}\n')
    assert traffic.load_labels(tmp_path / "labels.jsonl") == {"q2": 0, "q3": 1}
    (tmp_path / "bad.json").write_text('[{"id": "q2", "label": 0}]')
    with pytest.raises(InvalidInputError, match=r"bad.json: record 0 needs 'request_id' and 'label'"):
        traffic.load_labels(tmp_path / "bad.json")
    (tmp_path / "labels.xlsx").write_text("x")
    with pytest.raises(InvalidInputError, match="unknown labels format"):
        traffic.load_labels(tmp_path / "labels.xlsx")
    with pytest.raises(NotFoundError):
        traffic.load_labels(tmp_path / "missing.csv")
    with pytest.raises(InvalidInputError, match="request 'q4' must be a string, number or boolean"):
        traffic.attach_labels(workspace.db, workspace.audit, "m", {"q4": [1]}, actor="t")

    load_settings.cache_clear()
    out = CliRunner().invoke(cli, ["monitor", "labels", "m", str(csv_file)])
    assert out.exit_code == 0, out.output
    assert " ".join(out.output.split()) == "attached 2 of 3 labels to 'm' (1 unknown request ids)"
    key = workspace.keys.create("labeler", "data_scientist", actor="t")[1]
    viewer = workspace.keys.create("looker", "viewer", actor="t")[1]
    with TestClient(create_app(workspace.settings)) as client:
        body = {"model": "m", "labels": {"q2": 0, "q3": 1, "q4": 0, "q5": 1}}
        resp = client.post("/v1/monitor/labels", json=body, headers={"Authorization": f"Bearer {key}"})
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"model": "m", "given": 4, "attached": 4, "unknown": 0}
        denied = client.post("/v1/monitor/labels", json=body, headers={"Authorization": f"Bearer {viewer}"})
        assert denied.status_code == 403
        empty = client.post(
            "/v1/monitor/labels", json={"model": "m", "labels": {}}, headers={"Authorization": f"Bearer {key}"}
        )
        assert empty.status_code == 422
    load_settings.cache_clear()
    window = traffic.Window(NOW - timedelta(hours=1), NOW)
    perf = traffic.performance_drift(workspace.db, "m", traffic.Window(NOW - timedelta(hours=2), window.start), window)
    # q0..q5 predicted 0,1,0,1,0,1 against labels 0,0,0,1,0,1: 5 of 6 right
    assert perf.current.labelled == 6 and perf.current.accuracy == pytest.approx(5 / 6)
    assert perf.current.auc == 1.0 - 0.125
