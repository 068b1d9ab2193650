"""Session fixtures of the MLOps tests: ONE workspace, ONE trained fraud model, shared by all.

Tests isolate themselves by registering the shared logged model under their own model name
(registration takes a fraction of a second), so no test needs a training run of its own.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlops_helpers import People, make_workspace, promote, register


@pytest.fixture(scope="session")
def mlops_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session workspace's folder."""
    return tmp_path_factory.mktemp("mlops") / "ws"


@pytest.fixture(scope="session")
def mlops_ws(mlops_home: Path) -> Iterator[Any]:
    """The session workspace with 3,000 generated claims."""
    from aiw.data.sample import generate

    ws = make_workspace(mlops_home)
    generate(ws, rows=3000, seed=7)
    yield ws
    ws.db.dispose()


@pytest.fixture(scope="session")
def trained(mlops_ws: Any) -> Any:
    """The one fraud model of the session (trained and logged to MLflow, not registered)."""
    from aiw.mlops.training import train_claims_fraud

    return train_claims_fraud(mlops_ws, name="claims-fraud", seed=0)


@pytest.fixture(scope="session")
def people() -> People:
    """Principals of each role (two data scientists and two approvers)."""
    from aiw.governance.identity import Principal

    return People(
        Principal("dana", "data_scientist"),
        Principal("dmitri", "data_scientist"),
        Principal("alex", "approver"),
        Principal("amira", "approver"),
        Principal("root", "admin"),
        Principal("vic", "viewer"),
    )


@pytest.fixture
def model_name() -> str:
    """A fresh model name for one test."""
    return f"fraud-{secrets.token_hex(4)}"


@pytest.fixture(scope="session")
def champion(mlops_ws: Any, trained: Any, people: People) -> str:
    """A model name whose version 1 is @champion (shared: tests must not move its aliases)."""
    name = "claims-fraud"
    mv = register(mlops_ws, trained, name, people.ds)
    promote(mlops_ws, name, mv.version, people)
    return name


@pytest.fixture(scope="session")
def api_keys(mlops_ws: Any) -> dict[str, str]:
    """API key secrets per role (and a second approver)."""
    keys = {}
    for role in ("viewer", "data_scientist", "approver", "admin"):
        _, keys[role] = mlops_ws.keys.create(f"key-{role}", role, actor="tests")
    _, keys["approver2"] = mlops_ws.keys.create("key-approver-2", "approver", actor="tests")
    return keys


@pytest.fixture(scope="session")
def client(mlops_ws: Any, champion: str) -> Iterator[Any]:
    """A TestClient over the API of the session workspace."""
    from fastapi.testclient import TestClient

    from aiw.api.app import create_app

    with TestClient(create_app(mlops_ws.settings)) as c:
        yield c
