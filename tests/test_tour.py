"""The tour behind `make demo`, end to end on embedded defaults, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_runs_every_step(tmp_path: Path) -> None:
    from aiw.tour import STEPS

    env = {k: v for k, v in os.environ.items() if not k.startswith("AIW_")}
    home = tmp_path / "tour"
    result = subprocess.run(
        [sys.executable, "-c", "from aiw.cli import main; main()", "demo", "--rows", "3000", "--home", str(home)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for number, (title, _) in enumerate(STEPS, start=1):
        assert f"{number}. {title}" in result.stdout
    assert "Tour complete" in result.stdout
    assert (home / ".aiw-workspace").exists()


def test_demo_refuses_to_overwrite_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIW_")}
    result = subprocess.run(
        [sys.executable, "-c", "from aiw.cli import main; main()", "demo", "--home", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 4 and "not an aiw workspace" in result.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"
