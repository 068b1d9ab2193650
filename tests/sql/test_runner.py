"""The read-only query runner: what it refuses, the row limit, the timeout, the errors."""

from __future__ import annotations

from typing import Any

import pytest

from aiw.errors import InvalidInputError
from aiw.sql.runner import QueryTimeoutError, run_query

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("INSERT INTO notes VALUES (9, 'x', 'y')", "INSERT"),
        ("CREATE TABLE x AS SELECT 1", "CREATE"),
        ("ATTACH '/tmp/other.duckdb' AS other", "ATTACH"),
        ("COPY notes TO '/tmp/notes.csv'", "COPY"),
        ("UPDATE notes SET txt = 'x'", "UPDATE"),
        ("DELETE FROM notes", "DELETE"),
        ("DROP TABLE notes", "DROP"),
        ("SET threads = 1", "SET"),
        ("LOAD 'postgres'", "LOAD"),
        ("EXPORT DATABASE '/tmp/dump'", "EXPORT"),
        ("PRAGMA enable_profiling", "PRAGMA"),
    ],
)
def test_writes_and_attaches_are_refused(notes_ws: Any, sql: str, kind: str) -> None:
    with pytest.raises(InvalidInputError, match=f"write statements are not allowed: {kind}.*read-only SELECT"):
        run_query(notes_ws, sql)
    assert run_query(notes_ws, "SELECT count(*) FROM notes").rows() == [[5]]  # nothing changed


def test_several_statements_are_refused(notes_ws: Any) -> None:
    with pytest.raises(InvalidInputError, match="Exactly one statement"):
        run_query(notes_ws, "SELECT 1; DROP TABLE notes")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM query('SELECT * FROM read_text(''/etc/hostname'')')",
        "SELECT * FROM ai_forecast('SELECT * FROM read_parquet(''/tmp/x.parquet'')', 'a', 'b')",
        "SELECT * FROM ai_detect_anomalies('read_text(''hosts'')', 'a', 'b')",
    ],
)
def test_file_readers_are_refused(notes_ws: Any, sql: str) -> None:
    with pytest.raises(InvalidInputError, match=r"not allowed|only tables"):
        run_query(notes_ws, sql)


def test_select_like_statements_run(notes_ws: Any) -> None:
    for sql in (
        "DESCRIBE notes",
        "SHOW TABLES",
        "SUMMARIZE notes",
        "FROM notes",
        "VALUES (1), (2)",
        "WITH x AS (SELECT id FROM notes) SELECT count(*) FROM x",
        "SELECT * FROM query('SELECT 42')",
    ):
        assert run_query(notes_ws, sql).row_count >= 1


def test_row_limit_and_truncation(notes_ws: Any) -> None:
    result = run_query(notes_ws, "SELECT i FROM range(100000) t(i) ORDER BY i", row_limit=10)
    assert result.row_count == 10 and result.truncated and result.rows()[-1] == [9]
    exact = run_query(notes_ws, "SELECT i FROM range(10) t(i)", row_limit=10)
    assert exact.row_count == 10 and not exact.truncated
    assert run_query(notes_ws, "SELECT 1 AS a, 'x' AS b").columns == ["a", "b"]


def test_timeout_interrupts(notes_ws: Any) -> None:
    with pytest.raises(QueryTimeoutError, match=r"longer than 0\.5 s"):
        run_query(notes_ws, "SELECT count(*) FROM range(10000000000) t(i) WHERE i % 7 = 3", timeout_s=0.5)
    assert run_query(notes_ws, "SELECT 1").rows() == [[1]]  # the next query is fine


def test_errors_carry_duckdbs_message(notes_ws: Any) -> None:
    with pytest.raises(InvalidInputError, match=r"does not parse.*syntax error"):
        run_query(notes_ws, "SELEC 1")
    with pytest.raises(InvalidInputError, match="nope does not exist"):
        run_query(notes_ws, "SELECT * FROM nope")
    with pytest.raises(InvalidInputError, match="empty"):
        run_query(notes_ws, "   ")
    with pytest.raises(InvalidInputError, match="row_limit"):
        run_query(notes_ws, "SELECT 1", row_limit=0)


def test_json_friendly_rows(notes_ws: Any) -> None:
    row = run_query(
        notes_ws,
        "SELECT DATE '2024-01-02', TIMESTAMP '2024-01-02 03:04:05', 1.5::DECIMAL(4,2), 'nan'::DOUBLE, [1, 2], {'a': 1}",
    ).rows()[0]
    assert row == ["2024-01-02", "2024-01-02T03:04:05", 1.5, None, [1, 2], {"a": 1}]


def test_the_connection_is_read_only(notes_ws: Any) -> None:
    conn = notes_ws.connect_warehouse(read_only=True)
    try:
        with pytest.raises(Exception, match="read-only"):
            conn.execute("CREATE TABLE y(a INT)")
    finally:
        conn.close()


def test_queries_of_the_embedding_model_run_on_one_duckdb_thread(notes_ws: Any) -> None:
    """torch keeps every core busy; a DuckDB worker would leave the client thread spinning."""
    embedding = run_query(notes_ws, "SELECT current_setting('threads') AS t, ai_similarity('a', 'a') AS s")
    assert embedding.rows()[0][0] == 1 and embedding.rows()[0][1] > 0.99
    plain = run_query(notes_ws, "SELECT current_setting('threads') AS t")
    conn = notes_ws.connect_warehouse(ai_functions=False)
    try:
        assert plain.rows()[0][0] == conn.execute("SELECT current_setting('threads')").fetchone()[0]
    finally:
        conn.close()


def test_the_statement_check_names_the_functions_the_query_calls() -> None:
    """From the parse tree: a function name inside a string or a comment is not a call."""
    import duckdb

    from aiw.sql.runner import check_read_only

    conn = duckdb.connect()
    try:
        sql = "SELECT upper('ai_embed(x)'), AI_Similarity(a, b) FROM t WHERE len(a) > 1 -- ai_embed("
        assert check_read_only(conn, sql) == {"upper", "ai_similarity", "len"}
        inner = "SELECT * FROM query('SELECT ai_embed(txt) FROM notes')"
        assert "ai_embed" in check_read_only(conn, inner)  # the query inside query() too
    finally:
        conn.close()
