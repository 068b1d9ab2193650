"""Training runs and models logged to MLflow, with the facts governance needs.

:class:`Tracker` wraps MLflow (never forks it): it points MLflow at the workspace's tracking
store, logs a scikit-learn model with its signature, an input example, explicit requirements (MLflow's
own inference of them loads the model in a subprocess and costs 10 to 16 s), the training data's
fingerprint and the code version, and writes two extra files into the model folder:

* ``evaluation.json``: metrics, per-group metrics and fairness gaps, intended use, limitations;
* ``verification.json``: held-out rows with the model's own probabilities, which the serving layer
  uses to prove that an accelerated runtime (ONNX) reproduces the model before it serves with it.

Both travel with the model files, so the registry's checksums cover them.

**Trusted types.** MLflow 3.17 saves scikit-learn models with skops, which refuses to load any type
not on an allow-list. The decision here: a model's allow-list is exactly the non-default types its
own object graph holds (computed with ``skops.io.get_untrusted_types`` when the caller does not name
them), restricted to scikit-learn, NumPy and SciPy; anything else must be listed explicitly by the
caller. The registry records the list with the version and loads with *that* list (never the one in
the model folder), after checking every file's SHA-256: a swapped file or a widened list is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiw.errors import BackendError, InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

    from aiw.workspace import Workspace

__all__ = [
    "EVALUATION_FILE",
    "SAFE_TYPE_PREFIXES",
    "VERIFICATION_FILE",
    "DataFingerprint",
    "LoggedModel",
    "Tracker",
    "code_version",
    "data_fingerprint",
    "default_pip_requirements",
    "log_model",
    "mlflow_client",
    "read_held_out_rows",
    "trusted_types_of",
]

EVALUATION_FILE = "evaluation.json"
"""Name of the evaluation file written into every model folder logged here."""

VERIFICATION_FILE = "verification.json"
"""Name of the held-out rows file (split orient, with the model's probabilities)."""

SAFE_TYPE_PREFIXES = ("sklearn.", "numpy.", "scipy.")
"""Modules whose types may be trusted without the caller naming them."""

_ARTIFACT = "model"
_MAX_VERIFICATION_ROWS = 500


def read_held_out_rows(folder: Path, manifest: Mapping[str, str]) -> tuple[list[str], list[list[Any]]] | None:
    """(columns, rows) of the held-out rows logged with a model (``verification.json``), or None
    when its manifest has none. ``folder`` must already have passed its checksum check."""
    rel = next((p for p in manifest if p.endswith(VERIFICATION_FILE)), None)
    if rel is None:
        return None
    doc = json.loads((folder / rel).read_text(encoding="utf-8"))
    rows = doc.get("data") or []
    return (list(doc.get("columns") or []), rows) if rows else None


@dataclass(frozen=True)
class DataFingerprint:
    """What a model was trained on: where from, how many rows, and a hash of their content.

    Attributes:
        table: The warehouse table (or query label) the rows came from.
        rows: Number of rows.
        sha256: SHA-256 over the rows' content (row order and values; index ignored).
        columns: Column names in order.
        source: How the rows were obtained (``mart`` or ``query``), free text.
    """

    table: str
    rows: int
    sha256: str
    columns: tuple[str, ...] = ()
    source: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        out = asdict(self)
        out["columns"] = list(self.columns)
        return out


@dataclass(frozen=True)
class LoggedModel:
    """A model logged to MLflow by :meth:`Tracker.log_model`.

    Attributes:
        run_id: The MLflow run.
        model_uri: ``models:/m-...``, what the registry registers.
        model_id: MLflow's logged-model id.
        artifact_uri: Where the model's files live.
        metrics: The metrics logged with it.
        trusted_types: The skops allow-list the model was saved with.
        seconds: Wall time of the logging.
        lineage: The ``aiw.*`` run tags written with the run (data fingerprint, code version), so
            that registering this object needs no second read of the run; empty when unknown.
    """

    run_id: str
    model_uri: str
    model_id: str
    artifact_uri: str
    metrics: dict[str, float] = field(default_factory=dict)
    trusted_types: tuple[str, ...] = ()
    seconds: float = 0.0
    lineage: dict[str, str] = field(default_factory=dict)


def data_fingerprint(frame: pd.DataFrame, table: str, *, source: str = "") -> DataFingerprint:
    """The fingerprint of ``frame``: row count and a SHA-256 of its content.

    The hash covers column names, dtypes and every value in order, so any change to the training
    data (an edited amount, a dropped row, a reordered column) gives another fingerprint.
    """
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise InvalidInputError(f"data_fingerprint needs a pandas DataFrame. Got {type(frame).__name__}.")
    digest = hashlib.sha256()
    digest.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    if len(frame):
        hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
        digest.update(hashed.tobytes())
    return DataFingerprint(
        table=table,
        rows=len(frame),
        sha256=digest.hexdigest(),
        columns=tuple(str(c) for c in frame.columns),
        source=source,
    )


@lru_cache(maxsize=1)
def code_version() -> dict[str, str]:
    """The code that trains: the package version and, in a git checkout, the commit and dirtiness."""
    from aiw import __version__

    out = {"package": "enterprise-ai-workflows", "version": __version__, "git_commit": "", "git_dirty": ""}
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
        if commit.returncode == 0:
            out["git_commit"] = commit.stdout.strip()
            dirty = subprocess.run(
                ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            out["git_dirty"] = "true" if dirty.stdout.strip() else "false"
    except (OSError, subprocess.SubprocessError):  # no git on this machine: the version alone
        pass
    return out


def default_pip_requirements() -> list[str]:
    """Pinned requirements of a scikit-learn model saved with skops (no inference subprocess)."""
    return list(_installed_pins())


@lru_cache(maxsize=1)
def _installed_pins() -> tuple[str, ...]:
    # importlib.metadata scans every installed distribution per look-up (about 8 ms for five on
    # this venv); installed versions do not change while the process runs.
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for dist in ("scikit-learn", "skops", "numpy", "pandas", "scipy"):
        try:
            pins.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            continue
    return tuple(pins)


def trusted_types_of(model: Any) -> list[str]:
    """The non-default types skops must trust to load ``model``, sorted.

    Raises:
        InvalidInputError: a type outside scikit-learn, NumPy and SciPy is needed (name it
            explicitly with ``trusted_types=`` if you vouch for it), or skops cannot save the model.
    """
    import skops.io

    try:
        needed = sorted(skops.io.get_untrusted_types(data=skops.io.dumps(model)))
    except Exception as exc:  # skops refuses lambdas, local classes ...: say so plainly
        raise InvalidInputError(
            f"The model cannot be saved safely with skops: {exc}",
            hint="use estimators and functions defined at module top level",
        ) from exc
    foreign = [t for t in needed if not t.startswith(SAFE_TYPE_PREFIXES)]
    if foreign:
        raise InvalidInputError(
            f"The model holds types outside scikit-learn/NumPy/SciPy that loading would have to trust: "
            f"{', '.join(foreign)}",
            hint="pass trusted_types=[...] naming them if you vouch for that code",
        )
    return needed


def mlflow_client(workspace: Workspace) -> Any:
    """An ``MlflowClient`` on the workspace's tracking store and registry, with MLflow's fluent API
    (runs, artifact downloads) pointed at them too."""
    import mlflow
    from mlflow import MlflowClient

    uri = workspace.tracking_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(uri, uri)


class Tracker:
    """Log runs and models to the workspace's MLflow tracking store.

    Args:
        workspace: The workspace; its ``tracking_uri`` and ``settings.tracking`` are used.
    """

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.experiment = workspace.settings.tracking.experiment

    def _activate(self) -> str:
        """Point MLflow at this workspace and return the experiment id (created if missing).

        The lookup costs about 1 ms on the embedded store, so it is not cached: an experiment
        deleted or renamed meanwhile is simply looked up again.
        """
        client = mlflow_client(self.workspace)
        try:
            exp = client.get_experiment_by_name(self.experiment)
            if exp is not None:
                return str(exp.experiment_id)
            location = None
            if not self.workspace.settings.tracking.url:  # embedded: artifacts inside the workspace
                location = f"{self.workspace.path('mlruns').as_uri()}/{self.experiment}"
            return str(client.create_experiment(self.experiment, artifact_location=location))
        except Exception as exc:
            raise BackendError(
                f"The MLflow tracking store {self.workspace.tracking_uri} failed: {exc}",
                hint="check AIW_TRACKING__URL or the workspace's mlflow.db",
            ) from exc

    def client(self) -> Any:
        """An ``MlflowClient`` on this workspace (tracking and registry)."""
        self._activate()
        return mlflow_client(self.workspace)

    def log_model(
        self,
        model: Any,
        name: str,
        X_sample: pd.DataFrame,
        *,
        y_sample: Sequence[Any] | None = None,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float] | None = None,
        evaluation: Mapping[str, Any] | None = None,
        fingerprint: DataFingerprint | None = None,
        trusted_types: Sequence[str] | None = None,
        pip_requirements: Sequence[str] | None = None,
        tags: Mapping[str, str] | None = None,
        run_name: str | None = None,
    ) -> LoggedModel:
        """Log a fitted scikit-learn model in a new run, with everything the registry checks.

        Args:
            model: A fitted scikit-learn estimator or pipeline that takes a DataFrame.
            name: The model's name (also the run name unless ``run_name`` is given).
            X_sample: Rows the model accepts (held-out rows are best): the signature is inferred
                from them, the first 5 become the input example and up to 500 become the
                verification rows that an accelerated runtime must reproduce.
            y_sample: The true labels of ``X_sample``, kept with the verification rows.
            params: Training parameters to log.
            metrics: Metrics to log (floats).
            evaluation: Extra JSON-ready facts for the model card (per-group metrics, intended
                use, limitations ...), written to ``evaluation.json`` in the model folder.
            fingerprint: The training data's fingerprint; computed over ``X_sample`` if omitted.
            trusted_types: The skops allow-list; computed from the model when omitted (see the
                module docstring).
            pip_requirements: Requirements to record; pinned defaults when omitted.
            tags: Extra run tags.
            run_name: The run's name.

        Returns:
            The logged model.

        Raises:
            InvalidInputError: a bad name, an empty sample, or a model skops cannot save safely.
            BackendError: MLflow failed.
        """
        import mlflow
        import pandas as pd
        from mlflow.entities import Metric, Param
        from mlflow.models import Model
        from threadpoolctl import threadpool_limits

        _check_name(name)
        if not isinstance(X_sample, pd.DataFrame) or X_sample.empty:
            raise InvalidInputError("The 'X_sample' parameter of log_model must be a non-empty pandas DataFrame.")
        if not hasattr(model, "predict"):
            raise InvalidInputError(f"The model must have a predict method. Got {type(model).__name__}.")
        started = time.perf_counter()
        types = list(trusted_types) if trusted_types is not None else trusted_types_of(model)
        sample = X_sample.head(_MAX_VERIFICATION_ROWS).reset_index(drop=True)
        fp = fingerprint or data_fingerprint(X_sample, "X_sample", source="sample")
        code = code_version()
        run_tags = {
            "aiw.model_name": name,
            "aiw.data.table": fp.table,
            "aiw.data.rows": str(fp.rows),
            "aiw.data.sha256": fp.sha256,
            "aiw.data.source": fp.source,
            "aiw.code.version": code["version"],
            "aiw.code.git_commit": code["git_commit"],
            "aiw.code.git_dirty": code["git_dirty"],
            **({"mlflow.source.git.commit": code["git_commit"]} if code["git_commit"] else {}),
            **{k: str(v) for k, v in (tags or {}).items()},
        }
        # A few hundred rows here, and MLflow predicts on the input example to validate it: one
        # OpenMP thread beats contention on a small, busy machine. One limiter for both, since
        # each one scans the loaded libraries.
        with threadpool_limits(limits=1, user_api="openmp"):
            predictions, proba = _predict(model, sample)
            signature = _infer_signature(sample, predictions)
            eval_doc = {"metrics": dict(metrics or {}), "data": fp.as_dict(), "code": code, **dict(evaluation or {})}
            verify_doc = {
                "columns": list(sample.columns),
                "data": json.loads(sample.to_json(orient="values", date_format="iso", double_precision=15)),
                "predictions": predictions.tolist(),
                "probabilities": proba.tolist() if proba is not None else None,
                "classes": [_plain(c) for c in getattr(model, "classes_", [])],
                "labels": [_plain(v) for v in y_sample][: len(sample)] if y_sample is not None else None,
            }
            experiment_id = self._activate()
            try:
                with tempfile.TemporaryDirectory(prefix="aiw-log-") as tmp:
                    eval_path = Path(tmp, EVALUATION_FILE)
                    eval_path.write_text(json.dumps(eval_doc, indent=2, sort_keys=True, default=_plain))
                    verify_path = Path(tmp, VERIFICATION_FILE)
                    verify_path.write_text(json.dumps(verify_doc, default=_plain))
                    # Tags go with the run's creation: no separate write for them.
                    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name or name, tags=run_tags) as run:
                        run_id = run.info.run_id
                        client = mlflow_client(self.workspace)
                        all_params = [Param(k, _param(v)) for k, v in (params or {}).items()]
                        for i in range(0, len(all_params), 100):  # before the model: it copies the run's params
                            client.log_batch(run_id, params=all_params[i : i + 100])
                        # Model.log with mlflow.sklearn's own save_model, less MLflow's reload of
                        # the saved model to try the input example (see _SklearnFlavor).
                        info = Model.log(
                            artifact_path=None,
                            name=_ARTIFACT,
                            flavor=_SklearnFlavor(),
                            sk_model=model,
                            validate_serving_input=False,
                            signature=signature,
                            input_example=sample.head(5),
                            pip_requirements=list(pip_requirements or default_pip_requirements()),
                            skops_trusted_types=types,
                            serialization_format="skops",
                            extra_files=[str(eval_path), str(verify_path)],
                            metadata={"aiw_model_name": name, "aiw_data_sha256": fp.sha256},
                        )
                        # Metrics after the model, each linked to it: logged before, MLflow would read
                        # them back one metric history at a time to copy them onto the model.
                        now_ms = int(time.time() * 1000)
                        all_metrics = [
                            Metric(k, float(v), now_ms, 0, model_id=info.model_id) for k, v in (metrics or {}).items()
                        ]
                        for i in range(0, len(all_metrics), 1000):
                            client.log_batch(run_id, metrics=all_metrics[i : i + 1000])
            except InvalidInputError:
                raise
            except Exception as exc:
                raise BackendError(
                    f"Logging the model {name!r} to MLflow failed: {exc}",
                    hint="check the tracking store and, for skops errors, trusted_types",
                ) from exc
        # MLflow 3 reports the logged model's artifact location as ModelInfo.artifact_path.
        artifact_uri = info.artifact_path or client.get_logged_model(info.model_id).artifact_location
        return LoggedModel(
            run_id=run_id,
            model_uri=info.model_uri,
            model_id=info.model_id,
            artifact_uri=artifact_uri,
            metrics={k: float(v) for k, v in (metrics or {}).items()},
            trusted_types=tuple(types),
            seconds=time.perf_counter() - started,
            lineage={k: v for k, v in run_tags.items() if k.startswith("aiw.")},
        )


class _SklearnFlavor:
    """``mlflow.sklearn`` as the flavor of ``Model.log``, trying the input example in memory.

    ``mlflow.sklearn.save_model`` already dumps the model with skops and loads it back with the
    trusted types, so the saved file is proven loadable. ``Model.log`` then loads it a second time
    (about 60 ms for the fraud model) only to predict on the input example, and merely warns when
    that fails; MLflow 3.17 offers no switch for this (``validate_serving_input=False`` reaches the
    sklearn flavor's ``save_model``, which refuses it). This flavor drops that keyword and instead
    parses the serving example MLflow wrote exactly as ``aiw serve`` will (against the signature the
    registry will record) and predicts it with the in-memory model, and it refuses the model, before
    any file is uploaded, when either step fails.
    """

    __name__ = "mlflow.sklearn"  # Model.log records the flavor by the module's name

    def save_model(self, *, path: str, sk_model: Any, validate_serving_input: bool = False, **kwargs: Any) -> None:
        import mlflow.sklearn

        mlflow.sklearn.save_model(sk_model=sk_model, path=path, **kwargs)
        _try_serving_example(Path(path), sk_model)


def _try_serving_example(folder: Path, model: Any) -> None:
    """Parse the model folder's serving input example as the server would, and predict on it.

    Raises:
        InvalidInputError: the folder cannot be governed (see the registry), or the server could
            not parse the example or the model cannot predict on it.
    """
    from aiw.mlops.registry.versions import read_mlmodel
    from aiw.mlops.serving.inputs import InputSchema, parse_payload
    from aiw.mlops.serving.predictor import SklearnPredictor

    example = folder / "serving_input_example.json"
    if not example.is_file():
        return
    schema = InputSchema(read_mlmodel(folder / "MLmodel")[2])
    try:
        batch = parse_payload(example.read_bytes(), schema, max_rows=_MAX_VERIFICATION_ROWS)
        predicted = SklearnPredictor(model, schema).predict(batch)
    except Exception as exc:
        raise InvalidInputError(
            f"The model's input example could not be served: {exc}",
            hint="pass X_sample rows of the columns and types the model was fitted on",
        ) from exc
    if len(predicted.predictions) != batch.rows:
        raise InvalidInputError(
            f"The model returned {len(predicted.predictions)} predictions "
            f"for the {batch.rows} rows of its input example."
        )


def log_model(workspace: Workspace, model: Any, name: str, X_sample: pd.DataFrame, **kwargs: Any) -> LoggedModel:
    """Log ``model`` to the workspace's MLflow; see :meth:`Tracker.log_model` for the arguments."""
    return Tracker(workspace).log_model(model, name, X_sample, **kwargs)


def _predict(model: Any, sample: pd.DataFrame) -> tuple[Any, Any]:
    """(predictions, probabilities or None) of ``model`` on ``sample``, in one pass where possible."""
    import numpy as np

    from aiw.mlops.serving.predictor import ARGMAX_CLASSIFIERS

    try:
        proba = np.asarray(model.predict_proba(sample)) if hasattr(model, "predict_proba") else None
        final = model.steps[-1][1] if hasattr(model, "steps") else model
        if proba is not None and type(final).__name__ in ARGMAX_CLASSIFIERS:
            return np.asarray(model.classes_)[np.argmax(proba, axis=1)], proba  # predict() by definition
        return np.asarray(model.predict(sample)), proba
    except Exception as exc:
        raise InvalidInputError(
            f"The model cannot predict on X_sample: {exc}",
            hint="pass rows with the columns and types the model was fitted on",
        ) from exc


def _infer_signature(sample: pd.DataFrame, predictions: Any) -> Any:
    """MLflow's signature of ``sample`` -> ``predictions``, inferred from each column's distinct values.

    MLflow infers every input column on its own, in Python, value by value (about 14 ms for 500
    rows of the fraud features). Its answer for a column depends only on which values it holds,
    not on how often: the dtype, and for object columns the type of each element, and whether any
    element is missing. So the inference runs on :func:`_distinct_rows`, which keeps one of each
    (type, value) of object columns and, for other dtypes, the first value plus the first missing
    one. The output schema is inferred from all predictions, as before.
    """
    from mlflow.models import infer_signature

    try:
        reduced = _distinct_rows(sample)
    except TypeError:  # unhashable cells (lists, dicts): infer on every row
        reduced = sample
    return infer_signature(reduced, predictions)


def _distinct_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Per column, the rows MLflow's schema inference needs (see :func:`_infer_signature`).

    Columns are reduced independently and padded to one length by repeating their first kept row,
    which adds no new value. Dtypes are kept (positional ``take``).

    Raises:
        TypeError: an object column holds unhashable values, or two columns share a name.
    """
    import numpy as np
    import pandas as pd

    if frame.columns.has_duplicates:
        raise TypeError("duplicate column names")
    picked: dict[Any, Any] = {}
    for name in frame.columns:
        col = frame[name]
        if col.dtype.kind == "O":
            # By (type, value): 1, 1.0 and True are equal as values but are three MLflow types.
            keys = pd.Series([(type(v), v) for v in col.tolist()], dtype=object)
            positions = np.flatnonzero(~keys.duplicated().to_numpy())
        else:
            missing = np.flatnonzero(col.isna().to_numpy())
            positions = np.array([0, *missing[:1]])
        picked[name] = positions
    length = max(len(p) for p in picked.values())
    return pd.DataFrame(
        {
            name: frame[name].take(np.concatenate([p, np.full(length - len(p), p[0])])).reset_index(drop=True)
            for name, p in picked.items()
        }
    )


def _check_name(name: str) -> None:
    import re

    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}", name):
        raise InvalidInputError(
            f"A model name must be 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit. "
            f"Got {name!r}."
        )


def _param(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:6000]


def _plain(value: Any) -> Any:
    """NumPy scalars and other odd values as JSON-ready Python values."""
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)
