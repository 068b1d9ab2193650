"""Top-level commands: init, status, serve, ui, demo."""

from __future__ import annotations

from pathlib import Path

import typer

from aiw.cli._common import console, table, workspace

__all__ = ["register"]


def init() -> None:
    """Create the workspace at $AIW_HOME (default ./.aiw) and its metadata schema."""
    ws = workspace(create=False).init()
    console.print(f"Workspace ready at [bold]{ws.root}[/]")


def status() -> None:
    """Show where each concern lives (embedded file or server URL) and whether it answers."""
    ws = workspace()
    rows = ws.status()
    table(
        f"Workspace {ws.root}",
        ["concern", "backend", "location", "reachable", "detail"],
        [
            (
                r.concern,
                r.backend,
                r.location,
                "yes" if r.reachable else ("[red]NO[/]" if r.required else "no"),
                r.detail if r.required else f"{r.detail} (optional)",
            )
            for r in rows
        ],
    )
    if not all(r.reachable for r in rows if r.required):
        raise typer.Exit(1)


def serve(
    host: str = typer.Option(None, help="Interface to bind (default: AIW_API__HOST)."),
    port: int = typer.Option(None, help="Port (default: AIW_API__PORT)."),
    workers: int = typer.Option(1, min=1, max=64, help="Worker processes."),
) -> None:
    """Run the REST API (OpenAPI docs at /docs)."""
    import uvicorn

    from aiw.settings import load_settings

    settings = load_settings()
    workspace()
    uvicorn.run(
        "aiw.api.app:create_app",
        factory=True,
        host=host or settings.api.host,
        port=port or settings.api.port,
        workers=workers,
        log_level=settings.log_level.lower(),
    )


def ui(
    port: int = typer.Option(8501, min=1, max=65535, help="Port of the dashboard."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
) -> None:
    """Open the web dashboard (Streamlit)."""
    import os
    import subprocess
    import sys

    workspace()
    home = Path(__file__).resolve().parent.parent / "dashboard" / "Home.py"
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(home),
        "--server.port",
        str(port),
        "--server.address",
        host,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]
    if os.name == "posix":
        # Become Streamlit rather than wait on it: a supervisor's SIGTERM (systemd, a test) then
        # reaches the server itself instead of leaving it orphaned behind a dead parent.
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, cmd)
    raise typer.Exit(subprocess.call(cmd))


def demo(
    rows: int = typer.Option(5_000, min=100, help="Claims to generate for the tour."),
    seed: int = typer.Option(7, help="Random seed."),
    home: Path = typer.Option(None, help="Workspace folder for the tour (default: $AIW_HOME)."),
) -> None:
    """Run the end-to-end tour on a fresh workspace with embedded defaults."""
    from aiw.tour import run_tour

    run_tour(rows=rows, seed=seed, home=home, console=console)


def register(app: typer.Typer) -> None:
    """Add the top-level commands to ``app``."""
    for fn in (init, status, serve, ui, demo):
        app.command()(fn)
