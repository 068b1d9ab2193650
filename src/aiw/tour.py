"""The end-to-end tour behind ``aiw demo``: a fresh workspace, embedded defaults, every capability.

Each capability contributes one step, listed in :data:`STEPS` as a dotted path to a function
``step(ctx: TourContext) -> None``. Steps share results through ``ctx.facts``.
"""

from __future__ import annotations

import importlib
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from aiw.settings import Settings
    from aiw.workspace import Workspace

__all__ = ["STEPS", "TourContext", "run_tour"]

STEPS: list[tuple[str, str]] = [
    ("Workspace and identities", "aiw.tour:step_workspace"),
    ("Sample data", "aiw.data.sample:tour_step"),
    ("Data platform", "aiw.data.tour:tour_step"),
    ("Rapid insights", "aiw.sql.tour:tour_step"),
    ("Document Q&A", "aiw.rag.tour:tour_step"),
    ("Monitoring: drift and alerts", "aiw.mlops.monitoring.tour:tour_step"),
    ("MLOps lifecycle", "aiw.mlops.tour:tour_step"),
    ("Safe rollout", "aiw.mlops.rollout.tour:tour_step"),
]
"""(title, ``module:function``) in the order the tour runs them."""


@dataclass
class TourContext:
    """What a tour step gets: the workspace, the console and facts left by earlier steps."""

    workspace: Workspace
    settings: Settings
    console: Console
    rows: int
    seed: int
    facts: dict[str, Any] = field(default_factory=dict)


def step_workspace(ctx: TourContext) -> None:
    """Create an admin, a data scientist and an approver key; show the audit chain is intact."""
    keys = {}
    for role in ("admin", "data_scientist", "approver", "analyst"):
        _, secret = ctx.workspace.keys.create(f"tour-{role}", role, actor="tour")
        keys[role] = secret
    ctx.facts["keys"] = keys
    report = ctx.workspace.audit.verify()
    ctx.console.print(
        f"  workspace [bold]{ctx.workspace.root}[/], metadata {ctx.workspace.db.dialect}; "
        f"4 API keys created; audit chain intact over {report.checked} records"
    )


def run_tour(*, rows: int, seed: int, home: Path | None, console: Console) -> TourContext:
    """Run every step on a fresh workspace and print what each did and how long it took."""
    from aiw.settings import build_settings
    from aiw.workspace import Workspace

    overrides: dict[str, Any] = {"home": home} if home else {}
    settings = build_settings(**overrides)
    root = Path(settings.home).expanduser().resolve()
    if root.exists():
        if not (root / ".aiw-workspace").exists() and any(root.iterdir()):
            from aiw.errors import ConflictError

            raise ConflictError(
                f"{root} exists and is not an aiw workspace; the tour will not overwrite it",
                hint="pass --home to an empty or new folder",
            )
        shutil.rmtree(root)
    ctx = TourContext(Workspace(settings).init(), settings, console, rows, seed)
    started = time.perf_counter()
    console.rule("[bold]Enterprise AI Workflows: the tour")
    for number, (title, path) in enumerate(STEPS, start=1):
        module, _, name = path.partition(":")
        fn = getattr(importlib.import_module(module), name)
        console.print(f"\n[bold cyan]{number}. {title}[/]")
        t0 = time.perf_counter()
        fn(ctx)
        console.print(f"  [dim]({time.perf_counter() - t0:.1f} s)[/]")
    console.rule(f"[bold green]Tour complete in {time.perf_counter() - started:.0f} s")
    console.print(f"Workspace: {ctx.workspace.root}. Next: 'aiw serve', 'aiw ui', 'aiw --help'.")
    return ctx
