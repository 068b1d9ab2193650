"""The governed registry: checksums, lineage, approvals, aliases, rollback, audit, model cards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mlops_helpers import People, make_workspace, promote, register

from aiw.errors import ConflictError, IntegrityError, InvalidInputError, NotFoundError, PolicyViolation

pytestmark = pytest.mark.unit


def _audit(ws: Any, action: str, resource: str) -> list[Any]:
    return ws.audit.records(action=action, resource=resource, limit=50)


def test_register_records_checksums_lineage_and_who(
    mlops_ws: Any, trained: Any, people: People, model_name: str
) -> None:
    from aiw.mlops.registry import ModelRegistry, manifest_digest

    reg = ModelRegistry(mlops_ws)
    v1 = register(mlops_ws, trained, model_name, people.ds, description="first")
    assert v1.version == 1 and v1.parent_version is None and v1.registered_by == "dana"
    assert {"MLmodel", "model.skops", "extra_files/evaluation.json"} <= set(v1.manifest)
    assert all(len(h) == 64 for h in v1.manifest.values())
    assert v1.manifest_sha256 == manifest_digest(v1.manifest)
    assert v1.run_id == trained.logged.run_id and v1.data_fingerprint["sha256"] == trained.fingerprint.sha256
    assert v1.data_fingerprint["rows"] == 3000 and v1.code_version["version"] == "0.1.0"
    assert v1.metrics["auc"] == pytest.approx(trained.metrics["auc"])
    assert [c.name for c in v1.signature][:2] == ["amount", "days_to_report"]
    v2 = reg.register(trained.logged.run_id, model_name, people.ds2)  # by run id this time
    assert v2.version == 2 and v2.parent_version == 1 and v2.registered_by == "dmitri"
    assert [v.version for v in reg.versions(model_name)] == [2, 1]
    rec = _audit(mlops_ws, "models.register", f"model:{model_name}/2")
    assert rec and rec[0].actor == "dmitri" and rec[0].details["manifest_sha256"] == v2.manifest_sha256
    summary = next(m for m in reg.list_models() if m.name == model_name)
    assert summary.latest_version == 2 and summary.versions == 2
    assert reg.get(model_name, 2) == v2  # what register returned is what was stored
    # A LoggedModel without lineage (built by hand): the registry reads the run instead.
    import dataclasses

    v3 = reg.register(dataclasses.replace(trained.logged, lineage={}, metrics={}), model_name, people.ds)
    assert (v3.data_fingerprint, v3.code_version, v3.metrics) == (v1.data_fingerprint, v1.code_version, v1.metrics)


def test_register_refusals_are_audited(mlops_ws: Any, trained: Any, people: People, model_name: str) -> None:
    from aiw.mlops.registry import ModelRegistry

    reg = ModelRegistry(mlops_ws)
    with pytest.raises(PolicyViolation, match="models:write"):
        reg.register(trained.logged, model_name, people.approver)
    assert _audit(mlops_ws, "models.register", f"model:{model_name}")[0].outcome == "denied"
    with pytest.raises(NotFoundError, match="No MLflow run"):
        reg.register("0" * 32, model_name, people.ds)
    with pytest.raises(InvalidInputError):
        reg.register("not-a-run", model_name, people.ds)
    with pytest.raises(InvalidInputError, match="model name"):
        reg.register(trained.logged, "bad/name", people.ds)
    with pytest.raises(NotFoundError, match="No model named"):
        reg.get("never-registered", 1)
    register(mlops_ws, trained, model_name, people.ds)
    with pytest.raises(NotFoundError, match="has no version 9"):
        reg.get(model_name, 9)


def test_tampered_artifact_is_refused_at_load_and_never_served(
    mlops_home: Path, trained: Any, people: People, model_name: str, tmp_path: Path
) -> None:
    import shutil

    from aiw.mlops.registry import ModelRegistry
    from aiw.mlops.serving import ModelResolver
    from aiw.mlops.tracking import log_model

    ws = make_workspace(mlops_home)
    # A model of its own (not the shared one), so that tampering hurts no other test.
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    X = pd.DataFrame({"x1": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "x2": [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]})
    logged = log_model(ws, LogisticRegression().fit(X, [0, 0, 0, 1, 1, 1]), model_name, X)
    mv = ModelRegistry(ws).register(logged, model_name, people.ds)
    folder = Path(mv.artifact_uri.removeprefix("file://"))
    backup = tmp_path / "backup"
    shutil.copytree(folder, backup)
    with ModelResolver(ws) as resolver:
        assert resolver.load(model_name, mv.version).version == mv.version  # intact: loads
    target = folder / "model.skops"
    target.write_bytes(target.read_bytes() + b"\0")
    with ModelResolver(ws) as resolver:
        with pytest.raises(IntegrityError, match=r"failed its checksum check \(changed: model.skops\)"):
            resolver.load(model_name, mv.version)
        with pytest.raises(IntegrityError):  # still refused, from the short failure cache
            resolver.load(model_name, mv.version)
    denied = _audit(ws, "models.load", f"model:{model_name}/{mv.version}")
    assert denied and denied[0].outcome == "denied" and denied[0].details["changed"] == ["model.skops"]
    shutil.rmtree(folder)
    shutil.copytree(backup, folder)
    (folder / "extra.txt").write_text("planted")
    with pytest.raises(IntegrityError, match=r"added: extra\.txt"):
        ModelRegistry(ws).verified_folder(model_name, mv.version)
    (folder / "extra.txt").unlink()
    (folder / "MLmodel").unlink()
    with pytest.raises(IntegrityError, match="missing: MLmodel"):
        ModelRegistry(ws).verified_folder(model_name, mv.version)


def test_approval_workflow_end_to_end(mlops_ws: Any, trained: Any, people: People, model_name: str) -> None:
    from aiw.mlops.registry import ModelRegistry, PromotionWorkflow

    reg, wf = ModelRegistry(mlops_ws), PromotionWorkflow(mlops_ws)
    v1 = register(mlops_ws, trained, model_name, people.ds)
    resource = f"model:{model_name}/1"
    with pytest.raises(PolicyViolation, match="models:request"):
        wf.request(model_name, 1, "production", people.approver)
    req = wf.request(model_name, v1.version, "production", people.ds, reason="ready")
    assert req.status == "pending" and req.approvals_needed == 1 and req.alias == "champion"
    with pytest.raises(ConflictError, match="already has open request"):
        wf.request(model_name, 1, "production", people.ds2)
    # Promotion without approval is refused.
    with pytest.raises(PolicyViolation, match="no approved request"):
        wf.promote(model_name, 1, "production", people.admin)
    # Self-approval is refused, even for someone who also holds the approver role.
    from aiw.governance.identity import Principal

    with pytest.raises(PolicyViolation, match="no self-approval"):
        wf.approve(req.id, Principal("dana", "admin"), comment="mine")
    with pytest.raises(PolicyViolation, match="models:approve"):
        wf.approve(req.id, people.ds2)
    approved = wf.approve(req.id, people.approver, comment="metrics fine")
    assert approved.status == "approved" and approved.approvals == 1
    with pytest.raises(PolicyViolation, match="models:promote"):
        wf.promote(model_name, 1, "production", people.ds)
    done = wf.promote(model_name, 1, "production", people.admin)
    assert done.status == "promoted" and reg.aliases(model_name) == {"champion": 1}
    assert reg.check_mlflow_aliases(model_name) == []
    assert reg.get(model_name, 1).aliases == ("champion",)
    outcomes = [(r.action, r.outcome) for r in mlops_ws.audit.records(resource=resource, newest_first=False)]
    assert ("models.promote", "denied") in outcomes and ("models.approve", "denied") in outcomes
    assert outcomes[-1] == ("models.promote", "success")
    with pytest.raises(ConflictError, match="already is @champion"):
        wf.request(model_name, 1, "production", people.ds)


def test_policy_needs_n_distinct_approvals_and_metric_gates(
    mlops_home: Path, trained: Any, people: People, model_name: str
) -> None:
    from aiw.mlops.registry import PromotionWorkflow

    strict = make_workspace(mlops_home, policies={model_name: {"approvals": 2, "gates": {"auc": ">=0.5", "f1": ">=0"}}})
    wf = PromotionWorkflow(strict)
    register(strict, trained, model_name, people.ds)
    req = wf.request(model_name, 1, "staging", people.ds)
    assert wf.approve(req.id, people.approver).status == "pending"
    with pytest.raises(ConflictError, match="already decided"):
        wf.approve(req.id, people.approver)
    with pytest.raises(PolicyViolation, match="1 of 2 approvals"):
        wf.promote(model_name, 1, "staging", people.admin)
    assert wf.approve(req.id, people.approver2, comment="second").status == "approved"
    assert wf.promote(model_name, 1, "staging", people.admin).status == "promoted"

    gated = make_workspace(mlops_home, policies={model_name: {"approvals": 1, "gates": {"auc": ">=0.999"}}})
    with pytest.raises(PolicyViolation, match=r"auc 0\.\d+ >=0.999 FAILED"):
        PromotionWorkflow(gated).request(model_name, 1, "production", people.ds)
    denied = gated.audit.records(action="models.request", resource=f"model:{model_name}/1", outcome="denied")
    assert denied and "gates" in denied[0].details
    missing = make_workspace(mlops_home, policies={model_name: {"approvals": 1, "gates": {"nope": ">1"}}})
    with pytest.raises(PolicyViolation, match="nope missing"):
        PromotionWorkflow(missing).request(model_name, 1, "production", people.ds)
    bad = make_workspace(mlops_home, policies={model_name: {"approvals": 1, "gates": {"auc": "high"}}})
    with pytest.raises(InvalidInputError, match="malformed"):
        PromotionWorkflow(bad).request(model_name, 1, "production", people.ds)


def test_rejection_is_final_and_needs_a_comment(mlops_ws: Any, trained: Any, people: People, model_name: str) -> None:
    from aiw.mlops.registry import PromotionWorkflow

    wf = PromotionWorkflow(mlops_ws)
    register(mlops_ws, trained, model_name, people.ds)
    req = wf.request(model_name, 1, "production", people.ds)
    with pytest.raises(InvalidInputError, match="comment"):
        wf.reject(req.id, people.approver, comment=" ")
    assert wf.reject(req.id, people.approver, comment="fairness gap too wide").status == "rejected"
    with pytest.raises(ConflictError, match="is rejected, not pending"):
        wf.approve(req.id, people.approver2)
    with pytest.raises(PolicyViolation, match="no approved request"):
        wf.promote(model_name, 1, "production", people.admin)
    with pytest.raises(NotFoundError):
        wf.approve(999_999, people.approver)
    with pytest.raises(InvalidInputError, match="Unknown promotion target"):
        wf.request(model_name, 1, "prod", people.ds)


def test_rollback_moves_the_alias_back_through_approved_versions(
    mlops_ws: Any, trained: Any, people: People, model_name: str
) -> None:
    from aiw.mlops.registry import ModelRegistry, PromotionWorkflow, add_alias_listener, remove_alias_listener

    reg, wf = ModelRegistry(mlops_ws), PromotionWorkflow(mlops_ws)
    for _ in range(3):
        register(mlops_ws, trained, model_name, people.ds)
    with pytest.raises(ConflictError, match="no earlier approved version"):
        wf.rollback(model_name, "production", people.admin)
    moves: list[tuple[str, str, int]] = []

    def listener(root: str, name: str, alias: str, version: int) -> None:
        if name == model_name:
            moves.append((name, alias, version))

    add_alias_listener(listener)
    try:
        for version in (1, 2, 3):
            promote(mlops_ws, model_name, version, people)
        assert reg.aliases(model_name)["champion"] == 3
        assert wf.rollback(model_name, "production", people.admin, reason="bad canary") == 2
        assert wf.rollback(model_name, "production", people.admin) == 1
        with pytest.raises(ConflictError, match="points at 1"):
            wf.rollback(model_name, "production", people.admin)
    finally:
        remove_alias_listener(listener)
    assert [v for _, _, v in moves] == [1, 2, 3, 2, 1]
    assert reg.aliases(model_name) == {"champion": 1} and reg.check_mlflow_aliases(model_name) == []
    with pytest.raises(PolicyViolation):
        wf.rollback(model_name, "production", people.approver)
    actions = [r.action for r in mlops_ws.audit.records(action="models.rollback", resource=f"model:{model_name}")]
    assert actions.count("models.rollback") == 5  # 2 done, 1 conflict at start, 1 conflict at end, 1 forbidden


def test_aliases_moved_outside_this_layer_are_detected(
    mlops_ws: Any, trained: Any, people: People, model_name: str
) -> None:
    from aiw.mlops.registry import ModelRegistry

    reg = ModelRegistry(mlops_ws)
    register(mlops_ws, trained, model_name, people.ds)
    register(mlops_ws, trained, model_name, people.ds)
    promote(mlops_ws, model_name, 1, people)
    reg._client().set_registered_model_alias(model_name, "champion", "2")  # behind the layer's back
    assert reg.check_mlflow_aliases(model_name) == ["@champion: governed 1, MLflow 2"]
    assert reg.resolve(model_name) == 1  # serving follows the governed pointer, not MLflow's


def test_model_card_has_every_section(mlops_ws: Any, champion: str, people: People) -> None:
    from aiw.mlops.registry import write_model_card

    card = write_model_card(mlops_ws, champion, 1, people.admin)
    assert card.markdown_path and card.markdown_path.exists() and card.html_path and card.html_path.exists()
    assert card.markdown_path.parent == mlops_ws.path("artifacts") / "model-cards" / champion
    md = card.markdown_path.read_text()
    for section in (
        "## Intended use",
        "## Training data",
        "## Metrics (held-out data)",
        "## Per-group metrics and fairness (gender)",
        "## Limitations",
        "## Approvals",
        "## Lineage and integrity",
    ):
        assert section in md, section
    assert "| F |" in md and "| M |" in md and "Gap in selection_rate between groups" in md
    assert "alex: approved (looks fine)" in md and "@champion" in md
    html = card.html_path.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<table>" in html and "<script" not in html
    assert mlops_ws.audit.records(action="models.card", resource=f"model:{champion}/1")
