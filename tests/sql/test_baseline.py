"""Quick baselines: feature selection, cross-validated ranking, and the runs logged to MLflow."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from aiw.errors import InvalidInputError
from aiw.sql.baseline import baseline, select_features

pytestmark = pytest.mark.unit


def test_feature_selection_drops_ids_text_and_timestamps() -> None:
    frame = pd.DataFrame(
        {
            "id": range(60),
            "customer_id": range(60),
            "x": np.arange(60.0),
            "const": 1,
            "when": pd.date_range("2024-01-01", periods=60),
            "cat": ["a", "b"] * 30,
            "text": [f"a long free text value {i} that goes on and on and on" for i in range(60)],
            "y": [0, 1] * 30,
        }
    )
    features, numeric, categorical, dropped = select_features(frame, "y")
    assert numeric == ["x", "when_month", "when_dow"] and categorical == ["cat"]
    assert {"id", "customer_id", "const", "when", "text"} == set(dropped)
    assert "y" not in features


def test_classification_leaderboard_logged_to_mlflow(model_ws: Any) -> None:
    import mlflow

    board = baseline(model_ws, "accounts", "flag", folds=3)
    assert board.task == "classification" and board.metric == "auc"
    aucs = [r.metrics["auc"] for r in board.results]
    assert aucs == sorted(aucs, reverse=True)
    assert board.best.model != "dummy" and board.best.metrics["auc"] > 0.8
    assert board.results[-1].model == "dummy" and board.results[-1].metrics["auc"] == pytest.approx(0.5)
    assert {"row_id", "note", "opened"} <= set(board.dropped)
    client = mlflow.MlflowClient(tracking_uri=model_ws.tracking_uri)
    exp = client.get_experiment_by_name("baseline-accounts")
    assert exp is not None
    runs = client.search_runs([exp.experiment_id])
    assert {r.info.run_id for r in runs} == {r.run_id for r in board.results}
    logged = {r.data.params["model"]: r.data.metrics for r in runs}
    for result in board.results:
        assert logged[result.model]["auc"] == pytest.approx(result.metrics["auc"])
        assert {"accuracy", "f1", "auc_std"} <= set(logged[result.model])
    frame = board.to_frame()
    assert list(frame["model"]) == [r.model for r in board.results]
    record = model_ws.audit.records(action="insights.baseline", limit=1)[0]
    assert record.details["best"] == board.best.model


def test_regression_and_bad_input(model_ws: Any) -> None:
    board = baseline(model_ws, "accounts", "cost", folds=3, models=["dummy", "ridge"], exclude=["flag"])
    assert board.task == "regression" and board.metric == "r2"
    assert [r.model for r in board.results] == ["ridge", "dummy"]
    assert board.best.metrics["r2"] > 0.9 and board.best.metrics["mae"] < 10
    with pytest.raises(InvalidInputError, match="not a column"):
        baseline(model_ws, "accounts", "nope")
    with pytest.raises(InvalidInputError, match="Unknown classification models"):
        baseline(model_ws, "accounts", "flag", models=["xgboost"])
    with pytest.raises(InvalidInputError, match="table"):
        baseline(model_ws, "accounts; DROP TABLE accounts", "flag")
    with pytest.raises(InvalidInputError, match="folds"):
        baseline(model_ws, "accounts", "flag", folds=1)
