"""Fixtures of the rapid-insights tests: workspaces shared per module or session, built once."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

SAMPLE_ROWS = 50_000
SAMPLE_SEED = 11
SAMPLE_END = "2025-06-30"


def _clean_env() -> pytest.MonkeyPatch:
    mp = pytest.MonkeyPatch()
    for var in list(os.environ):
        if var.startswith("AIW_") and not var.startswith("AIW_TEST_"):
            mp.delenv(var)
    return mp


@pytest.fixture(scope="session")
def make_workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Any]]:
    """``make_workspace(name, **setting_overrides)``: an initialised workspace under a session tmp dir."""
    from aiw.settings import build_settings
    from aiw.workspace import Workspace

    mp = _clean_env()
    made: list[Any] = []

    def make(name: str, **overrides: Any) -> Any:
        home = tmp_path_factory.mktemp(name)
        ws = Workspace(build_settings(home=Path(home) / "ws", **overrides)).init()
        made.append(ws)
        return ws

    yield make
    for ws in made:
        ws.db.dispose()
    mp.undo()


@pytest.fixture(scope="session")
def sample_ws(make_workspace: Callable[..., Any]) -> Any:
    """A workspace with the generated insurer sample (50,000 claims), shared by the session."""
    from aiw.data.sample import generate

    ws = make_workspace("sample")
    generate(ws, rows=SAMPLE_ROWS, seed=SAMPLE_SEED, end_date=SAMPLE_END)
    return ws


@pytest.fixture(scope="session")
def model_ws(make_workspace: Callable[..., Any]) -> Any:
    """A warehouse table where ``risk`` and ``channel`` predict ``flag`` (and ``cost``)."""
    rng = np.random.default_rng(5)
    n = 400
    risk = rng.normal(size=n)
    channel = rng.choice(["web", "phone", "agent"], size=n)
    logit = 2.5 * risk + np.where(channel == "agent", 1.5, -0.5)
    frame = pd.DataFrame(
        {
            "row_id": np.arange(n),
            "risk": risk,
            "channel": channel,
            "noise": rng.normal(size=n),
            "opened": pd.date_range("2024-01-01", periods=n, freq="D"),
            "note": [f"free text note number {i} about nothing in particular at all, really" for i in range(n)],
            "flag": rng.random(n) < 1 / (1 + np.exp(-logit)),
            "cost": 100 + 40 * risk + rng.normal(scale=5, size=n),
        }
    )
    ws = make_workspace("baseline")
    conn = ws.connect_warehouse(ai_functions=False)
    try:
        conn.register("frame", frame)
        conn.execute("CREATE TABLE accounts AS SELECT * FROM frame")
    finally:
        conn.close()
    return ws


@pytest.fixture(scope="session")
def notes_ws(make_workspace: Callable[..., Any]) -> Any:
    """A workspace whose warehouse holds a small ``notes`` table for the function tests."""
    ws = make_workspace("notes")
    conn = ws.connect_warehouse(ai_functions=False)
    try:
        conn.execute("CREATE TABLE notes(id INTEGER, txt VARCHAR, question VARCHAR)")
        conn.executemany(
            "INSERT INTO notes VALUES (?, ?, ?)",
            [
                (1, "The adjuster was wonderful and the claim was paid quickly. Great service!", "Who was wonderful?"),
                (
                    2,
                    "Terrible experience, the claim was denied and nobody answered my calls.",
                    "What happened to the claim?",
                ),
                (3, None, "Anything?"),
                (4, "The adjuster was wonderful and the claim was paid quickly. Great service!", None),
                (5, "My car was hit by a truck on the motorway and the bumper is destroyed.", "What was damaged?"),
            ],
        )
    finally:
        conn.close()
    return ws
