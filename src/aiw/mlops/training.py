"""The sample model: claim fraud, trained over the warehouse and logged with its evaluation.

The features come from the ``claim_features`` dbt mart when it exists, otherwise from
:data:`CLAIM_FEATURES_SQL` (one DuckDB query over ``claims``, ``policies`` and ``customers``), which
the mart mirrors column for column. ``gender`` is carried along as the sensitive attribute for
per-group metrics only; it is never a model input.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiw.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

    from aiw.mlops.tracking import DataFingerprint, LoggedModel
    from aiw.workspace import Workspace

__all__ = [
    "CATEGORICAL_FEATURES",
    "CLAIM_FEATURES_SQL",
    "FRAUD_TRUSTED_TYPES",
    "LABEL",
    "NUMERIC_FEATURES",
    "SENSITIVE_ATTRIBUTE",
    "TrainResult",
    "build_fraud_pipeline",
    "evaluate_classifier",
    "load_claim_features",
    "train_claims_fraud",
]

CLAIM_FEATURES_SQL = """
SELECT
    c.claim_id,
    CAST(c.incident_date AS DATE)                                              AS incident_date,
    c.line_of_business,
    c.claim_type,
    c.region,
    c.channel,
    cu.segment,
    CAST(c.amount AS DOUBLE)                                                   AS amount,
    CAST(c.days_to_report AS DOUBLE)                                           AS days_to_report,
    CAST(c.prior_claims AS DOUBLE)                                             AS prior_claims,
    CAST(p.annual_premium AS DOUBLE)                                           AS annual_premium,
    CAST(p.deductible AS DOUBLE)                                               AS deductible,
    CAST(p.coverage_limit AS DOUBLE)                                           AS coverage_limit,
    CAST(c.amount / NULLIF(p.annual_premium, 0) AS DOUBLE)                     AS amount_to_premium,
    CAST(c.amount / NULLIF(p.coverage_limit, 0) AS DOUBLE)                     AS amount_to_coverage,
    CAST(date_diff('day', p.start_date, c.incident_date) AS DOUBLE)            AS policy_age_days,
    CAST(cu.credit_score AS DOUBLE)                                            AS credit_score,
    CAST(floor(date_diff('day', cu.birth_date, c.incident_date) / 365.25) AS DOUBLE) AS customer_age,
    CAST(date_diff('day', cu.signup_date, c.incident_date) AS DOUBLE)          AS customer_tenure_days,
    cu.gender,
    CAST(c.is_fraud AS INTEGER)                                                AS is_fraud
FROM claims AS c
JOIN policies AS p ON p.policy_id = c.policy_id
JOIN customers AS cu ON cu.customer_id = c.customer_id
ORDER BY c.claim_id
"""
"""The claim features, one row per claim; the ``claim_features`` mart mirrors it."""

CATEGORICAL_FEATURES = ("line_of_business", "claim_type", "region", "channel", "segment")
NUMERIC_FEATURES = (
    "amount",
    "days_to_report",
    "prior_claims",
    "annual_premium",
    "deductible",
    "coverage_limit",
    "amount_to_premium",
    "amount_to_coverage",
    "policy_age_days",
    "credit_score",
    "customer_age",
    "customer_tenure_days",
)
LABEL = "is_fraud"
SENSITIVE_ATTRIBUTE = "gender"

FRAUD_TRUSTED_TYPES = ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",)
"""The one type of the fraud pipeline outside skops' defaults: the fitted trees of the booster."""

_INTENDED_USE = (
    "Ranks incoming insurance claims by their likelihood of fraud so that investigators review the "
    "riskiest first. A decision-support score: a person decides; the score alone never denies a claim."
)
_LIMITATIONS = [
    "Trained on the synthetic sample insurer; retrain and re-evaluate on real claims before any use.",
    "Fraud labels are confirmed cases only: undetected fraud counts as legitimate, so recall is overstated.",
    "Per-group metrics cover the recorded gender attribute only; other attributes are not evaluated.",
    "Scores drift as claim mix, channels and amounts change: monitor inputs and recalibrate.",
]


@dataclass
class TrainResult:
    """What :func:`train_claims_fraud` produced.

    Attributes:
        logged: The logged model (run, model URI).
        metrics: Overall test metrics.
        groups: Per-group metrics on the sensitive attribute, and the gaps between groups.
        fingerprint: The training data's fingerprint.
        seconds: Wall time.
    """

    logged: LoggedModel
    metrics: dict[str, float]
    groups: dict[str, Any] = field(default_factory=dict)
    fingerprint: DataFingerprint | None = None
    seconds: float = 0.0


def _feature_table(conn: duckdb.DuckDBPyConnection) -> str | None:
    """The qualified name of the ``claim_features`` mart if it has every column we need."""
    rows = conn.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE lower(table_name) = 'claim_features' ORDER BY table_schema = 'main' DESC, table_schema"
    ).fetchall()
    needed = {*CATEGORICAL_FEATURES, *NUMERIC_FEATURES, LABEL, SENSITIVE_ATTRIBUTE, "claim_id"}
    for schema, table in rows:
        cols = {
            r[0].lower()
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
                [schema, table],
            ).fetchall()
        }
        if needed <= cols:
            return f'"{schema}"."{table}"'
    return None


def load_claim_features(workspace: Workspace, *, limit: int | None = None) -> tuple[pd.DataFrame, str, str]:
    """The claim features as a DataFrame, from the mart when present, else from the base tables.

    Returns:
        (frame, table, source): ``table`` names where the rows came from and ``source`` is
        ``mart`` or ``query``.

    Raises:
        NotFoundError: the warehouse has no claims yet.
    """
    if limit is not None and limit < 1:
        raise InvalidInputError(f"The 'limit' parameter must be a positive integer. Got {limit}.")
    conn = workspace.connect_warehouse(read_only=False, ai_functions=False)
    try:
        mart = _feature_table(conn)
        suffix = f" LIMIT {int(limit)}" if limit else ""
        if mart is not None:
            cols = ", ".join(
                ["claim_id", "incident_date", *CATEGORICAL_FEATURES, *NUMERIC_FEATURES, SENSITIVE_ATTRIBUTE, LABEL]
            )
            frame = conn.execute(f"SELECT {cols} FROM {mart} ORDER BY claim_id{suffix}").df()
            return _coerce(frame), mart, "mart"
        tables = {
            r[0].lower()
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()
        }
        missing = {"claims", "policies", "customers"} - tables
        if missing:
            raise NotFoundError(
                f"The warehouse has no {', '.join(sorted(missing))} table", hint="run 'aiw data generate' first"
            )
        frame = conn.execute(CLAIM_FEATURES_SQL + suffix).df()
        return _coerce(frame), "claims+policies+customers", "query"
    finally:
        conn.close()


def _coerce(frame: pd.DataFrame) -> pd.DataFrame:
    """One dtype per column whatever the source: doubles, strings and an integer label."""
    for col in NUMERIC_FEATURES:
        frame[col] = frame[col].astype("float64")
    for col in (*CATEGORICAL_FEATURES, SENSITIVE_ATTRIBUTE):
        frame[col] = frame[col].astype(object).where(frame[col].notna(), "unknown").astype(str)
    frame[LABEL] = frame[LABEL].fillna(0).astype("int64")
    return frame


def build_fraud_pipeline(
    *,
    max_iter: int = 200,
    learning_rate: float = 0.04,
    max_depth: int = 3,
    min_samples_leaf: int = 40,
    l2_regularization: float = 1.0,
    seed: int = 0,
) -> Any:
    """The fraud pipeline: one-hot categoricals and raw numerics into a gradient-boosted classifier.

    Shallow, regularised trees: frauds are a few percent of claims, so a few thousand claims hold
    only about a hundred positives and deeper trees overfit them.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    pre = ColumnTransformer(
        [
            ("num", "passthrough", list(NUMERIC_FEATURES)),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), list(CATEGORICAL_FEATURES)),
        ],
        remainder="drop",
    )
    clf = HistGradientBoostingClassifier(
        max_iter=max_iter,
        learning_rate=learning_rate,
        max_depth=max_depth,
        min_samples_leaf=min_samples_leaf,
        l2_regularization=l2_regularization,
        early_stopping=False,
        random_state=seed,
    )
    return Pipeline([("features", pre), ("classifier", clf)])


def _binary_metrics(y: Any, pred: Any, score: Any) -> dict[str, float]:
    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

    y = np.asarray(y)
    pred = np.asarray(pred)
    out = {
        "accuracy": float(accuracy_score(y, pred)),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "selection_rate": float(pred.mean()) if len(pred) else 0.0,
        "base_rate": float(y.mean()) if len(y) else 0.0,
        "rows": float(len(y)),
    }
    negatives = y == 0
    out["fpr"] = float(pred[negatives].mean()) if negatives.any() else 0.0
    out["auc"] = float(roc_auc_score(y, score)) if len(np.unique(y)) == 2 else float("nan")
    return out


def evaluate_classifier(
    model: Any, X: pd.DataFrame, y: Any, groups: Any | None = None, *, attribute: str = SENSITIVE_ATTRIBUTE
) -> tuple[dict[str, float], dict[str, Any]]:
    """Overall metrics and per-group metrics (with the largest gaps) of a binary classifier.

    Args:
        model: A fitted classifier with ``predict_proba``.
        X: Features.
        y: True labels (0/1).
        groups: The sensitive attribute per row (same length as ``X``), or None.
        attribute: The attribute's name, for the report.

    Returns:
        (metrics, fairness): ``fairness`` holds ``attribute``, ``groups`` {value: metrics} and
        ``gaps`` {metric: max - min across groups} for auc, accuracy, f1, selection_rate (demographic
        parity difference), recall (equal opportunity difference) and fpr.
    """
    import numpy as np

    score = np.asarray(model.predict_proba(X))[:, 1]
    pred = np.asarray(model.predict(X))
    y_arr = np.asarray(y)
    metrics = _binary_metrics(y_arr, pred, score)
    fairness: dict[str, Any] = {"attribute": attribute, "groups": {}, "gaps": {}}
    if groups is not None:
        g = np.asarray(groups).astype(str)
        for value in sorted(set(g.tolist())):
            mask = g == value
            fairness["groups"][value] = _binary_metrics(y_arr[mask], pred[mask], score[mask])
        if len(fairness["groups"]) >= 2:
            for metric in ("auc", "accuracy", "f1", "selection_rate", "recall", "fpr"):
                values = [m[metric] for m in fairness["groups"].values() if not np.isnan(m[metric])]
                if values:
                    fairness["gaps"][metric] = float(max(values) - min(values))
    return metrics, fairness


def train_claims_fraud(
    workspace: Workspace,
    *,
    name: str = "claims-fraud",
    seed: int = 0,
    test_size: float = 0.25,
    max_iter: int = 200,
    limit: int | None = None,
) -> TrainResult:
    """Train the claim-fraud model over the warehouse and log it, with its evaluation, to MLflow.

    Args:
        workspace: The workspace whose warehouse holds the sample data.
        name: The model's name.
        seed: Random seed of the split and the booster.
        test_size: Share of claims held out for evaluation, in (0, 0.9].
        max_iter: Boosting iterations.
        limit: Train on the first ``limit`` claims only (quick runs).

    Raises:
        NotFoundError: no claims in the warehouse.
        InvalidInputError: a bad parameter, or too few claims or frauds to train.
    """
    import numpy as np
    from sklearn.model_selection import train_test_split
    from threadpoolctl import threadpool_limits

    from aiw.mlops.tracking import Tracker, data_fingerprint

    if not 0 < test_size <= 0.9:
        raise InvalidInputError(f"The 'test_size' parameter must be a float in (0, 0.9]. Got {test_size}.")
    if not 1 <= max_iter <= 5000:
        raise InvalidInputError(f"The 'max_iter' parameter must be an integer in [1, 5000]. Got {max_iter}.")
    started = time.perf_counter()
    frame, table, source = load_claim_features(workspace, limit=limit)
    positives = int(frame[LABEL].sum())
    if len(frame) < 100 or positives < 10 or positives > len(frame) - 10:
        raise InvalidInputError(
            f"Too few claims to train on: {len(frame)} rows with {positives} frauds",
            hint="generate more sample data: 'aiw data generate --rows 3000'",
        )
    fingerprint = data_fingerprint(frame, table, source=source)
    features = [*NUMERIC_FEATURES, *CATEGORICAL_FEATURES]
    train, test = train_test_split(frame, test_size=test_size, random_state=seed, stratify=frame[LABEL])
    pipeline = build_fraud_pipeline(max_iter=max_iter, seed=seed)
    # OpenMP threads on a small, shared machine cost far more in contention than they save
    # (a 3,000-row fit: 0.7 s on one thread, 7 s on two busy cores); big data gets every core.
    with threadpool_limits(limits=1 if len(train) < 200_000 else None, user_api="openmp"):
        pipeline.fit(train[features], train[LABEL].to_numpy())
        metrics, fairness = evaluate_classifier(
            pipeline, test[features], test[LABEL].to_numpy(), test[SENSITIVE_ATTRIBUTE].to_numpy()
        )
    logged_metrics = {k: v for k, v in metrics.items() if not np.isnan(v)}
    for value, group in fairness["groups"].items():
        for metric in ("auc", "accuracy", "f1", "selection_rate", "recall", "fpr"):
            if not np.isnan(group[metric]):
                logged_metrics[f"{SENSITIVE_ATTRIBUTE}_{value}_{metric}"] = group[metric]
    for metric, gap in fairness["gaps"].items():
        logged_metrics[f"gap_{SENSITIVE_ATTRIBUTE}_{metric}"] = gap
    booster = pipeline.named_steps["classifier"].get_params()
    params = {
        "estimator": "HistGradientBoostingClassifier",
        "seed": seed,
        "test_size": test_size,
        "train_rows": len(train),
        "test_rows": len(test),
        "features": ",".join(features),
        "label": LABEL,
        **{k: booster[k] for k in ("max_iter", "learning_rate", "max_depth", "min_samples_leaf", "l2_regularization")},
    }
    evaluation = {
        "task": "binary classification",
        "label": LABEL,
        "features": features,
        "sensitive_attribute": SENSITIVE_ATTRIBUTE,
        "fairness": fairness,
        "intended_use": _INTENDED_USE,
        "limitations": _LIMITATIONS,
        "split": {"train_rows": len(train), "test_rows": len(test), "seed": seed, "stratified_on": LABEL},
    }
    logged = Tracker(workspace).log_model(
        pipeline,
        name,
        test[features].reset_index(drop=True),
        y_sample=test[LABEL].tolist(),
        params=params,
        metrics=logged_metrics,
        evaluation=evaluation,
        fingerprint=fingerprint,
        trusted_types=list(FRAUD_TRUSTED_TYPES),
        run_name=f"train-{name}",
    )
    return TrainResult(
        logged=logged, metrics=metrics, groups=fairness, fingerprint=fingerprint, seconds=time.perf_counter() - started
    )
