"""The platform's named pipelines and their steps.

* ``daily-validation``: dbt build -> quality gates and, in parallel, the embedding refresh with its
  drift gate; a drift check of served traffic (an independent branch); a summary report that is
  written whatever happened upstream.
* ``training``: features (feature store applied and materialized, training set exported) ->
  train -> evaluate (metric gates of the approval policy) -> register -> request approval.
* ``embedding-refresh``: dbt build of the document index -> embedding refresh.

Steps that need a capability missing from this build (the MLOps package, served traffic) are
skipped with a recorded note rather than failed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from aiw.errors import InvalidInputError, NotFoundError, PipelineError
from aiw.pipelines.dag import Pipeline, SkipStep, Step, StepContext

__all__ = ["PIPELINES", "daily_validation", "embedding_refresh", "get_pipeline", "training"]


def _optional(module: str, what: str) -> Any:
    """Import an optional capability, or skip the step saying which one is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise SkipStep(f"{what} is not available in this build ({module}: {exc})") from exc


# -- shared steps -------------------------------------------------------------------------------
def step_dbt_build(ctx: StepContext) -> dict[str, Any]:
    """``dbt build`` (with source freshness unless ``params.freshness`` is false)."""
    from aiw.data.dbt_runner import DbtRunner

    select = ctx.params.get("dbt_select")
    freshness = str(ctx.params.get("freshness", "true")).lower() not in {"0", "false", "no"}
    result = DbtRunner(ctx.workspace).build(
        select=[select] if isinstance(select, str) else select, freshness=freshness, actor=ctx.actor
    )
    ctx.write_artifact("dbt_build.json", result.as_dict())
    ctx.log(f"dbt build: {result.counts()} in {result.seconds:.1f} s")
    if not result.success:
        bad = "; ".join(f"{n.kind} {n.name}: {n.status}" for n in result.failures[:5]) or result.error
        raise PipelineError(f"dbt build failed: {bad}")
    return {"counts": result.counts(), "seconds": round(result.seconds, 2), "nodes": len(result.nodes)}


def step_quality_gates(ctx: StepContext) -> dict[str, Any]:
    """Volume, freshness and schema gates; fails naming each failed table and check."""
    from aiw.data.quality import QualityGates

    as_of = ctx.params.get("as_of")
    moment = datetime.fromisoformat(as_of) if isinstance(as_of, str) and as_of else None
    report = QualityGates(ctx.workspace, ctx.settings.quality).run(as_of=moment, actor=ctx.actor)
    ctx.write_artifact("quality_gates.json", report.as_dict())
    failures = [f"{r.table} {r.check}: observed {r.observed}, expected {r.expected}" for r in report.failures]
    if failures:
        raise PipelineError("quality gates failed: " + "; ".join(failures))
    return {
        "run_id": report.run_id,
        "status": report.status,
        "checks": len(report.results),
        "warnings": [f"{r.table} {r.check}: {r.message}" for r in report.warnings],
    }


def step_embedding_refresh(ctx: StepContext) -> dict[str, Any]:
    """Re-embed changed documents behind the drift gate; a blocked swap fails the step."""
    from aiw.pipelines.embedding_refresh import EmbeddingRefresher

    report = EmbeddingRefresher(ctx.workspace, ctx.settings).refresh(actor=ctx.actor)
    ctx.write_artifact("embedding_refresh.json", report.as_dict())
    out = {
        "outcome": report.outcome,
        "added": len(report.added),
        "updated": len(report.updated),
        "removed": len(report.removed),
        "unchanged": report.unchanged,
        "chunks_written": report.chunks_written,
        "failed": report.failed,
        "drift": None
        if report.drift is None
        else {
            "level": report.drift.level,
            "norm_shift": report.drift.norm_shift,
            "centroid_cosine": report.drift.centroid_cosine,
            "reasons": list(report.drift.reasons),
        },
    }
    if report.blocked:
        reasons = "; ".join(report.drift.reasons) if report.drift else "critical drift"
        raise PipelineError(f"embedding refresh blocked by the drift gate: {reasons}")
    return out


def step_serving_drift(ctx: StepContext) -> dict[str, Any]:
    """Drift of each registered model's served traffic; skipped when nothing was served yet."""
    registry_mod = _optional("aiw.mlops.registry", "The model registry")
    service_mod = _optional("aiw.mlops.monitoring.service", "Drift monitoring")
    models = [m.name for m in registry_mod.ModelRegistry(ctx.workspace).list_models()]
    if not models:
        raise SkipStep("no registered model, so no served traffic to check yet")
    service = service_mod.MonitoringService(ctx.workspace)
    checked: dict[str, Any] = {}
    idle: list[str] = []
    for name in models:
        try:
            check = service.check_model(name, actor=ctx.actor)
        except InvalidInputError as exc:  # no traffic in the window for this model
            idle.append(f"{name}: {exc.message}")
            continue
        checked[name] = {
            "report_id": check.id,
            "dataset_drift": bool(check.report.dataset_drift),
            "share_drifted": float(check.report.share_drifted),
            "html": str(check.html_path),
            "alerts": len(check.alerts),
        }
    if not checked:
        raise SkipStep("no served traffic yet: " + "; ".join(idle))
    return {"models": checked, "idle": idle}


def step_summary_report(ctx: StepContext) -> dict[str, Any]:
    """Write the run's summary (Markdown and JSON) under its artifacts, whatever happened upstream."""
    lines = [
        f"# {ctx.pipeline} run {ctx.run_id}",
        "",
        f"Started by {ctx.actor}.",
        "",
        "| step | status | note |",
        "|---|---|---|",
    ]
    for name, up in ctx.upstream.items():
        note = up.get("error") or _brief(up.get("output") or {})
        lines.append(f"| {name} | {up['status']} | {note.replace('|', '/')[:300]} |")
    failed = [n for n, up in ctx.upstream.items() if up["status"] not in ("success", "skipped")]
    lines += ["", f"**Verdict:** {'FAILED: ' + ', '.join(failed) if failed else 'all checks passed'}"]
    md = ctx.write_artifact("summary.md", "\n".join(lines) + "\n")
    ctx.write_artifact(
        "summary.json", {"run_id": ctx.run_id, "pipeline": ctx.pipeline, "steps": ctx.upstream, "failed": failed}
    )
    return {"report": str(md), "failed": failed}


def _brief(output: Mapping[str, Any]) -> str:
    keys = ("status", "outcome", "counts", "note", "rows", "version", "request_id")
    return ", ".join(f"{k}={output[k]}" for k in keys if k in output)


# -- training steps -----------------------------------------------------------------------------
def step_features(ctx: StepContext) -> dict[str, Any]:
    """Apply and materialize the feature store, and export the point-in-time training set."""
    from aiw.features.store import FeatureStoreService

    service = FeatureStoreService(ctx.workspace, ctx.settings.features)
    applied = service.apply(actor=ctx.actor)
    materialized = service.materialize(actor=ctx.actor)
    limit = ctx.params.get("limit")
    frame = service.training_set(limit=int(limit) if limit else None)
    path = ctx.artifacts_dir / "training_set.parquet"
    tmp = path.with_name(".training_set.parquet.tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(path)
    return {
        "rows": len(frame),
        "columns": len(frame.columns),
        "training_set": str(path),
        "feature_views": sorted(applied.feature_views),
        "online_store": materialized.online_store,
    }


def step_train(ctx: StepContext) -> dict[str, Any]:
    """Train the claims-fraud model (aiw.mlops) and log it to MLflow."""
    training = _optional("aiw.mlops.training", "Model training (aiw.mlops)")
    limit = ctx.params.get("limit")
    result = training.train_claims_fraud(
        ctx.workspace, name=ctx.params.get("model", "claims-fraud"), limit=int(limit) if limit else None
    )
    return {
        "run_id": result.logged.run_id,
        "model_uri": result.logged.model_uri,
        "metrics": {k: float(v) for k, v in result.metrics.items()},
        "seconds": round(result.seconds, 2),
    }


def step_evaluate(ctx: StepContext) -> dict[str, Any]:
    """Check the trained model's metrics against the approval policy's gates."""
    approvals = _optional("aiw.mlops.registry.approvals", "Approval gates (aiw.mlops)")
    name = ctx.params.get("model", "claims-fraud")
    metrics = ctx.upstream["train"]["output"]["metrics"]
    policy = ctx.settings.approval_policy(name)
    results = approvals.evaluate_gates(dict(policy.gates), metrics)
    failed = [r.describe() for r in results if not r.passed]
    if failed:
        raise PipelineError("metric gates failed: " + "; ".join(failed))
    return {"gates": [r.describe() for r in results], "metrics": metrics}


def _principal(ctx: StepContext) -> Any:
    from aiw.governance.identity import Principal

    return Principal(ctx.actor, str(ctx.params.get("role", "data_scientist")))


def step_register(ctx: StepContext) -> dict[str, Any]:
    """Register the logged model as a new governed version."""
    registry = _optional("aiw.mlops.registry", "The model registry (aiw.mlops)")
    name = ctx.params.get("model", "claims-fraud")
    mv = registry.ModelRegistry(ctx.workspace).register(
        ctx.upstream["train"]["output"]["model_uri"],
        name,
        _principal(ctx),
        description=f"trained by pipeline run {ctx.run_id}",
    )
    return {"model": name, "version": mv.version}


def step_request_approval(ctx: StepContext) -> dict[str, Any]:
    """Ask for the new version's promotion (default target ``staging``); an approver decides."""
    approvals = _optional("aiw.mlops.registry.approvals", "The approval workflow (aiw.mlops)")
    up = ctx.upstream["register"]["output"]
    target = str(ctx.params.get("target", "staging"))
    request = approvals.PromotionWorkflow(ctx.workspace).request(
        up["model"], int(up["version"]), target, _principal(ctx), reason=f"pipeline run {ctx.run_id}"
    )
    return {"request_id": request.id, "target": target, "status": request.status}


# -- the pipelines ------------------------------------------------------------------------------
def daily_validation() -> Pipeline:
    """dbt build, quality gates, embedding refresh, serving drift and a summary report."""
    return Pipeline(
        "daily-validation",
        (
            Step("dbt_build", step_dbt_build, description="dbt build with source freshness"),
            Step("quality_gates", step_quality_gates, ("dbt_build",), description="volume, freshness and schema"),
            Step(
                "embedding_refresh",
                step_embedding_refresh,
                ("dbt_build",),
                description="re-embed changed documents behind the drift gate",
            ),
            # after dbt only so as not to open the warehouse while dbt holds it; whatever dbt's outcome
            Step(
                "serving_drift",
                step_serving_drift,
                ("dbt_build",),
                trigger="all_done",
                description="drift of served traffic",
            ),
            Step(
                "summary_report",
                step_summary_report,
                ("quality_gates", "embedding_refresh", "serving_drift"),
                trigger="all_done",
                description="the run's summary under its artifacts",
            ),
        ),
        "Validate the warehouse, the marts, the document index and served traffic every day.",
    )


def training() -> Pipeline:
    """Features, train, evaluate, register, request approval."""
    return Pipeline(
        "training",
        (
            Step("features", step_features, description="feature store apply, materialize, training set"),
            Step("train", step_train, ("features",), retries=0, description="train and log the model"),
            Step("evaluate", step_evaluate, ("train",), description="metric gates of the approval policy"),
            Step("register", step_register, ("train", "evaluate"), description="a new governed version"),
            Step("request_approval", step_request_approval, ("register",), description="ask an approver"),
        ),
        "Train the claims-fraud model from the feature store and put it up for approval.",
    )


def embedding_refresh() -> Pipeline:
    """Rebuild the document index mart, then refresh the embeddings behind their gate."""
    return Pipeline(
        "embedding-refresh",
        (
            Step("dbt_build", _document_index_build, description="dbt build of +document_index"),
            Step(
                "embedding_refresh",
                step_embedding_refresh,
                ("dbt_build",),
                description="re-embed changed documents behind the drift gate",
            ),
        ),
        "Keep the RAG index in step with the document index.",
    )


def _document_index_build(ctx: StepContext) -> dict[str, Any]:
    ctx.params.setdefault("dbt_select", "+document_index")
    ctx.params.setdefault("freshness", "false")
    return step_dbt_build(ctx)


PIPELINES: dict[str, Callable[[], Pipeline]] = {
    "daily-validation": daily_validation,
    "training": training,
    "embedding-refresh": embedding_refresh,
}
"""Pipeline name -> the function that builds it."""


def get_pipeline(name: str) -> Pipeline:
    """The pipeline called ``name``.

    Raises:
        NotFoundError: no such pipeline.
    """
    try:
        return PIPELINES[name]()
    except KeyError:
        raise NotFoundError(f"No pipeline {name!r}; known: {', '.join(sorted(PIPELINES))}") from None
