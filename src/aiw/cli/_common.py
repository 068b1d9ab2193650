"""What every CLI command shares: the console, the workspace, the actor and error exits."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

from rich.console import Console

from aiw.errors import (
    AiwError,
    AuthError,
    BackendError,
    ConfigError,
    ConflictError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    PolicyViolation,
)

if TYPE_CHECKING:
    from rich.progress import Progress

    from aiw.workspace import Workspace

__all__ = ["EXIT_CODES", "actor", "console", "err_console", "fail", "progress", "table", "workspace"]

console = Console()
err_console = Console(stderr=True)

EXIT_CODES: dict[type[AiwError], int] = {
    InvalidInputError: 2,
    NotFoundError: 3,
    ConflictError: 4,
    AuthError: 5,
    PolicyViolation: 5,
    IntegrityError: 6,
    BackendError: 7,
    ConfigError: 78,
}
"""Exit code per error type (the most specific match wins; any other AiwError exits 1)."""


def exit_code(exc: AiwError) -> int:
    """The exit code for ``exc``."""
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return 1


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a one-line reason to stderr and exit non-zero."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise SystemExit(code)


def actor() -> str:
    """Who runs the CLI: ``$AIW_ACTOR`` or ``cli:<os user>``."""
    explicit = os.environ.get("AIW_ACTOR", "").strip()
    if explicit:
        return explicit
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in a bare container
        return f"cli:uid{os.getuid()}"


def workspace(*, create: bool = True) -> Workspace:
    """The workspace of the current settings, made on first use."""
    from aiw.settings import load_settings
    from aiw.workspace import Workspace

    ws = Workspace(load_settings())
    return ws.ensure() if create else ws


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print rows as a rich table."""
    from rich.table import Table

    t = Table(title=title, show_lines=False, header_style="bold")
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*["" if v is None else str(v) for v in row])
    console.print(t)


@contextmanager
def progress(transient: bool = True) -> Iterator[Progress]:
    """A rich progress bar that writes to stderr and hides itself when output is not a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=transient,
        disable=not sys.stderr.isatty(),
    ) as bar:
        yield bar
