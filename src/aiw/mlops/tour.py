"""The MLOps step of the tour: train, register, request, approve, promote, predict, batch-score, card."""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiw.tour import TourContext

__all__ = ["ApiServerThread", "tour_step"]

MODEL = "claims-fraud"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ApiServerThread:
    """Run the REST API with uvicorn on a free local port in a background thread.

    Usage: ``with ApiServerThread(settings) as base_url: ...``.
    """

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.server: Any = None
        self.thread: threading.Thread | None = None

    def __enter__(self) -> str:
        import uvicorn

        from aiw.api.app import create_app

        port = _free_port()
        config = uvicorn.Config(
            create_app(self.settings), host="127.0.0.1", port=port, log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="aiw-tour-api", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the API server did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: Any) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=30)


def tour_step(ctx: TourContext) -> None:
    """Train the fraud model, take it through governance to @champion, and use it three ways."""
    import httpx

    from aiw.errors import PolicyViolation
    from aiw.mlops.registry import ModelRegistry, PromotionWorkflow, write_model_card
    from aiw.mlops.serving.batch import score_table
    from aiw.mlops.training import CLAIM_FEATURES_SQL, train_claims_fraud

    ws, console = ctx.workspace, ctx.console
    keys: dict[str, str] = ctx.facts["keys"]
    scientist, approver, admin = (ws.keys.authenticate(keys[r]) for r in ("data_scientist", "approver", "admin"))

    result = train_claims_fraud(ws, name=MODEL, seed=ctx.seed)
    m = result.metrics
    console.print(
        f"  trained {MODEL} on {result.fingerprint.rows if result.fingerprint else '?'} claims in "
        f"{result.seconds:.1f} s: auc {m['auc']:.3f}, f1 {m['f1']:.3f}; gender selection-rate gap "
        f"{result.groups['gaps'].get('selection_rate', float('nan')):.3f}"
    )
    registry, workflow = ModelRegistry(ws), PromotionWorkflow(ws)
    mv = registry.register(result.logged, MODEL, scientist, description="trained by the tour")
    console.print(
        f"  {scientist.name} registered version {mv.version}: {len(mv.manifest)} files checksummed, "
        f"data sha256 {mv.data_fingerprint['sha256'][:12]}"
    )
    request = workflow.request(MODEL, mv.version, "production", scientist, reason="tour")
    try:
        workflow.promote(MODEL, mv.version, "production", admin)
    except PolicyViolation as exc:  # the point of the demo: no alias moves without an approval
        console.print(f"  promotion before approval refused: {exc.message}")
    workflow.approve(request.id, approver, comment="metrics and fairness gaps reviewed")
    workflow.promote(MODEL, mv.version, "production", admin)
    console.print(
        f"  {approver.name} approved request #{request.id}; {admin.name} promoted it: {MODEL}@champion -> v{mv.version}"
    )

    row = {
        "amount": 8200.0,
        "days_to_report": 21,
        "prior_claims": 3,
        "annual_premium": 900.0,
        "deductible": 500.0,
        "coverage_limit": 10000.0,
        "amount_to_premium": 9.1,
        "amount_to_coverage": 0.82,
        "policy_age_days": 30,
        "credit_score": 610,
        "customer_age": 27,
        "customer_tenure_days": 40,
        "line_of_business": "travel",
        "claim_type": "theft",
        "region": "south",
        "channel": "web",
        "segment": "retail",
    }
    with ApiServerThread(ctx.settings) as base:
        url = f"{base}/v1/models/{MODEL}/predict"
        headers = {"Authorization": f"Bearer {keys['data_scientist']}"}
        with httpx.Client(timeout=120) as client:
            first = client.post(url, json={"dataframe_records": [row]}, headers=headers)
            first.raise_for_status()
            t0 = time.perf_counter()
            answer = client.post(url, json={"dataframe_records": [row]}, headers=headers).json()
            ms = (time.perf_counter() - t0) * 1000
    console.print(
        f"  POST {url.replace(base, '')}: fraud score {answer['probabilities'][0][1]:.3f} from "
        f"v{answer['version']} ({answer['runtime']}) in {ms:.1f} ms"
    )

    conn = ws.connect_warehouse(ai_functions=False)
    try:
        conn.execute(f"CREATE OR REPLACE TABLE claims_to_score AS {CLAIM_FEATURES_SQL}")
    finally:
        conn.close()
    scored = score_table(ws, MODEL, "claims_to_score", "claims_fraud_scores", scientist)
    console.print(
        f"  batch-scored {scored.rows:,} claims -> claims_fraud_scores in {scored.seconds:.1f} s "
        f"({scored.rows_per_s:,.0f} rows/s)"
    )
    card = write_model_card(ws, MODEL, mv.version, admin)
    console.print(f"  model card: {card.markdown_path}")
    ctx.facts["model"] = {"name": MODEL, "version": mv.version, "card": str(card.markdown_path)}
