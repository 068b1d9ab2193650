"""``aiw sql``: run one read-only query on the warehouse, with the ``ai_*`` functions at hand."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from aiw.cli._common import console, err_console, fail, table, workspace

__all__ = ["register"]

_FORMATS = ("table", "csv", "json", "parquet")


def sql(
    query: str = typer.Argument(..., help="One SELECT statement ('-' reads it from stdin)."),
    fmt: str = typer.Option(
        None, "--format", "-f", help="table | csv | json | parquet (default: table, or the --out file's suffix)."
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Write the result to this file (atomically)."),
    limit: int = typer.Option(None, "--limit", min=1, help="Most rows returned (default: AIW_SQL__ROW_LIMIT)."),
    timeout: float = typer.Option(
        None, "--timeout", min=0.001, help="Seconds before the query is interrupted (default: AIW_SQL__TIMEOUT_S)."
    ),
) -> None:
    """Run a read-only SQL query; statements that write or attach are refused.

    Example: aiw sql "SELECT claim_type, avg(ai_sentiment(adjuster_notes)) FROM claims GROUP BY 1"
    """
    from aiw.sql.export import format_for, to_bytes, write_atomic
    from aiw.sql.runner import run_query

    if fmt is not None and fmt not in _FORMATS:
        fail(f"--format must be one of {', '.join(_FORMATS)}; got {fmt!r}", 2)
    if query == "-":
        query = sys.stdin.read()
    if out is not None and fmt == "table":
        fail("--format table prints to the screen; use csv, json or parquet with --out", 2)
    if out is None and fmt == "parquet":
        fail("--format parquet needs --out FILE", 2)
    result = run_query(workspace(), query, row_limit=limit, timeout_s=timeout)
    note = f"{result.row_count:,} rows in {result.elapsed_s * 1000:.0f} ms" + (
        f" (truncated at the limit of {result.row_count:,}; raise --limit)" if result.truncated else ""
    )
    for warning in result.warnings[:20]:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if out is not None:
        path = write_atomic(out, to_bytes(result.table, format_for(out, fmt)))
        err_console.print(f"{note}; written to {path}", highlight=False)
        return
    if fmt in ("csv", "json"):
        sys.stdout.buffer.write(to_bytes(result.table, "csv" if fmt == "csv" else "json"))
        sys.stdout.flush()
        err_console.print(note, highlight=False)
        return
    table(None, result.columns, [[_cell(v) for v in row] for row in result.rows()])
    console.print(f"[dim]{note}[/]", highlight=False)


def _cell(value: object) -> str:
    from rich.markup import escape

    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    # Escaped: cell text like "[EMAIL]" must print as it is, not be read as rich markup.
    return escape(text if len(text) <= 200 else text[:197] + "...")


def register(app: typer.Typer) -> None:
    """Add ``aiw sql`` to ``app``."""
    app.command("sql")(sql)
