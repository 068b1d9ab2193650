"""One valid input row of the sample claims-fraud model, for tests and benchmarks that score it."""

from __future__ import annotations

from typing import Any

__all__ = ["FRAUD_ROW"]

FRAUD_ROW: dict[str, Any] = {
    "amount": 1200.5,
    "days_to_report": 3,
    "prior_claims": 0,
    "annual_premium": 800.0,
    "deductible": 500.0,
    "coverage_limit": 50000.0,
    "amount_to_premium": 1.5,
    "amount_to_coverage": 0.024,
    "policy_age_days": 400,
    "credit_score": 700,
    "customer_age": 40,
    "customer_tenure_days": 1000,
    "line_of_business": "auto",
    "claim_type": "collision",
    "region": "north",
    "channel": "web",
    "segment": "retail",
}
"""The columns of :data:`aiw.mlops.training` ``NUMERIC_FEATURES`` and ``CATEGORICAL_FEATURES``."""
