"""What every warehouse connection gets when the platform opens it.

:func:`configure_connection` runs on every DuckDB connection :meth:`Workspace.connect_warehouse`
opens. It binds the ``ai_*`` functions and the forecasting table macros (cheaply: no model loads
until a function is first called), and, when ``AIW_WAREHOUSE__URL`` is a PostgreSQL URL, attaches
that database read-only as catalog ``pg`` through the postgres extension shipped by the
``duckdb-ext-postgres`` package, so that the same functions run over its tables::

    SELECT claim_type, avg(ai_sentiment(adjuster_notes)) FROM pg.public.claims GROUP BY 1;

On read-only connections the PostgreSQL schema comes first in the search path, so unqualified
names (``FROM claims``) read the PostgreSQL tables; writers keep the DuckDB file first, because
DuckDB creates tables in the first schema of the search path.
"""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlparse

from aiw.errors import ConfigError, TransientBackendError

if TYPE_CHECKING:
    from aiw.sql.functions import AIContext
    from aiw.workspace import Workspace

__all__ = ["PG_CATALOG", "ai_context", "configure_connection", "postgres_conninfo", "postgres_extension_path"]

PG_CATALOG = "pg"
"""The DuckDB catalog name of an attached PostgreSQL warehouse."""

_contexts: dict[str, AIContext] = {}
_contexts_lock = threading.Lock()


def ai_context(workspace: Workspace) -> AIContext:
    """The (process-wide) :class:`AIContext` of ``workspace``'s warehouse, pointed at its settings.

    DuckDB shares Python functions between all connections to one database file, so the context
    is kept per warehouse file, not per connection.
    """
    from aiw.sql.functions import AIContext

    s = workspace.settings
    key = str(workspace.warehouse_path)
    cache_dir = workspace.path("cache")
    with _contexts_lock:
        ctx = _contexts.get(key)
        if ctx is None:
            ctx = _contexts[key] = AIContext(s.embeddings, s.llm, cache_dir)
        else:
            ctx.update(s.embeddings, s.llm, cache_dir)
    return ctx


def configure_connection(conn: Any, workspace: Workspace, *, ai_functions: bool = True) -> None:
    """Bind the ``ai_*`` functions (when asked) and attach a server warehouse when configured.

    Raises:
        ConfigError: the warehouse URL is not a PostgreSQL URL, or the extension is missing.
        TransientBackendError: PostgreSQL does not answer.
    """
    url = workspace.settings.warehouse.url
    if url:
        attach_postgres(conn, url)
    if ai_functions:
        from aiw.sql.forecast import register_forecast_functions
        from aiw.sql.functions import register_ai_functions

        register_ai_functions(conn, ai_context(workspace))
        register_forecast_functions(conn)


@cache
def postgres_extension_path() -> Path:
    """The postgres extension file shipped by ``duckdb-ext-postgres`` for the installed DuckDB."""
    import importlib.util

    import duckdb

    spec = importlib.util.find_spec("duckdb_ext")
    roots = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    version = f"v{duckdb.__version__}"
    found = sorted(p for root in roots for p in root.rglob("postgres_scanner.duckdb_extension"))
    matching = [p for p in found if version in p.parts] or found
    if not matching:
        raise ConfigError(
            "The DuckDB postgres extension is not installed",
            hint=f"pip install 'duckdb-ext-postgres=={duckdb.__version__}.*'",
        )
    return matching[0]


def _quote_conninfo(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def postgres_conninfo(url: str) -> tuple[str, str]:
    """(libpq key=value conninfo, default schema) for a ``postgresql://`` URL.

    The schema is the first entry of a ``search_path`` given in the URL's ``options``
    (``?options=-csearch_path%3Dsales``), else ``public``.

    Raises:
        ConfigError: the URL is not a PostgreSQL URL.
    """
    parsed = urlparse(url)
    scheme = parsed.scheme.split("+")[0]
    if scheme not in {"postgresql", "postgres"}:
        raise ConfigError(
            f"AIW_WAREHOUSE__URL must be a postgresql:// URL (or empty for DuckDB); got scheme {scheme!r}",
            hint="e.g. postgresql://user@host:5432/dbname",
        )
    parts: dict[str, str] = {}
    if parsed.hostname:
        parts["host"] = unquote(parsed.hostname)
    if parsed.port:
        parts["port"] = str(parsed.port)
    if parsed.path.strip("/"):
        parts["dbname"] = unquote(parsed.path.strip("/"))
    if parsed.username:
        parts["user"] = unquote(parsed.username)
    if parsed.password:
        parts["password"] = unquote(parsed.password)
    schema = "public"
    for key, value in parse_qsl(parsed.query, keep_blank_values=True):
        parts[key] = value
        if key == "options":
            for opt in value.replace("-c ", "-c").split():
                if opt.startswith("-csearch_path="):
                    schema = opt.split("=", 1)[1].split(",")[0].strip().strip('"') or "public"
    conninfo = " ".join(f"{k}={_quote_conninfo(v)}" for k, v in parts.items())
    return conninfo, schema


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ident(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def attach_postgres(conn: Any, url: str) -> None:
    """Attach the PostgreSQL database of ``url`` read-only as ``pg`` and extend the search path."""
    import duckdb

    conninfo, schema = postgres_conninfo(url)
    try:
        conn.execute(f"LOAD {_sql_literal(str(postgres_extension_path()))}")
        conn.execute(f"ATTACH IF NOT EXISTS {_sql_literal(conninfo)} AS {PG_CATALOG} (TYPE postgres, READ_ONLY)")
        read_only = bool(
            conn.execute("SELECT readonly FROM duckdb_databases() WHERE database_name = current_database()").fetchone()[
                0
            ]
        )
        local = conn.execute("SELECT current_database()").fetchone()[0]
    except duckdb.IOException as exc:
        raise TransientBackendError(
            f"Cannot attach the PostgreSQL warehouse: {exc}",
            hint="check AIW_WAREHOUSE__URL and that PostgreSQL answers",
        ) from exc
    except duckdb.Error as exc:
        raise ConfigError(f"Cannot attach the PostgreSQL warehouse: {exc}", hint="check AIW_WAREHOUSE__URL") from exc
    pg_path = f"{_ident(PG_CATALOG)}.{_ident(schema)}"
    local_path = f"{_ident(local)}.main"
    order = [pg_path, local_path] if read_only else [local_path, pg_path]
    conn.execute(f"SET search_path = {_sql_literal(','.join(order))}")
