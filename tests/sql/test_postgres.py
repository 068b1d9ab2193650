"""A PostgreSQL warehouse attached to DuckDB: the ai_* functions run over its tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import pytest

from aiw.sql.connection import postgres_conninfo
from aiw.sql.runner import run_query

pytestmark = pytest.mark.integration


def test_conninfo_from_url() -> None:
    conninfo, schema = postgres_conninfo(
        "postgresql://bob:s%27cret@db.example:5433/sales?sslmode=require&options=-csearch_path%3Dmarts"
    )
    assert conninfo == (
        "host='db.example' port='5433' dbname='sales' user='bob' password='s\\'cret' "
        "sslmode='require' options='-csearch_path=marts'"
    )
    assert schema == "marts"
    assert postgres_conninfo("postgresql://u@h/db")[1] == "public"


def test_ai_functions_over_a_postgres_table(pg_url: str, make_workspace: Callable[..., Any]) -> None:
    import psycopg

    schema = unquote(pg_url).split("search_path=")[1]
    with psycopg.connect(pg_url.split("?")[0], autocommit=True) as pg:
        pg.execute(f'CREATE TABLE "{schema}".reviews (id int PRIMARY KEY, kind text, note text)')
        pg.execute(
            f'INSERT INTO "{schema}".reviews VALUES (1, %s, %s), (2, %s, %s), (3, %s, NULL)',
            ("auto", "Wonderful, fast and friendly service!", "home", "Awful, slow and rude. Never again.", "home"),
        )
    ws = make_workspace("pg", warehouse={"url": pg_url})
    # unqualified names read the PostgreSQL schema of the URL's search_path
    rows = run_query(ws, "SELECT id, ai_sentiment(note) AS s, ai_redact(note) FROM reviews ORDER BY id").rows()
    assert rows[0][1] > 0.5 and rows[1][1] < -0.5 and rows[2][1] is None
    grouped = run_query(
        ws, f'SELECT kind, avg(ai_sentiment(note)) FROM pg."{schema}".reviews GROUP BY 1 ORDER BY 1'
    ).rows()
    assert [g[0] for g in grouped] == ["auto", "home"] and grouped[0][1] > grouped[1][1]
    # the attachment is read-only even on a writable connection, whose own tables come first
    conn = ws.connect_warehouse()
    try:
        with pytest.raises(Exception, match="read-only"):
            conn.execute(f"INSERT INTO pg.\"{schema}\".reviews VALUES (4, 'x', 'y')")
        conn.execute("CREATE TABLE local_table AS SELECT 1 AS a")  # lands in the DuckDB file
        assert (
            conn.execute("SELECT database_name FROM duckdb_tables() WHERE table_name = 'local_table'").fetchone()[0]
            != "pg"
        )
    finally:
        conn.close()
