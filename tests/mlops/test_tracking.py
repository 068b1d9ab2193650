"""Training and tracking: what a run records, the data fingerprint, trusted types, user models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aiw.errors import InvalidInputError

pytestmark = pytest.mark.unit


def test_training_logs_params_metrics_fingerprint_and_code_version(mlops_ws: Any, trained: Any) -> None:
    from aiw.mlops.tracking import Tracker

    run = Tracker(mlops_ws).client().get_run(trained.logged.run_id)
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert params["estimator"] == "HistGradientBoostingClassifier" and int(params["train_rows"]) == 2250
    for name in ("auc", "accuracy", "f1", "gender_F_auc", "gender_M_auc", "gap_gender_selection_rate"):
        assert name in metrics, name
    assert 0.55 < metrics["auc"] <= 1.0
    assert tags["aiw.data.rows"] == "3000" and len(tags["aiw.data.sha256"]) == 64
    assert tags["aiw.data.table"] == "claims+policies+customers" and tags["aiw.data.source"] == "query"
    assert tags["aiw.code.version"] == "0.1.0" and len(tags["aiw.code.git_commit"]) in (0, 40)
    assert trained.fingerprint.sha256 == tags["aiw.data.sha256"]
    # What the LoggedModel carries for the registry is what the run holds.
    assert trained.logged.lineage == {k: v for k, v in tags.items() if k.startswith("aiw.")}
    assert trained.logged.metrics == pytest.approx(metrics)


def test_metrics_are_linked_to_the_logged_model_and_its_location_is_mlflows(mlops_ws: Any, trained: Any) -> None:
    from aiw.mlops.tracking import Tracker

    client = Tracker(mlops_ws).client()
    logged = client.get_logged_model(trained.logged.model_id)
    assert trained.logged.artifact_uri == logged.artifact_location
    linked = {m.key: m.value for m in logged.metrics or []}
    assert set(linked) == set(trained.logged.metrics)
    assert linked["auc"] == pytest.approx(trained.logged.metrics["auc"])
    history = client.get_metric_history(trained.logged.run_id, "auc")
    assert len(history) == 1  # logged once, not copied again onto the model


def test_signature_from_distinct_values_equals_mlflows_on_every_row() -> None:
    import warnings

    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature

    from aiw.mlops.tracking import _distinct_rows, _infer_signature

    rng = np.random.default_rng(0)
    n = 400
    dates = pd.Series(pd.to_datetime("2024-01-01") + pd.to_timedelta(rng.integers(0, 100, n), unit="D"))
    frame = pd.DataFrame(
        {
            "f": rng.normal(size=n),
            "f_nan": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
            "f32": rng.normal(size=n).astype("float32"),
            "i": rng.integers(0, 9, n),
            "b": rng.random(n) < 0.5,
            "s": rng.choice(["a", "b", "c"], n).astype(object),
            "s_none": pd.Series(rng.choice(["a", "b", None], n), dtype=object),
            "s_nan": pd.Series([np.nan if i % 7 == 0 else "x" for i in range(n)], dtype=object),
            "cat": pd.Categorical(rng.choice(["u", "v"], n)),
            "cat_nan": pd.Categorical(np.where(rng.random(n) < 0.2, None, rng.choice(["u", "v"], n))),
            "Int": pd.array(np.where(rng.random(n) < 0.1, None, rng.integers(0, 5, n)), dtype="Int64"),
            "dt": dates,
            "dt_nat": dates.where(rng.random(n) > 0.1),
            "string": pd.array(np.where(rng.random(n) < 0.1, None, rng.choice(["p", "q"], n)), dtype="string"),
        }
    )
    mixed = pd.DataFrame({"m": pd.Series([1, 1.0, True, "x"] * 10, dtype=object)})  # equal values, four types
    lists = pd.DataFrame({"l": pd.Series([[1, 2], [3]] * 10, dtype=object)})  # unhashable: every row is used
    y = rng.integers(0, 2, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for sample in (frame, mixed, lists):
            assert _infer_signature(sample, y[: len(sample)]) == infer_signature(sample, y[: len(sample)])
    assert len(_distinct_rows(frame)) == 3  # the widest object column has three distinct values


def test_logged_model_has_signature_example_evaluation_and_exact_trusted_types(trained: Any) -> None:
    import yaml
    from mlflow.utils.file_utils import local_file_uri_to_path

    from aiw.mlops.training import CATEGORICAL_FEATURES, NUMERIC_FEATURES, SENSITIVE_ATTRIBUTE

    folder = Path(local_file_uri_to_path(trained.logged.artifact_uri))
    mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    inputs = json.loads(mlmodel["signature"]["inputs"])
    assert [c["name"] for c in inputs] == [*NUMERIC_FEATURES, *CATEGORICAL_FEATURES]
    assert SENSITIVE_ATTRIBUTE not in {c["name"] for c in inputs}
    assert mlmodel["flavors"]["sklearn"]["serialization_format"] == "skops"
    assert mlmodel["flavors"]["sklearn"]["skops_trusted_types"] == [
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"
    ]
    assert mlmodel["saved_input_example_info"]["artifact_path"] == "input_example.json"
    evaluation = json.loads((folder / "extra_files/evaluation.json").read_text())
    assert set(evaluation["fairness"]["groups"]) == {"F", "M"}
    assert "selection_rate" in evaluation["fairness"]["gaps"] and evaluation["intended_use"]
    verification = json.loads((folder / "extra_files/verification.json").read_text())
    assert len(verification["data"]) == 500 and len(verification["probabilities"]) == 500
    reqs = (folder / "requirements.txt").read_text()
    assert "scikit-learn==" in reqs and "skops==" in reqs


def test_fingerprint_changes_with_any_value_and_not_with_the_index() -> None:
    import pandas as pd

    from aiw.mlops.tracking import data_fingerprint

    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["x", "y", "z"]})
    base = data_fingerprint(df, "t")
    assert base.rows == 3 and base.columns == ("a", "b")
    assert data_fingerprint(df.set_index(pd.Index([7, 8, 9])), "t").sha256 == base.sha256
    edited = df.copy()
    edited.loc[1, "a"] = 2.0000001
    assert data_fingerprint(edited, "t").sha256 != base.sha256
    assert data_fingerprint(df.iloc[:2], "t").sha256 != base.sha256
    assert data_fingerprint(df[["b", "a"]], "t").sha256 != base.sha256
    with pytest.raises(InvalidInputError):
        data_fingerprint([1, 2], "t")  # type: ignore[arg-type]


def test_users_log_their_own_model_through_the_same_api(mlops_ws: Any) -> None:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from aiw.mlops.tracking import log_model, trusted_types_of

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x1": rng.normal(size=200), "x2": rng.normal(size=200)})
    y = (X.x1 + X.x2 > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    assert trusted_types_of(model) == []  # plain sklearn: nothing beyond skops' defaults
    logged = log_model(mlops_ws, model, "user-logreg", X, y_sample=y.tolist(), metrics={"acc": 1.0}, params={"C": 1.0})
    assert logged.model_uri.startswith("models:/m-") and logged.trusted_types == ()
    assert logged.metrics == {"acc": 1.0}


class Doubler:
    """A transformer outside scikit-learn, which loading would have to trust."""

    def fit(self, X: Any, y: Any = None) -> Doubler:
        return self

    def transform(self, X: Any) -> Any:
        return X * 2


def test_foreign_types_are_refused_unless_named() -> None:
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from aiw.mlops.tracking import trusted_types_of

    X = pd.DataFrame({"x": np.arange(20.0)})
    y = (X.x > 10).astype(int)
    forest = RandomForestClassifier(n_estimators=2, random_state=0).fit(X, y)
    assert trusted_types_of(forest) == ["sklearn.tree._tree.Tree"]  # exactly the model's own types
    foreign = Pipeline([("d", Doubler()), ("m", LogisticRegression())]).fit(X, y)
    with pytest.raises(InvalidInputError, match="outside scikit-learn"):
        trusted_types_of(foreign)


def test_bad_arguments_are_refused(mlops_ws: Any) -> None:
    import pandas as pd

    from aiw.mlops.tracking import log_model
    from aiw.mlops.training import train_claims_fraud

    with pytest.raises(InvalidInputError, match="model name"):
        log_model(mlops_ws, object(), "bad name!", pd.DataFrame({"a": [1]}))
    with pytest.raises(InvalidInputError, match="X_sample"):
        log_model(mlops_ws, object(), "ok", pd.DataFrame())
    with pytest.raises(InvalidInputError, match="test_size"):
        train_claims_fraud(mlops_ws, test_size=1.5)


class NeedsManyRows:
    """A classifier that cannot predict on fewer than 10 rows: its 5-row input example fails."""

    def fit(self, X: Any, y: Any = None) -> NeedsManyRows:
        return self

    def predict(self, X: Any) -> Any:
        if len(X) < 10:
            raise ValueError("needs at least 10 rows")
        return (X["x"] > 0).astype(int).to_numpy()


def test_a_model_that_cannot_serve_its_input_example_is_refused_before_upload(mlops_ws: Any) -> None:
    """MLflow only warns when the input example fails; here logging stops, naming why."""
    import mlflow
    import pandas as pd

    from aiw.mlops.tracking import Tracker

    X = pd.DataFrame({"x": [float(i - 10) for i in range(20)]})
    model = NeedsManyRows()
    tracker = Tracker(mlops_ws)
    with pytest.raises(InvalidInputError, match="input example could not be served: needs at least 10 rows"):
        tracker.log_model(model, "needs-rows", X, trusted_types=[f"{__name__}.NeedsManyRows"])
    exp = tracker._activate()
    (run_id,) = mlflow.search_runs([exp], filter_string="tags.`aiw.model_name` = 'needs-rows'")["run_id"]
    assert mlflow.get_run(run_id).info.status == "FAILED"
    client = tracker.client()
    entries = [m for m in client.search_logged_models([exp]) if m.source_run_id == run_id]
    assert len(entries) == 1  # MLflow creates the entry first; no file of the model reached it
    assert client.list_logged_model_artifacts(entries[0].model_id) == []
