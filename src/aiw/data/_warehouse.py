"""Short-lived warehouse connections for the data platform's readers.

The data platform reads the warehouse in short bursts (checks, exports, analytics) and must not
keep DuckDB's file lock between them: dbt, the sample generator and other processes need it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

    from aiw.workspace import Workspace

__all__ = ["quote_ident", "split_table", "table_exists", "warehouse"]


@contextmanager
def warehouse(workspace: Workspace, *, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """A warehouse connection for the length of a ``with`` block, closed afterwards.

    A read-only connection falls back to a read-write one when this process already holds the
    database open read-write (DuckDB refuses two configurations of one file in one process).
    """
    import duckdb

    try:
        conn = workspace.connect_warehouse(read_only=read_only, ai_functions=False)
    except duckdb.ConnectionException:
        if not read_only:
            raise
        conn = workspace.connect_warehouse(read_only=False, ai_functions=False)
    try:
        yield conn
    finally:
        conn.close()


def quote_ident(name: str) -> str:
    """A SQL identifier in double quotes, with embedded quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def split_table(qualified: str) -> tuple[str, str]:
    """``schema.table`` -> (schema, table); a bare name is in ``main``."""
    schema, _, table = qualified.rpartition(".")
    return (schema or "main", table)


def table_exists(conn: Any, qualified: str) -> bool:
    """Whether ``schema.table`` exists (as a table or a view) in the warehouse."""
    schema, table = split_table(qualified)
    row = conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [schema, table]
    ).fetchone()
    return bool(row and row[0])
