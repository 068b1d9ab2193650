"""Tour step: a second version of the fraud model is canaried under live synthetic traffic and
promoted step by step; a faulty third version (fails on 10% of claims) is rolled back automatically.

It builds on the MLOps step (``ctx.facts["model"]``: the fraud model with its ``@champion``) and
trains that model itself when the step did not run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from aiw.tour import TourContext

__all__ = ["tour_step"]

MODEL = "claims-fraud"
_STEPS = [10, 50, 100]
_BAKE = "1s"
_MIN_REQUESTS = 40


def _principals(ctx: TourContext) -> tuple[Any, Any, Any]:
    keys: dict[str, str] = ctx.facts["keys"]
    authenticate = ctx.workspace.keys.authenticate
    return authenticate(keys["data_scientist"]), authenticate(keys["approver"]), authenticate(keys["admin"])


def _approve(ctx: TourContext, name: str, version: int) -> None:
    from aiw.mlops.registry import PromotionWorkflow

    scientist, approver, _ = _principals(ctx)
    workflow = PromotionWorkflow(ctx.workspace)
    request = workflow.request(name, version, "production", scientist, reason="tour: candidate for a canary")
    workflow.approve(request.id, approver, comment="offline metrics fine; the canary will judge live traffic")


def _champion(ctx: TourContext) -> str:
    """The model of the MLOps step, or one trained and promoted here if that step did not run."""
    from aiw.mlops.registry import ModelRegistry, PromotionWorkflow
    from aiw.mlops.training import train_claims_fraud

    fact = ctx.facts.get("model")
    registry = ModelRegistry(ctx.workspace)
    if fact and registry.aliases(fact["name"]).get("champion"):
        return str(fact["name"])
    scientist, _, admin = _principals(ctx)
    result = train_claims_fraud(ctx.workspace, name=MODEL, seed=ctx.seed)
    version = registry.register(result.logged, MODEL, scientist, description="trained by the tour").version
    _approve(ctx, MODEL, version)
    PromotionWorkflow(ctx.workspace).promote(MODEL, version, "production", admin)
    return MODEL


def _watch(base: str, name: str, key: str, load: Any, timeout: float = 60.0) -> dict[str, Any]:
    import httpx

    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {key}"}) as client:
        while True:
            status: dict[str, Any] = client.get(f"{base}/v1/deployments/{name}").raise_for_status().json()
            if status["rollout"]["status"] != "running":
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"the rollout of {name} did not finish within {timeout:g} s")
            time.sleep(0.2)


@contextmanager
def _quiet(*loggers: str) -> Iterator[None]:
    """Silence ``loggers`` below CRITICAL+1 for the duration (restored afterwards)."""
    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in loggers]
    for logger, _ in saved:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in saved:
            logger.setLevel(level)


def _show(console: Any, d: dict[str, Any]) -> None:
    """One decision: what, where, and the candidate's figures it rested on."""
    if d["action"] in ("start", "hold"):
        return
    summary = d["reason"].split(": ", 1)[0]
    cand, champ = d["metrics"].get("candidate") or {}, d["metrics"].get("champion") or {}
    p95 = cand.get("p95_ms")
    figures = f"candidate {cand.get('requests', 0)} requests, {cand.get('errors', 0)} errors" + (
        f", p95 {p95:.1f} ms vs {champ.get('p95_ms') or 0:.1f} ms" if p95 is not None else ""
    )
    console.print(f"  \\[{d['action']}] {summary} ({figures})")


def tour_step(ctx: TourContext) -> None:
    """Canary a retrained version to @champion, then watch a faulty one get rolled back."""
    import httpx

    from aiw.mlops.monitoring.alerts import AlertManager
    from aiw.mlops.registry import ModelRegistry
    from aiw.mlops.rollout.faults import log_faulty_model
    from aiw.mlops.rollout.loadgen import LoadGenerator
    from aiw.mlops.serving.loader import ModelResolver
    from aiw.mlops.tour import ApiServerThread
    from aiw.mlops.training import (
        CATEGORICAL_FEATURES,
        LABEL,
        NUMERIC_FEATURES,
        load_claim_features,
        train_claims_fraud,
    )

    ws, console = ctx.workspace, ctx.console
    keys: dict[str, str] = ctx.facts["keys"]
    scientist, _, _ = _principals(ctx)
    name = _champion(ctx)
    registry = ModelRegistry(ws)
    champion = registry.aliases(name)["champion"]

    retrained = train_claims_fraud(ws, name=name, seed=ctx.seed + 1)
    v2 = registry.register(retrained.logged, name, scientist, description="retrained (seed + 1) by the tour").version
    _approve(ctx, name, v2)
    frame, _, _ = load_claim_features(ws)
    features = [*NUMERIC_FEATURES, *CATEGORICAL_FEATURES]
    with ModelResolver(ws) as resolver:
        pipeline = resolver.load(name, v2).reference.model
    faulty = log_faulty_model(
        ws, pipeline, frame[features].head(600), frame[LABEL].head(600), name=name, failure_rate=0.1
    )
    v3 = registry.register(
        faulty, name, scientist, description="v2 with an injected bug: fails on 10% of claims"
    ).version
    console.print(
        f"  registered v{v2} (retrained, auc {retrained.metrics['auc']:.3f}, approved for production) "
        f"and v{v3} (v{v2} with an injected bug failing 10% of claims)"
    )

    shuffled = frame[features].sample(frac=1.0, random_state=ctx.seed)  # live traffic comes in no order
    rows = cast("list[dict[str, Any]]", shuffled.to_dict("records"))
    ds_key = keys["data_scientist"]
    canary = {"steps": _STEPS, "bake": _BAKE, "min_requests": _MIN_REQUESTS}
    with (
        ApiServerThread(ctx.settings) as base,
        httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {ds_key}"}) as client,
    ):
        url = f"{base}/v1/models/{name}/predict"
        started = time.perf_counter()
        client.post(f"/v1/deployments/{name}/canary", json={"version": v2, **canary}).raise_for_status()
        with LoadGenerator(url, ds_key, rows, workers=6) as load:
            good = _watch(base, name, ds_key, load)
        seconds = time.perf_counter() - started
        for d in good["decisions"]:
            _show(console, d)
        served = load.mark()
        console.print(
            f"  canary of v{v2}: {good['rollout']['status']} in {seconds:.1f} s over "
            f"{sum(served.values()):,} live requests ({served.get(f'v{champion}', 0):,} by v{champion}, "
            f"{served.get(f'v{v2}', 0):,} by v{v2}, {load.failures} failed); @champion -> "
            f"v{good['champion_version']}"
        )

        _approve(ctx, name, v3)  # approved after v2's promotion, which superseded open approvals
        started = time.perf_counter()
        # The faulty version must be judged on its errors: on a busy machine a latency or shift
        # verdict could otherwise win the race, and the tour would show a different reason.
        errors_only = {"max_p95_ratio": 1000.0, "latency_floor_ms": 60_000.0, "max_prediction_psi": 1000.0}
        client.post(f"/v1/deployments/{name}/canary", json={"version": v3, **canary, **errors_only}).raise_for_status()
        # The injected failures are the point here, and they are counted below: keep uvicorn's
        # traceback of each one out of the tour's output.
        with (
            _quiet("uvicorn.error", "aiw.alerts", "aiw.mlops.serving.loader"),
            LoadGenerator(url, ds_key, rows, workers=6) as load,
        ):
            bad = _watch(base, name, ds_key, load)
            time.sleep(0.3)  # a moment of traffic after the rollback: all on the champion again
        seconds = time.perf_counter() - started
    served = load.mark()
    total = sum(served.values())
    console.print(f"  canary of v{v3}: {bad['rollout']['status']} after {seconds:.1f} s: {bad['rollout']['reason']}")
    console.print(
        f"  {load.failures} of {total:,} live requests failed ({load.failures / max(total, 1):.2%}, "
        f"at most the canary's {_STEPS[0]}% share); @champion stays v{bad['champion_version']}"
    )
    alerts = AlertManager(ws.db, ws.audit, ws.settings.alerts).list_alerts(subject=f"model:{name}", limit=1)
    if alerts:
        console.print(f"  alert #{alerts[0].id} \\[{alerts[0].severity}] {alerts[0].rule}")
    ctx.facts["rollout"] = {
        "model": name,
        "promoted": v2,
        "rolled_back": v3,
        "champion": bad["champion_version"],
        "failed_requests": load.failures,
        "requests": total,
    }
