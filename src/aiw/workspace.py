"""Where a workspace's files live, and the one place that opens its backends.

A workspace is a folder (``$AIW_HOME``, default ``./.aiw``)::

    warehouse.duckdb   platform.db   mlflow.db   mlruns/   lancedb/   feature_repo/
    artifacts/         logs/         cache/

Each concern whose URL setting is set lives on that server instead; nothing else changes.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from aiw.errors import BackendError, ConfigError, InvalidInputError
from aiw.settings import Settings

if TYPE_CHECKING:
    import duckdb

    from aiw.db import MetadataDB
    from aiw.governance.audit import AuditLog
    from aiw.governance.identity import KeyStore

__all__ = ["ConcernStatus", "Workspace", "safe_join"]

_DIRS = ("mlruns", "lancedb", "feature_repo", "artifacts", "logs", "cache")


@dataclass(frozen=True)
class ConcernStatus:
    """Where one concern lives and whether it answers."""

    concern: str
    backend: str
    location: str
    reachable: bool
    detail: str = ""
    required: bool = True
    """Whether the platform needs it now (an optional backend that is down does not fail readiness)."""


def safe_join(root: Path, user_path: str | os.PathLike[str]) -> Path:
    """``root / user_path``, refusing any path that would escape ``root``.

    Raises:
        InvalidInputError: the path is absolute outside ``root`` or climbs out with ``..``.
    """
    base = root.resolve()
    if "\x00" in str(user_path):
        raise InvalidInputError("The path contains a NUL byte", hint="pass a plain file or folder path")
    try:
        target = (base / Path(user_path)).resolve()
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"The path {str(user_path)!r} cannot be used: {exc}") from exc
    if target != base and base not in target.parents:
        raise InvalidInputError(f"The path {str(user_path)!r} escapes {base}", hint="use a path inside it")
    return target


class Workspace:
    """A workspace folder and its backends, opened lazily.

    Args:
        settings: The platform settings; ``settings.home`` is the folder.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = Path(settings.home).expanduser().resolve()

    # -- paths -----------------------------------------------------------------------------
    @property
    def warehouse_path(self) -> Path:
        """The embedded DuckDB warehouse file."""
        return self.root / "warehouse.duckdb"

    @property
    def documents_dir(self) -> Path:
        """Where the sample policy documents are written."""
        return self.root / "artifacts" / "documents"

    def path(self, name: str) -> Path:
        """A sub-folder of the workspace (``mlruns``, ``lancedb``, ``artifacts`` ...)."""
        if name not in _DIRS:
            raise InvalidInputError(f"Unknown workspace folder {name!r}; use one of {', '.join(_DIRS)}.")
        return self.root / name

    @property
    def metadata_url(self) -> str:
        """The metadata database URL (SQLite in the workspace unless set)."""
        return self.settings.metadata.url or f"sqlite:///{self.root / 'platform.db'}"

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI (SQLite in the workspace unless set)."""
        return self.settings.tracking.url or f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def artifact_uri(self) -> str:
        """Where MLflow keeps run artifacts for an embedded tracking store."""
        return (self.root / "mlruns").as_uri()

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def exists(self) -> bool:
        """Whether :meth:`init` has run here."""
        return (self.root / ".aiw-workspace").exists()

    def init(self) -> Workspace:
        """Create the folders and bring the metadata schema up to date (idempotent)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            for name in _DIRS:
                (self.root / name).mkdir(exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"Cannot create the workspace at {self.root}: {exc.strerror}", hint="set AIW_HOME to a writable folder"
            ) from exc
        self.db.upgrade()
        marker = self.root / ".aiw-workspace"
        if not marker.exists():
            marker.write_text("aiw workspace 1\n")
        return self

    def ensure(self) -> Workspace:
        """:meth:`init` unless it already ran: the first command makes the workspace."""
        return self if self.exists and self._migrated else self.init()

    @cached_property
    def _migrated(self) -> bool:
        self.db.upgrade()
        return True

    # -- backends --------------------------------------------------------------------------
    @cached_property
    def db(self) -> MetadataDB:
        """The metadata database (opened once)."""
        from aiw.db import MetadataDB

        return MetadataDB(self.metadata_url, echo=self.settings.metadata.echo)

    @cached_property
    def audit(self) -> AuditLog:
        """The audit log."""
        from aiw.governance.audit import AuditLog

        return AuditLog(self.db)

    @cached_property
    def keys(self) -> KeyStore:
        """The API key store."""
        from aiw.governance.identity import KeyStore

        return KeyStore(self.db, self.audit)

    def connect_warehouse(self, *, read_only: bool = False, ai_functions: bool = True) -> duckdb.DuckDBPyConnection:
        """Open the DuckDB warehouse, with the ``ai_*`` functions bound when available.

        Every DuckDB connection the platform opens comes from here, so every one of them has
        the same functions and settings.
        """
        import duckdb

        self.root.mkdir(parents=True, exist_ok=True)
        if read_only and not self.warehouse_path.exists():
            raise InvalidInputError(
                f"The warehouse {self.warehouse_path} does not exist yet", hint="run 'aiw data generate' first"
            )
        config: dict[str, Any] = {}
        if self.settings.warehouse.threads:
            config["threads"] = self.settings.warehouse.threads
        try:
            conn = duckdb.connect(str(self.warehouse_path), read_only=read_only, config=config)
        except duckdb.IOException as exc:
            raise BackendError(
                f"Cannot open the warehouse {self.warehouse_path}: {exc}",
                hint="another process may hold it open for writing; stop it or retry",
            ) from exc
        for hook in _connection_hooks(ai_functions):
            hook(conn, self)
        return conn

    # -- status ----------------------------------------------------------------------------
    def status(self) -> list[ConcernStatus]:
        """Where each concern lives and whether it is reachable (never raises)."""
        s = self.settings
        out = [
            self._check("warehouse", s.warehouse.url, self.warehouse_path),
            self._check_metadata(),
            self._check("tracking", s.tracking.url, self.root / "mlflow.db"),
            self._check(f"vector index ({s.index.adapter})", s.index.url, self.root / "lancedb"),
            self._check("feature store online", s.features.online_url, self.root / "feature_repo"),
            replace(self._check("streaming (NATS)", s.engine.nats_url, None), required=False),
        ]
        if s.engine.batch == "ray":
            out.append(self._check("batch engine (ray)", s.engine.ray_address, None))
        return out

    def _check_metadata(self) -> ConcernStatus:
        started = time.perf_counter()
        try:
            self.db.ping()
        except BackendError as exc:
            return ConcernStatus("metadata", self.db.dialect, self.db.safe_url, False, exc.message)
        ms = (time.perf_counter() - started) * 1000
        return ConcernStatus("metadata", self.db.dialect, self.db.safe_url, True, f"{ms:.1f} ms")

    def _check(self, concern: str, url: str, embedded: Path | None) -> ConcernStatus:
        if not url:
            if embedded is None:
                return ConcernStatus(concern, "none", "-", True, "not configured")
            there = embedded.exists()
            return ConcernStatus(
                concern, "embedded", str(embedded), True, "present" if there else "created on first use"
            )
        return _probe_url(concern, url)


def _probe_url(concern: str, url: str) -> ConcernStatus:
    from aiw.db import redact_url

    parsed = urlparse(url if "://" in url else f"tcp://{url}")
    safe = redact_url(url)
    default_ports = {
        "postgresql": 5432,
        "postgres": 5432,
        "redis": 6379,
        "nats": 4222,
        "http": 80,
        "https": 443,
        "ray": 10001,
    }
    scheme = parsed.scheme.split("+")[0]
    host, port = parsed.hostname, parsed.port or default_ports.get(scheme)
    if not host or not port:
        return ConcernStatus(concern, scheme or "?", safe, False, "cannot tell host and port from the URL")
    try:
        with socket.create_connection((host, port), timeout=2):
            pass
    except OSError as exc:
        return ConcernStatus(concern, scheme, safe, False, f"unreachable: {exc.strerror or exc}")
    return ConcernStatus(concern, scheme, safe, True, "answers")


def _connection_hooks(ai_functions: bool) -> list[Callable[[Any, Workspace], None]]:
    """Initialisers run on every new warehouse connection (imported here, not at module load)."""
    from aiw.sql.connection import configure_connection

    return [lambda conn, ws: configure_connection(conn, ws, ai_functions=ai_functions)]
