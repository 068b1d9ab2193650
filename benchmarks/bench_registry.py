"""Governed registration against plain MLflow, on the same fitted fraud model.

* ours: ``Tracker.log_model`` (signature, input example, explicit requirements, evaluation and
  verification files, fingerprint and code tags) + ``ModelRegistry.register`` (SHA-256 of every
  file, lineage, audit record) — a complete governed version;
* MLflow with defaults: ``mlflow.sklearn.log_model(model, registered_model_name=...)`` (MLflow
  infers the requirements by loading the model in a subprocess);
* MLflow with explicit requirements and a signature: the fastest MLflow path, and the limit;
* MLflow with explicit requirements, a signature and an input example: an input example makes
  MLflow load the saved model a second time to predict on it (and only warn if that fails). Ours
  logs an input example too but tries it on the in-memory model, parsed as ``aiw serve`` would
  (``aiw.mlops.tracking._SklearnFlavor``), and refuses the model if it fails.

The peer's signature is inferred once, outside its timing; ours infers its own inside (from the
held-out rows it also predicts for ``verification.json``).

Goal: ours within 1.5x of the limit. Runs are interleaved (ours, peer, ours, peer ...) so that a
busy machine slows both alike; medians are reported, and beside them the ratio of the fastest runs
and the median of per-round ratios, which a machine loaded by other work disturbs less.

Run: ``.venv/bin/python benchmarks/bench_registry.py [--repeats 5] [--default-repeats 2]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result


def _interleaved(fns: dict[str, Any], repeats: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            out[name].append(time.perf_counter() - t0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--default-repeats", type=int, default=2, help="repeats of the slow MLflow-defaults path")
    args = parser.parse_args()

    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from threadpoolctl import threadpool_limits

    from aiw.data.sample import generate
    from aiw.governance.identity import Principal
    from aiw.mlops.registry import ModelRegistry
    from aiw.mlops.tracking import Tracker, default_pip_requirements
    from aiw.mlops.training import (
        CATEGORICAL_FEATURES,
        FRAUD_TRUSTED_TYPES,
        LABEL,
        NUMERIC_FEATURES,
        build_fraud_pipeline,
        load_claim_features,
    )
    from aiw.settings import build_settings
    from aiw.workspace import Workspace

    tmp = Path(tempfile.mkdtemp(prefix="bench-registry-"))
    try:
        for var in [v for v in os.environ if v.startswith("AIW_")]:
            del os.environ[var]
        ws = Workspace(build_settings(home=tmp / "ws")).init()
        generate(ws, rows=3000, seed=7)
        frame, _, _ = load_claim_features(ws)
        features = [*NUMERIC_FEATURES, *CATEGORICAL_FEATURES]
        model = build_fraud_pipeline()
        with threadpool_limits(1, "openmp"):
            model.fit(frame[features], frame[LABEL])
        X = frame[features].head(500)
        tracker, registry = Tracker(ws), ModelRegistry(ws)
        who = Principal("bench", "data_scientist")
        exp_id = tracker._activate()

        register_s: list[float] = []

        def ours() -> None:
            logged = tracker.log_model(model, "bench-governed", X, trusted_types=list(FRAUD_TRUSTED_TYPES))
            t0 = time.perf_counter()
            registry.register(logged, "bench-governed", who)
            register_s.append(time.perf_counter() - t0)

        signature = infer_signature(X, model.predict(X))

        def mlflow_explicit() -> None:
            with mlflow.start_run(experiment_id=exp_id), threadpool_limits(1, "openmp"):
                mlflow.sklearn.log_model(
                    model,
                    name="model",
                    registered_model_name="bench-mlflow-explicit",
                    signature=signature,
                    pip_requirements=default_pip_requirements(),
                    skops_trusted_types=list(FRAUD_TRUSTED_TYPES),
                )

        def mlflow_example() -> None:
            with mlflow.start_run(experiment_id=exp_id), threadpool_limits(1, "openmp"):
                mlflow.sklearn.log_model(
                    model,
                    name="model",
                    registered_model_name="bench-mlflow-example",
                    signature=signature,
                    input_example=X.head(5),
                    pip_requirements=default_pip_requirements(),
                    skops_trusted_types=list(FRAUD_TRUSTED_TYPES),
                )

        def mlflow_default() -> None:
            with mlflow.start_run(experiment_id=exp_id):
                mlflow.sklearn.log_model(
                    model,
                    name="model",
                    registered_model_name="bench-mlflow-default",
                    skops_trusted_types=list(FRAUD_TRUSTED_TYPES),
                )

        ours()  # warm-up: first-use imports and MLflow's table creation are not what we measure
        mlflow_explicit()
        mlflow_example()
        fast = _interleaved({"ours": ours, "explicit": mlflow_explicit, "example": mlflow_example}, args.repeats)
        t_ours, t_explicit, t_example = fast["ours"], fast["explicit"], fast["example"]
        t_default = _interleaved({"default": mlflow_default}, args.default_repeats)["default"]
        files = len(registry.get("bench-governed", 1).manifest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    med = {
        k: statistics.median(v)
        for k, v in (("ours", t_ours), ("explicit", t_explicit), ("example", t_example), ("default", t_default))
    }
    fastest = {"ours": min(t_ours), "explicit": min(t_explicit), "example": min(t_example)}

    def paired(peer: list[float]) -> float:  # ours / peer within each round, then the median
        return round(statistics.median(o / p for o, p in zip(t_ours, peer, strict=True)), 3)

    payload = {
        "model": "claims-fraud pipeline (HistGradientBoostingClassifier, 200 trees) fitted on 3,000 claims",
        "ours": {
            "what": "Tracker.log_model + ModelRegistry.register (checksums, lineage, audit)",
            "seconds": t_ours,
            "median_s": med["ours"],
            "files_checksummed": files,
            "register_step_median_s": statistics.median(register_s[2:] or register_s),
        },
        "mlflow_explicit": {
            "what": "mlflow.sklearn.log_model(registered_model_name=..., signature, pip_requirements)",
            "seconds": t_explicit,
            "median_s": med["explicit"],
        },
        "mlflow_explicit_with_example": {
            "what": "as mlflow_explicit, plus input_example (MLflow then reloads the model to validate it)",
            "seconds": t_example,
            "median_s": med["example"],
        },
        "mlflow_default": {
            "what": "mlflow.sklearn.log_model(registered_model_name=...) with defaults",
            "seconds": t_default,
            "median_s": med["default"],
        },
        "ratio_ours_to_explicit": round(med["ours"] / med["explicit"], 3),
        "ratio_ours_to_explicit_with_example": round(med["ours"] / med["example"], 3),
        "ratio_ours_to_default": round(med["ours"] / med["default"], 3),
        "fastest_s": fastest,
        "ratio_of_fastest_ours_to_explicit": round(fastest["ours"] / fastest["explicit"], 3),
        "ratio_of_fastest_ours_to_explicit_with_example": round(fastest["ours"] / fastest["example"], 3),
        "ratio_of_fastest_example_to_explicit": round(fastest["example"] / fastest["explicit"], 3),
        "paired_ratio_ours_to_explicit": paired(t_explicit),
        "paired_ratio_ours_to_explicit_with_example": paired(t_example),
        "goal_within_1_5x_of_explicit": med["ours"] <= 1.5 * med["explicit"],
        "load_average_at_end": os.getloadavg(),
    }
    path = write_result("registry", payload)
    print(
        f"governed registration {med['ours']:.3f} s; MLflow explicit {med['explicit']:.3f} s "
        f"(ratio {payload['ratio_ours_to_explicit']}); with input example {med['example']:.3f} s "
        f"(ratio {payload['ratio_ours_to_explicit_with_example']}); MLflow defaults {med['default']:.2f} s"
    )
    print(
        f"fastest runs: ours {fastest['ours']:.3f} s, explicit {fastest['explicit']:.3f} s "
        f"(ratio {payload['ratio_of_fastest_ours_to_explicit']}), with example {fastest['example']:.3f} s "
        f"(ratio {payload['ratio_of_fastest_ours_to_explicit_with_example']}); paired ratios "
        f"{payload['paired_ratio_ours_to_explicit']} / {payload['paired_ratio_ours_to_explicit_with_example']}"
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
