"""Quick baselines: a first look at how predictable a column is, PyCaret-style.

:func:`baseline` reads a warehouse table, picks usable feature columns (identifiers, free text and
raw timestamps are dropped; dates give month and weekday), compares a few scikit-learn models
with cross-validation (stratified for classification), logs each model's mean metrics to MLflow
in the workspace's tracking store (experiment ``baseline-<table>``; parameters and metrics only)
and returns a :class:`Leaderboard` sorted by the main metric (ROC AUC for classification, R2 for
regression).

These are baselines, not products: columns that leak the target (``status`` next to
``is_fraud``) are the caller's business; ``exclude`` drops them.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from aiw.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

    from aiw.workspace import Workspace

__all__ = ["CLASSIFIERS", "REGRESSORS", "BaselineResult", "Leaderboard", "baseline", "select_features"]

CLASSIFIERS = ("dummy", "logistic_regression", "random_forest", "hist_gradient_boosting")
"""Model names for classification targets, in the order they run."""
REGRESSORS = ("dummy", "ridge", "random_forest", "hist_gradient_boosting")
"""Model names for regression targets."""

log = logging.getLogger("aiw.sql.baseline")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*){0,2}$")
_MAX_CLASSES = 20
_MAX_CATEGORIES = 50
_FREE_TEXT_MEAN_CHARS = 40


@dataclass(frozen=True)
class BaselineResult:
    """One model's cross-validated scores.

    Attributes:
        model: The model's short name.
        metrics: Mean over folds of each metric (``auc``, ``accuracy``, ``f1`` or ``r2``,
            ``mae``, ``rmse``) plus ``fit_time_s``.
        std: Standard deviation over folds of each metric.
        run_id: The MLflow run it was logged to.
    """

    model: str
    metrics: dict[str, float]
    std: dict[str, float]
    run_id: str


@dataclass(frozen=True)
class Leaderboard:
    """Models ranked by the main metric, best first."""

    table: str
    target: str
    task: Literal["classification", "regression"]
    metric: str
    results: list[BaselineResult]
    features: list[str]
    dropped: dict[str, str]
    rows: int
    folds: int
    experiment_id: str
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> BaselineResult:
        """The top model."""
        return self.results[0]

    def to_frame(self) -> pd.DataFrame:
        """One row per model: model, the metrics, run_id."""
        import pandas as pd

        return pd.DataFrame(
            [
                {"model": r.model, **{k: round(v, 4) for k, v in r.metrics.items()}, "run_id": r.run_id}
                for r in self.results
            ]
        )


def _quote(name: str) -> str:
    return ".".join('"' + p.replace('"', '""') + '"' for p in name.split("."))


def select_features(
    frame: pd.DataFrame, target: str, exclude: tuple[str, ...] = ()
) -> tuple[pd.DataFrame, list[str], list[str], dict[str, str]]:
    """Usable features of ``frame``: (features frame, numeric columns, categorical columns, dropped).

    Dropped, with the reason: the target and ``exclude``; identifiers (``id``/``*_id`` or a unique
    value per row); free text (long strings); constant columns; raw timestamps, which are
    replaced by ``<col>_month`` and ``<col>_dow``; categoricals with too many levels.
    """
    import pandas as pd

    dropped: dict[str, str] = {}
    out: dict[str, Any] = {}
    numeric: list[str] = []
    categorical: list[str] = []
    n = len(frame)
    for col in frame.columns:
        s = frame[col]
        name = str(col)
        if name == target:
            continue
        if name in exclude:
            dropped[name] = "excluded"
            continue
        if name.lower() == "id" or name.lower().endswith("_id"):
            dropped[name] = "identifier"
            continue
        if s.nunique(dropna=True) <= 1:
            dropped[name] = "constant"
            continue
        if pd.api.types.is_datetime64_any_dtype(s) or (s.dtype == object and _looks_like_dates(s)):
            ts = pd.to_datetime(s, errors="coerce")
            out[f"{name}_month"] = ts.dt.month.astype("float64")
            out[f"{name}_dow"] = ts.dt.dayofweek.astype("float64")
            numeric += [f"{name}_month", f"{name}_dow"]
            dropped[name] = "timestamp (month and weekday kept)"
            continue
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            if pd.api.types.is_integer_dtype(s) and n > 50 and s.nunique() == n:
                dropped[name] = "identifier (unique per row)"
                continue
            out[name] = s.astype("float64")
            numeric.append(name)
            continue
        text = s.astype("string")
        levels = text.nunique(dropna=True)
        if text.str.len().mean() > _FREE_TEXT_MEAN_CHARS and levels > 0.5 * n:
            dropped[name] = "free text"
            continue
        if n > 50 and levels == n:
            dropped[name] = "identifier (unique per row)"
            continue
        if levels > _MAX_CATEGORIES and levels > 0.2 * n:
            dropped[name] = f"too many categories ({levels})"
            continue
        out[name] = text.astype(object).where(text.notna(), None)
        categorical.append(name)
    return pd.DataFrame(out, index=frame.index), numeric, categorical, dropped


def _looks_like_dates(s: pd.Series) -> bool:
    import datetime as dt

    sample = s.dropna().head(20)
    return len(sample) > 0 and all(isinstance(v, dt.date | dt.datetime) for v in sample)


def _task(y: pd.Series) -> Literal["classification", "regression"]:
    import pandas as pd

    if pd.api.types.is_bool_dtype(y) or not pd.api.types.is_numeric_dtype(y):
        return "classification"
    if pd.api.types.is_integer_dtype(y) and y.nunique() <= _MAX_CLASSES:
        return "classification"
    return "regression"


def _models(task: str, names: tuple[str, ...], seed: int) -> dict[str, Any]:
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LogisticRegression, Ridge

    if task == "classification":
        factories: dict[str, Any] = {
            "dummy": lambda: DummyClassifier(strategy="prior"),
            "logistic_regression": lambda: LogisticRegression(max_iter=2000, class_weight="balanced"),
            "random_forest": lambda: RandomForestClassifier(
                n_estimators=200, min_samples_leaf=2, n_jobs=1, class_weight="balanced_subsample", random_state=seed
            ),
            "hist_gradient_boosting": lambda: HistGradientBoostingClassifier(random_state=seed),
        }
    else:
        factories = {
            "dummy": lambda: DummyRegressor(strategy="mean"),
            "ridge": lambda: Ridge(alpha=1.0),
            "random_forest": lambda: RandomForestRegressor(
                n_estimators=200, min_samples_leaf=2, n_jobs=1, random_state=seed
            ),
            "hist_gradient_boosting": lambda: HistGradientBoostingRegressor(random_state=seed),
        }
    unknown = [n for n in names if n not in factories]
    if unknown:
        raise InvalidInputError(
            f"Unknown {task} models: {', '.join(unknown)}", hint=f"choose from {', '.join(factories)}"
        )
    return {n: factories[n]() for n in names}


def _pipeline(model: Any, numeric: list[str], categorical: list[str]) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    pre = ColumnTransformer(
        [
            ("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric),
            (
                "cat",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        (
                            "onehot",
                            OneHotEncoder(
                                handle_unknown="infrequent_if_exist",
                                min_frequency=5,
                                max_categories=_MAX_CATEGORIES,
                                sparse_output=False,
                            ),
                        ),
                    ]
                ),
                categorical,
            ),
        ],
        remainder="drop",
    )
    return Pipeline([("pre", pre), ("model", model)])


def _experiment(client: Any, workspace: Workspace, name: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return str(exp.experiment_id)
    location = None
    if not workspace.settings.tracking.url:  # embedded: artifacts inside the workspace
        location = f"{workspace.path('mlruns').as_uri()}/{name}"
    return str(client.create_experiment(name, artifact_location=location))


def baseline(
    workspace: Workspace,
    table: str,
    target: str,
    *,
    folds: int = 5,
    models: list[str] | None = None,
    exclude: list[str] | None = None,
    max_rows: int = 50_000,
    seed: int = 42,
    actor: str = "system",
) -> Leaderboard:
    """Cross-validate several scikit-learn models predicting ``target`` from ``table``'s other columns.

    Args:
        workspace: The workspace (its warehouse and its MLflow tracking store).
        table: A warehouse table or view (``claims``, ``pg.public.claims``).
        target: The column to predict: a boolean, a category or an integer with at most 20
            values is classification; other numbers are regression.
        folds: Cross-validation folds, in [2, 20].
        models: Model names (default: all of :data:`CLASSIFIERS` or :data:`REGRESSORS`).
        exclude: Columns to leave out (for instance ones that leak the target).
        max_rows: Rows sampled (uniformly, reproducibly) from larger tables.
        seed: Seed of the folds, the sample and the models.
        actor: Who asked, for the audit record.

    Returns:
        The :class:`Leaderboard`, best model first.

    Raises:
        InvalidInputError: a bad table, target, column or parameter; too few rows or a single class.
    """
    import mlflow
    import numpy as np
    import pandas as pd
    from sklearn.model_selection import KFold, StratifiedKFold, cross_validate

    if not isinstance(table, str) or not _NAME.match(table):
        raise InvalidInputError(
            f"The 'table' parameter must be a table name like claims or pg.public.claims. Got {table!r} instead."
        )
    if not isinstance(folds, int) or isinstance(folds, bool) or not 2 <= folds <= 20:
        raise InvalidInputError(f"The 'folds' parameter must be an integer in [2, 20]. Got {folds!r} instead.")
    if not isinstance(max_rows, int) or max_rows < 20:
        raise InvalidInputError(f"The 'max_rows' parameter must be an integer >= 20. Got {max_rows!r} instead.")
    frame = _read(workspace, table, max_rows, seed)
    if target not in frame.columns:
        raise InvalidInputError(
            f"The target {target!r} is not a column of {table}", hint=f"columns: {', '.join(map(str, frame.columns))}"
        )
    missing = [c for c in (exclude or []) if c not in frame.columns]
    if missing:
        raise InvalidInputError(f"Columns to exclude not in {table}: {', '.join(missing)}")
    frame = frame[frame[target].notna()].reset_index(drop=True)
    if len(frame) < 2 * folds:
        raise InvalidInputError(f"{table} has {len(frame)} rows with a target; {2 * folds} needed for {folds} folds")
    y_raw = frame[target]
    task = _task(y_raw)
    notes: list[str] = []
    y: Any
    if task == "classification":
        y = y_raw.astype(str) if not pd.api.types.is_bool_dtype(y_raw) else y_raw.astype(int)
        counts = pd.Series(y).value_counts()
        if len(counts) < 2:
            raise InvalidInputError(f"The target {target!r} has a single class", hint="choose another target")
        if counts.min() < folds:
            raise InvalidInputError(
                f"The rarest class of {target!r} has {counts.min()} rows, fewer than {folds} folds",
                hint="use fewer folds",
            )
        binary = len(counts) == 2
        scoring = {
            "auc": "roc_auc" if binary else "roc_auc_ovr_weighted",
            "accuracy": "accuracy",
            "f1": "f1" if binary else "f1_macro",
        }
        if binary and not pd.api.types.is_integer_dtype(y):
            # f1 needs to know the positive class: the rarer one.
            y = (y == counts.index[-1]).astype(int)
            notes.append(f"positive class: {counts.index[-1]!r}")
        cv: Any = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        metric, names = "auc", tuple(models or CLASSIFIERS)
    else:
        y = y_raw.astype(float)
        scoring = {"r2": "r2", "mae": "neg_mean_absolute_error", "rmse": "neg_root_mean_squared_error"}
        cv = KFold(n_splits=folds, shuffle=True, random_state=seed)
        metric, names = "r2", tuple(models or REGRESSORS)
    features, numeric, categorical, dropped = select_features(frame, target, tuple(exclude or ()))
    if not numeric and not categorical:
        raise InvalidInputError(f"No usable feature columns in {table} besides {target!r}", hint=f"dropped: {dropped}")
    candidates = _models(task, names, seed)

    client = mlflow.MlflowClient(tracking_uri=workspace.tracking_uri)
    experiment = f"baseline-{table}"
    experiment_id = _experiment(client, workspace, experiment)
    results: list[BaselineResult] = []
    for name, model in candidates.items():
        started = time.perf_counter()
        scores = cross_validate(
            _pipeline(model, numeric, categorical), features, y, cv=cv, scoring=scoring, n_jobs=1, error_score="raise"
        )
        means, stds = {}, {}
        for key in scoring:
            values = np.asarray(scores[f"test_{key}"], dtype=float)
            if key in ("mae", "rmse"):
                values = -values  # scikit-learn negates errors so that greater is better
            means[key], stds[key] = float(values.mean()), float(values.std())
        means["fit_time_s"] = float(np.mean(scores["fit_time"]))
        run = client.create_run(experiment_id, run_name=name, tags={"aiw.kind": "baseline", "aiw.actor": actor})
        params = {
            "model": name,
            "table": table,
            "target": target,
            "task": task,
            "folds": folds,
            "rows": len(frame),
            "n_numeric": len(numeric),
            "n_categorical": len(categorical),
            "seed": seed,
            **{
                f"model.{k}": v
                for k, v in model.get_params().items()
                if isinstance(v, int | float | str | bool) and v is not None
            },
        }
        from mlflow.entities import Metric, Param

        now = int(time.time() * 1000)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, now, 0) for k, v in means.items()]
            + [Metric(f"{k}_std", v, now, 0) for k, v in stds.items()],
            params=[Param(k, str(v)[:500]) for k, v in params.items()],
        )
        client.set_terminated(run.info.run_id, "FINISHED")
        results.append(BaselineResult(name, means, stds, run.info.run_id))
        log.info("baseline %s on %s: %s in %.1f s", name, table, means, time.perf_counter() - started)
    results.sort(key=lambda r: r.metrics[metric], reverse=True)
    board = Leaderboard(
        table=table,
        target=target,
        task=task,
        metric=metric,
        results=results,
        features=[*numeric, *categorical],
        dropped=dropped,
        rows=len(frame),
        folds=folds,
        experiment_id=experiment_id,
        notes=notes,
    )
    workspace.audit.append(
        actor,
        "insights.baseline",
        f"table:{table}",
        "success",
        {
            "target": target,
            "task": task,
            "experiment": experiment,
            "best": board.best.model,
            metric: round(board.best.metrics[metric], 4),
            "runs": [r.run_id for r in results],
        },
    )
    return board


def _read(workspace: Workspace, table: str, max_rows: int, seed: int) -> pd.DataFrame:
    """The table (a reproducible sample of ``max_rows`` when larger) as pandas, read-only."""
    from aiw.sql.runner import run_query

    result = run_query(workspace, f"SELECT * FROM {_quote(table)}", row_limit=max_rows)
    if not result.truncated:
        return result.table.to_pandas()
    # Larger than max_rows: a seeded sample of row numbers keeps the draw reproducible.
    sql = (
        f"SELECT * EXCLUDE (__aiw_rn) FROM (SELECT *, row_number() OVER () AS __aiw_rn FROM {_quote(table)}) "
        f"WHERE hash(__aiw_rn + {int(seed)}) % 1000003 < "
        f"1000003 * {max_rows} / (SELECT count(*) FROM {_quote(table)})"
    )
    return run_query(workspace, sql, row_limit=max_rows).table.to_pandas()
