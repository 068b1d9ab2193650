"""The platform metadata database: SQLite by default, PostgreSQL when a URL says so.

:class:`MetadataDB` owns the SQLAlchemy engine, brings the schema up to date with Alembic and
translates driver errors into :mod:`aiw.errors` at the boundary.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from aiw.errors import ConfigError, PermanentBackendError, TransientBackendError

__all__ = ["MetadataDB", "normalise_url"]

_MIGRATIONS = Path(__file__).with_name("migrations")


def normalise_url(url: str) -> str:
    """Map ``postgresql://`` and ``postgres://`` to the psycopg 3 driver SQLAlchemy needs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def redact_url(url: str) -> str:
    """The URL with any password replaced, safe for logs and status output."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy understands: show only the scheme
        return url.split("://", 1)[0] + "://***"


class MetadataDB:
    """The metadata database behind keys, audit, approvals, rollouts and pipeline runs.

    Args:
        url: A SQLAlchemy URL (``sqlite:///...`` or ``postgresql://...``).
        echo: Log every statement (debugging only).
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalise_url(url)
        try:
            parsed = sa.engine.make_url(self.url)
        except Exception as exc:
            raise ConfigError(
                f"AIW_METADATA__URL is not a database URL: {redact_url(url)!r}",
                hint="use sqlite:///path/platform.db or postgresql://user@host:5432/db",
            ) from exc
        self.dialect = parsed.get_backend_name()
        if self.dialect not in {"sqlite", "postgresql"}:
            raise ConfigError(f"AIW_METADATA__URL uses {self.dialect!r}; only sqlite and postgresql are supported")
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.dialect == "sqlite":
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
            if parsed.database:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        else:
            kwargs.update(pool_pre_ping=True, pool_size=5, max_overflow=10, connect_args={"connect_timeout": 5})
        self.engine: Engine = sa.create_engine(self.url, **kwargs)
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            # pysqlite's own transaction handling defers BEGIN; take the write lock at BEGIN so
            # that read-then-write sequences (the audit chain) are serialised.
            event.listen(self.engine, "begin", _sqlite_begin_immediate)

    @property
    def safe_url(self) -> str:
        """The URL without its password."""
        return redact_url(self.url)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection inside one transaction, committed on success and rolled back on error."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.OperationalError as exc:
            raise _translate(exc, self.safe_url) from exc

    def upgrade(self) -> None:
        """Bring every migration branch to its newest revision (idempotent).

        Each capability owns a branch rooted at ``0001_foundation``.
        """
        from alembic import command

        try:
            with self.engine.begin() as conn:
                command.upgrade(self.alembic_config(conn), "heads")
        except sa.exc.OperationalError as exc:
            raise _translate(exc, self.safe_url) from exc

    def alembic_config(self, conn: Connection) -> Any:
        """Alembic's configuration for this database's migrations, run on ``conn`` (in its transaction)."""
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        cfg.attributes["connection"] = conn
        return cfg

    def ping(self) -> None:
        """Raise :class:`~aiw.errors.BackendError` when the database does not answer."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.OperationalError as exc:
            raise _translate(exc, self.safe_url) from exc

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # let SQLAlchemy's "begin" event issue BEGIN itself
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin_immediate(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _translate(exc: sa.exc.OperationalError, where: str) -> Exception:
    text = str(exc.orig) if exc.orig is not None else str(exc)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    transient = any(
        word in text.lower()
        for word in ("connection refused", "timeout", "locked", "could not connect", "server closed")
    )
    cls = TransientBackendError if transient else PermanentBackendError
    return cls(
        f"Metadata database {where} failed: {first}",
        hint="check that the server is running and AIW_METADATA__URL is right",
    )
