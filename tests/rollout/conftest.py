"""Session fixtures of the rollout tests: ONE workspace with sample claims, ONE trained fraud model
and ONE faulty wrapper of it (fails on 10% of rows), both logged to MLflow.

Each test registers them under a model name of its own (a fraction of a second; see
``rollout_helpers.setup_model``), so tests never share rollouts or aliases.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rollout_helpers import Models, People, make_workspace, setup_model


@pytest.fixture(scope="session")
def people() -> People:
    """Principals of each role."""
    from aiw.governance.identity import Principal

    return People(
        Principal("dana", "data_scientist"),
        Principal("alex", "approver"),
        Principal("root", "admin"),
        Principal("vic", "viewer"),
    )


@pytest.fixture(scope="session")
def rollout_ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The session workspace with 2,000 sample claims; rollout settings fit for tests."""
    from aiw.data.sample import generate

    ws = make_workspace(
        tmp_path_factory.mktemp("rollout") / "ws",
        rollout={"tick_s": 0.05, "poll_s": 0.2, "bake_s": 0.5, "min_requests": 30},
    )
    generate(ws, rows=2000, seed=7)
    yield ws
    ws.db.dispose()


@pytest.fixture(scope="session")
def models(rollout_ws: Any) -> Models:
    """A small fraud model and its faulty twin, logged once for the session, and traffic rows."""
    from mlflow.utils.file_utils import local_file_uri_to_path

    from aiw.mlops.rollout.faults import log_faulty_model
    from aiw.mlops.serving.loader import read_sklearn_model
    from aiw.mlops.training import (
        CATEGORICAL_FEATURES,
        LABEL,
        NUMERIC_FEATURES,
        load_claim_features,
        train_claims_fraud,
    )

    good = train_claims_fraud(rollout_ws, name="fraud", seed=0, max_iter=40)
    frame, _, _ = load_claim_features(rollout_ws)
    features = [*NUMERIC_FEATURES, *CATEGORICAL_FEATURES]
    # the fitted pipeline, read back from the logged files exactly as serving loads it
    folder = Path(local_file_uri_to_path(good.logged.artifact_uri))
    pipeline = read_sklearn_model(folder, good.logged.trusted_types)
    faulty = log_faulty_model(
        rollout_ws, pipeline, frame[features].head(600), frame[LABEL].head(600), name="fraud-faulty", failure_rate=0.1
    )
    # live traffic arrives in no particular order: shuffle the claims (they are sorted by id)
    shuffled = frame[features].sample(frac=1.0, random_state=3)
    return Models(good.logged, faulty, shuffled.to_dict("records"))


@pytest.fixture
def model_name(rollout_ws: Any, models: Models, people: People) -> str:
    """A fresh model: v1 @champion, v2 healthy and approved, v3 faulty and approved."""
    return setup_model(rollout_ws, models, people)
