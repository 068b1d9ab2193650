"""The tour's "Rapid insights" step on the shared sample workspace."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

pytestmark = pytest.mark.integration


def test_tour_step_reports_sentiment_forecast_and_anomalies(sample_ws: Any) -> None:
    from aiw.sql.tour import tour_step
    from aiw.tour import STEPS, TourContext

    assert STEPS.index(("Rapid insights", "aiw.sql.tour:tour_step")) > STEPS.index(
        ("Sample data", "aiw.data.sample:tour_step")
    )
    out = io.StringIO()
    ctx = TourContext(sample_ws, sample_ws.settings, Console(file=out, width=120), rows=50_000, seed=11)
    tour_step(ctx)
    facts = ctx.facts["insights"]
    text = out.getvalue()
    assert len(facts["sentiment_by_type"]) > 10 and "ai_sentiment over 50,000 adjuster notes" in text
    assert facts["forecast_30d"] > 0 and "next 30 days" in text
    assert facts["anomalies_found"] == facts["anomalies_injected"] > 0
    assert facts["anomalies_flagged"] < 60
