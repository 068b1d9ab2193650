"""The read-only query runner behind ``aiw sql``, ``POST /v1/sql`` and the dashboard's SQL editor.

A query runs when it is exactly one SELECT-like statement (SELECT, WITH, FROM-first, VALUES,
DESCRIBE, SHOW, SUMMARIZE) that reads only tables: statements that write,
attach, load, copy, export or change settings are refused before anything runs, and so are the
table functions that read files or servers directly (``read_csv``, ``read_parquet``, a quoted
path in FROM ...). As defence in depth the connection is opened read-only. A timer interrupts
the query at the timeout, and at most ``row_limit`` rows are fetched (``limit + 1`` are read to
tell whether the result was cut).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiw.errors import InvalidInputError

if TYPE_CHECKING:
    import pyarrow as pa

    from aiw.workspace import Workspace

__all__ = ["QueryResult", "QueryTimeoutError", "check_read_only", "jsonable", "run_query"]

_MAX_SQL_CHARS = 1_000_000
_STREAMING_BUFFER = "64MB"
_ALLOWED_TABLE_FUNCTIONS = frozenset(
    {
        "range",
        "generate_series",
        "unnest",
        "query",
        "query_table",
        "ai_forecast",
        "ai_detect_anomalies",
        "json_each",
        "json_tree",
        "summary",
        "repeat",
        "repeat_row",
        "pragma_table_info",
        "pragma_show",
        "pragma_storage_info",
        "pragma_database_size",
        "pragma_version",
        "pragma_platform",
        "pragma_metadata_info",
        "duckdb_tables",
        "duckdb_views",
        "duckdb_columns",
        "duckdb_schemas",
        "duckdb_databases",
        "duckdb_functions",
        "duckdb_types",
        "duckdb_constraints",
        "duckdb_indexes",
        "duckdb_keywords",
        "duckdb_sequences",
        "duckdb_settings",
        "duckdb_extensions",
        "duckdb_dependencies",
        "show",
        "show_tables",
        "show_databases",
        "show_tables_expanded",
        "describe",
    }
)
"""Table functions a read-only query may call: none of them touches files or other servers."""
_SOURCE_TAKING = {"query": 0, "ai_forecast": 0, "ai_detect_anomalies": 0}
"""Table functions whose argument is itself SQL (or a table name), checked recursively."""
_PATH_LIKE = re.compile(
    r"[/\\:]|\.(csv|tsv|txt|parquet|json|jsonl|ndjson|gz|zst|xlsx|db|duckdb|sqlite|arrow)$", re.IGNORECASE
)
_TABLE_NAME = re.compile(r'^("[^"]+"|[A-Za-z_][A-Za-z0-9_$]*)(\.("[^"]+"|[A-Za-z_][A-Za-z0-9_$]*)){0,2}$')
_QUERY_LIKE = re.compile(r"^\s*(select|with|from|values|\()", re.IGNORECASE)


class QueryTimeoutError(InvalidInputError):
    """The query ran past its timeout and was interrupted."""


@dataclass(frozen=True)
class QueryResult:
    """What a query returned.

    Attributes:
        table: The rows (at most the row limit), as Arrow.
        columns: The column names.
        truncated: Whether the query had more rows than the limit.
        elapsed_s: Wall time of the query and the fetch.
        warnings: Rows an ``ai_*`` function turned to NULL, and why.
    """

    table: pa.Table
    columns: list[str]
    truncated: bool
    elapsed_s: float
    warnings: list[str] = field(default_factory=list)

    @property
    def row_count(self) -> int:
        """Rows returned."""
        return int(self.table.num_rows)

    def rows(self) -> list[list[Any]]:
        """The rows as JSON-friendly lists (timestamps ISO 8601, decimals as floats, bytes as hex)."""
        return (
            [[jsonable(v) for v in row] for row in zip(*(c.to_pylist() for c in self.table.columns), strict=True)]
            if self.table.num_columns
            else []
        )


def jsonable(value: Any) -> Any:
    """``value`` as JSON can hold it: ISO 8601 times, floats for decimals, hex for bytes, None for NaN."""
    import datetime as dt
    import decimal
    import math

    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def _constant_text(node: dict[str, Any]) -> str | None:
    if node.get("class") == "CONSTANT":
        value = node.get("value") or {}
        if not value.get("is_null") and isinstance(value.get("value"), str):
            return str(value["value"])
    return None


def _refuse(what: str) -> InvalidInputError:
    return InvalidInputError(
        f"write statements are not allowed: {what}; use a read-only SELECT",
        hint="queries run read-only; only SELECT (WITH, FROM, VALUES, DESCRIBE) is accepted",
    )


def check_read_only(conn: Any, sql: str, *, _depth: int = 0) -> set[str]:
    """Refuse ``sql`` unless it is one statement that only reads tables.

    Returns:
        The names (lower case) of the scalar functions the statement calls, from its parse tree
        (so a name inside a string or a comment is not one).

    Raises:
        InvalidInputError: the SQL does not parse, holds several statements, is not a SELECT, or
            reads files or servers through a table function.
    """
    import duckdb

    if not isinstance(sql, str) or not sql.strip():
        raise InvalidInputError("The query is empty", hint="pass one SELECT statement")
    if len(sql) > _MAX_SQL_CHARS:
        raise InvalidInputError(f"The query is {len(sql):,} characters; the limit is {_MAX_SQL_CHARS:,}")
    try:
        statements = conn.extract_statements(sql)
    except duckdb.Error as exc:
        raise InvalidInputError(f"The query does not parse: {_message(exc)}", hint="fix the SQL") from exc
    if len(statements) != 1:
        raise InvalidInputError(
            f"Exactly one statement is allowed; got {len(statements)}",
            hint="send statements one at a time, without trailing ';' separated parts",
        )
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:  # type: ignore[attr-defined]
        raise _refuse(f"{kind.name} statement")
    try:
        tree = json.loads(conn.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])
    except duckdb.Error as exc:  # not serialisable: PRAGMA-like statements parsed as SELECT
        raise _refuse(f"{sql.strip().split()[0].upper()} statement") from exc
    if tree.get("error"):
        raise _refuse(f"{sql.strip().split()[0].upper()} statement")
    called: set[str] = set()
    for node in _walk(tree.get("statements", [])):
        node_type = node.get("type")
        if node_type == "FUNCTION":
            called.add(str(node.get("function_name", "")).lower())
        elif node_type == "TABLE_FUNCTION":
            fn = node.get("function") or {}
            name = str(fn.get("function_name", "")).lower()
            if name not in _ALLOWED_TABLE_FUNCTIONS:
                raise InvalidInputError(
                    f"The table function {name}() is not allowed in read-only queries",
                    hint="query tables of the warehouse; file and server readers are refused",
                )
            children = fn.get("children") or []
            if name in _SOURCE_TAKING and children and _depth < 3:
                source = _constant_text(children[_SOURCE_TAKING[name]])
                if source is not None:
                    if _QUERY_LIKE.match(source):
                        called |= check_read_only(conn, source, _depth=_depth + 1)
                    elif not _TABLE_NAME.match(source.strip()):
                        raise InvalidInputError(
                            f"{source!r} is neither a table name nor a SELECT query",
                            hint="only tables of the warehouse may be read",
                        )
            if name == "query_table":
                for child in children:
                    text = _constant_text(child)
                    if text is not None and _PATH_LIKE.search(text):
                        raise InvalidInputError(f"{text!r} looks like a file path; only tables may be read")
        elif node_type == "BASE_TABLE":
            name = str(node.get("table_name", ""))
            if _PATH_LIKE.search(name):
                raise InvalidInputError(
                    f"Reading the file {name!r} directly is not allowed",
                    hint="load it into the warehouse first ('aiw data ...')",
                )
    return called


def _message(exc: Exception) -> str:
    text = str(exc).strip()
    return text.split("\n\nAt:\n", 1)[0]  # DuckDB appends the Python traceback of a failed UDF


def _open(workspace: Workspace) -> Any:
    """A read-only warehouse connection (the warehouse file is created first when missing)."""
    import duckdb

    if not workspace.warehouse_path.exists():
        workspace.connect_warehouse(ai_functions=False).close()
    try:
        return workspace.connect_warehouse(read_only=True)
    except duckdb.ConnectionException:
        # This process already holds the warehouse open for writing (DuckDB allows one mode per
        # file and process); the statement check above still refuses every write.
        return workspace.connect_warehouse(read_only=False)


def run_query(
    workspace: Workspace, sql: str, *, row_limit: int | None = None, timeout_s: float | None = None
) -> QueryResult:
    """Run one read-only query on the workspace's warehouse.

    Args:
        workspace: The workspace.
        sql: One SELECT-like statement; the ``ai_*`` functions and macros are available.
        row_limit: Most rows returned (default ``AIW_SQL__ROW_LIMIT``).
        timeout_s: Seconds before the query is interrupted (default ``AIW_SQL__TIMEOUT_S``).

    Returns:
        A :class:`QueryResult`; ``truncated`` says whether rows were cut at ``row_limit``.

    Raises:
        InvalidInputError: the SQL is refused or fails (with DuckDB's message).
        QueryTimeoutError: the query ran past ``timeout_s``.
        ConfigError: an ``ai_*`` function needs something that is not configured.
    """
    import duckdb
    import pyarrow as pa

    from aiw.sql.connection import ai_context
    from aiw.sql.functions import EMBEDDING_FUNCTION_NAMES

    limit = workspace.settings.sql.row_limit if row_limit is None else row_limit
    timeout = workspace.settings.sql.timeout_s if timeout_s is None else timeout_s
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise InvalidInputError(f"The 'row_limit' parameter must be a positive integer. Got {limit!r} instead.")
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not timeout > 0:
        raise InvalidInputError(f"The 'timeout_s' parameter must be a positive number. Got {timeout!r} instead.")
    conn = _open(workspace)
    conn.execute("SET enable_progress_bar = false")  # results go to callers, not a terminal
    # With DuckDB's default 1 MB streaming buffer its threads wait on this reader whenever the
    # buffer is full, and Python UDFs (the ai_* functions) ran about one chunk at a time; with
    # room for more they run side by side (benchmarks/bench_sql_sentiment.py).
    conn.execute(f"SET streaming_buffer_size = '{_STREAMING_BUFFER}'")
    ctx = ai_context(workspace)
    seq = ctx.seq
    timed_out = threading.Event()

    def interrupt() -> None:
        timed_out.set()
        conn.interrupt()

    timer = threading.Timer(timeout, interrupt)
    timer.daemon = True
    started = time.perf_counter()
    try:
        if not check_read_only(conn, sql).isdisjoint(EMBEDDING_FUNCTION_NAMES):
            # The embedding model already keeps every core busy (torch's threads); a DuckDB worker
            # thread running the UDF leaves this client thread spinning on the other core, so
            # the query runs on this thread alone (5% faster in an interleaved comparison, and the
            # embedding cost dwarfs any scan the query adds).
            conn.execute("SET threads = 1")
        ctx.last_error = None
        timer.start()
        try:
            reader = conn.execute(sql).fetch_record_batch(min(limit + 1, 100_000))
            batches, rows = [], 0
            for batch in reader:
                batches.append(batch)
                rows += batch.num_rows
                if rows > limit:
                    break
            table = pa.Table.from_batches(batches, schema=reader.schema)
        except duckdb.InterruptException as exc:
            raise QueryTimeoutError(
                f"The query ran longer than {timeout:g} s and was interrupted",
                hint="filter or aggregate more, or raise the timeout",
            ) from exc
        except duckdb.Error as exc:
            if timed_out.is_set():
                raise QueryTimeoutError(
                    f"The query ran longer than {timeout:g} s and was interrupted",
                    hint="filter or aggregate more, or raise the timeout",
                ) from exc
            if ctx.last_error is not None:
                raise ctx.last_error from exc
            raise InvalidInputError(f"The query failed: {_message(exc)}", hint="fix the SQL") from exc
    finally:
        timer.cancel()
        conn.close()
    elapsed = time.perf_counter() - started
    truncated = table.num_rows > limit
    if truncated:
        table = table.slice(0, limit)
    warnings = [f"{w.function}: {w.message}" for w in ctx.warnings_since(seq)]
    return QueryResult(
        table=table, columns=list(table.column_names), truncated=truncated, elapsed_s=elapsed, warnings=warnings
    )
