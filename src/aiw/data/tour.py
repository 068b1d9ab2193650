"""The tour's data platform step: a daily-validation run, a training set and an online lookup."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiw.tour import TourContext

__all__ = ["tour_step"]

_ONLINE = (
    "claim_features:amount",
    "claim_features:amount_to_limit",
    "claim_features:channel",
    "customer_features:claims_to_date",
    "customer_features:tenure_days",
)


def tour_step(ctx: TourContext) -> None:
    """Run daily-validation (dbt build and tests, quality gates, embedding refresh, report), then
    build a point-in-time training set from the feature store and look features up online."""
    from aiw.features.store import FeatureStoreService, get_online_features
    from aiw.pipelines.definitions import get_pipeline
    from aiw.pipelines.runner import PipelineRunner

    console, ws = ctx.console, ctx.workspace
    run = PipelineRunner(ws, ctx.settings).run(get_pipeline("daily-validation"), actor="tour", trigger="tour")
    dbt = run.step("dbt_build")
    counts = ", ".join(f"{v} {k}" for k, v in sorted(dbt.output.get("counts", {}).items()))
    console.print(
        f"  dbt build: {dbt.output.get('nodes', 0)} models, tests and sources ({counts}) in {dbt.seconds or 0:.1f} s"
        if dbt.status == "success"
        else f"  dbt build FAILED: {dbt.error}"
    )
    gates = run.step("quality_gates")
    if gates.status == "success":
        warned = len(gates.output.get("warnings", []))
        console.print(
            f"  quality gates: {gates.output.get('checks')} checks passed" + (f", {warned} warnings" if warned else "")
        )
    else:
        console.print(f"  quality gates: [red]{gates.status}[/] {gates.error}", highlight=False)
    emb = run.step("embedding_refresh")
    if emb.status == "success":
        out = emb.output
        console.print(
            f"  embedding refresh: {out.get('outcome')} ({out.get('added')} added, {out.get('updated')} "
            f"updated, {out.get('unchanged')} unchanged, {out.get('chunks_written')} chunks embedded)"
        )
    else:
        console.print(f"  embedding refresh: [red]{emb.status}[/] {emb.error}", highlight=False)
    drift = run.step("serving_drift")
    console.print(f"  serving drift: {drift.status}" + (f" ({drift.error})" if drift.error else ""))
    report = run.step("summary_report").output.get("report", "")
    console.print(f"  daily-validation run {run.id[:12]}: [bold]{run.status}[/]; report {report}")

    service = FeatureStoreService(ws, ctx.settings.features)
    applied = service.apply(actor="tour")
    materialized = service.materialize(actor="tour")
    frame = service.training_set(limit=2000)
    console.print(
        f"  feature store: {len(applied.feature_views)} feature views applied, online store "
        f"{materialized.online_store}; training set {len(frame):,} rows x {len(frame.columns)} columns "
        f"(point-in-time, fraud rate {frame['is_fraud'].mean():.1%})"
    )
    keys = frame.nlargest(2, "event_timestamp")[["claim_id", "customer_id"]]
    rows = [{"claim_id": int(c), "customer_id": int(u)} for c, u in keys.itertuples(index=False)]
    values = get_online_features(ws, rows, list(_ONLINE))
    for v in values:
        console.print(
            f"  online lookup claim {v['claim_id']}: amount {v['amount']:,.2f}, "
            f"amount/limit {v['amount_to_limit']:.3f}, channel {v['channel']}, customer claims to date "
            f"{v['claims_to_date']}, tenure {v['tenure_days']} days",
            highlight=False,
        )
    ctx.facts["data_platform"] = {
        "daily_validation_run": run.id,
        "status": run.status,
        "report": report,
        "training_rows": len(frame),
        "online": values,
    }
