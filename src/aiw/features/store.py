"""The platform's feature store: Feast, configured from the workspace and the marts.

Feast is configured in memory from :class:`~aiw.settings.FeatureSettings`, never from a
hand-written ``feature_store.yaml``:

* offline store: Parquet files exported from the dbt marts into ``<home>/feature_repo/data/``;
* online store: SQLite at ``<home>/feature_repo/online.db``, or Redis when
  ``AIW_FEATURES__ONLINE_URL=redis://host:port/db`` is set (keys are namespaced by the Feast
  project, ``AIW_FEATURES__PROJECT``, so several workspaces can share one Redis);
* registry: ``<home>/feature_repo/registry.db``.

Definitions (see :func:`definitions`): entities ``claim`` (``claim_id``) and ``customer``
(``customer_id``); feature views ``claim_features`` (as known when the claim was reported),
``claim_labels`` (``is_fraud`` and the sensitive attribute ``gender``, kept apart so serving
never asks for them) and ``customer_features`` (customer history, one row per change, so a
point-in-time join gets what was known at the event); a feature service ``claims_fraud``.

Feast takes about 8 s to import, so it is imported only inside the functions that need it.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from aiw.data._warehouse import table_exists, warehouse
from aiw.errors import BackendError, ConfigError, InvalidInputError, NotFoundError

if TYPE_CHECKING:
    import pandas as pd

    from aiw.settings import FeatureSettings
    from aiw.workspace import Workspace

__all__ = [
    "ENTITY_KEYS",
    "FEATURE_SERVICE",
    "SOURCES",
    "ApplyResult",
    "FeatureStoreService",
    "MaterializeResult",
    "definitions",
    "get_online_features",
    "redis_connection_string",
]

FEATURE_SERVICE = "claims_fraud"
"""The feature service the fraud model is trained and served with."""

ENTITY_KEYS = {"claim": "claim_id", "customer": "customer_id"}
"""Entity name -> join key."""

# Parquet export of each mart: (file stem, SQL over the warehouse). Casts make the Parquet types
# stable whatever DuckDB infers, so the Feast schema below always matches.
SOURCES: dict[str, str] = {
    "claim_features": """
        SELECT claim_id::BIGINT AS claim_id, customer_id::BIGINT AS customer_id, event_timestamp,
               amount::DOUBLE AS amount, amount_to_limit::DOUBLE AS amount_to_limit,
               days_to_report::BIGINT AS days_to_report, prior_claims::BIGINT AS prior_claims,
               policy_age_days::BIGINT AS policy_age_days, channel, line_of_business, claim_type, region,
               customer_age::BIGINT AS customer_age, credit_score::BIGINT AS credit_score,
               premium::DOUBLE AS premium, annual_premium::DOUBLE AS annual_premium,
               deductible::DOUBLE AS deductible, coverage_limit::DOUBLE AS coverage_limit,
               amount_to_premium::DOUBLE AS amount_to_premium, amount_to_coverage::DOUBLE AS amount_to_coverage,
               customer_tenure_days::BIGINT AS customer_tenure_days, segment, gender, is_fraud
        FROM marts.claim_features""",
    "customer_features": """
        SELECT customer_id::BIGINT AS customer_id, event_timestamp, region, segment,
               credit_score::BIGINT AS credit_score, age::BIGINT AS age, tenure_days::BIGINT AS tenure_days,
               policies_to_date::BIGINT AS policies_to_date, premium_to_date::DOUBLE AS premium_to_date,
               claims_to_date::BIGINT AS claims_to_date,
               claimed_amount_to_date::DOUBLE AS claimed_amount_to_date
        FROM marts.customer_features""",
}

_CLAIM_FEATURES = {
    "amount": "Float64",
    "amount_to_limit": "Float64",
    "days_to_report": "Int64",
    "prior_claims": "Int64",
    "policy_age_days": "Int64",
    "channel": "String",
    "line_of_business": "String",
    "claim_type": "String",
    "region": "String",
    "customer_age": "Int64",
    "credit_score": "Int64",
    "premium": "Float64",
    "deductible": "Float64",
    "coverage_limit": "Float64",
    "segment": "String",
    # the names aiw.mlops.training's model takes its inputs by
    "annual_premium": "Float64",
    "amount_to_premium": "Float64",
    "amount_to_coverage": "Float64",
    "customer_tenure_days": "Int64",
}
_CLAIM_LABELS = {"is_fraud": "Bool", "gender": "String"}
_CUSTOMER_FEATURES = {
    "region": "String",
    "segment": "String",
    "credit_score": "Int64",
    "age": "Int64",
    "tenure_days": "Int64",
    "policies_to_date": "Int64",
    "premium_to_date": "Float64",
    "claims_to_date": "Int64",
    "claimed_amount_to_date": "Float64",
}
_SERVICE_CUSTOMER = ("tenure_days", "policies_to_date", "premium_to_date", "claims_to_date", "claimed_amount_to_date")

_CACHE: dict[tuple[str, str, str], Any] = {}
_CACHE_LOCK = threading.Lock()


@dataclass(frozen=True)
class ApplyResult:
    """What :meth:`FeatureStoreService.apply` registered.

    Attributes:
        project: The Feast project.
        entities: Entity names.
        feature_views: Feature view name -> its feature names.
        feature_services: Feature service names.
        exported: Parquet file -> rows exported from the marts.
        seconds: Wall time.
    """

    project: str
    entities: list[str]
    feature_views: dict[str, list[str]]
    feature_services: list[str]
    exported: dict[str, int]
    seconds: float


@dataclass(frozen=True)
class MaterializeResult:
    """What :meth:`FeatureStoreService.materialize` loaded into the online store.

    Attributes:
        start: Oldest event time loaded (UTC).
        end: Newest event time loaded (UTC).
        feature_views: The views materialized.
        online_store: ``sqlite`` or ``redis``.
        seconds: Wall time.
    """

    start: datetime
    end: datetime
    feature_views: list[str]
    online_store: str
    seconds: float


def redis_connection_string(url: str) -> str:
    """``redis://[:password@]host:port[/db]`` -> Feast's ``host:port,db=N[,password=...][,ssl=true]``.

    Raises:
        ConfigError: the URL is not a redis:// or rediss:// URL with a host.
    """
    parsed = urlparse(url)
    if parsed.scheme not in {"redis", "rediss"} or not parsed.hostname:
        raise ConfigError(
            f"AIW_FEATURES__ONLINE_URL must be redis://host:port[/db]. Got {url!r}.",
            hint="e.g. redis://127.0.0.1:6379/0, or leave it empty for SQLite",
        )
    parts = [f"{parsed.hostname}:{parsed.port or 6379}"]
    db = parsed.path.strip("/")
    if db:
        if not db.isdigit():
            raise ConfigError(f"The Redis database in AIW_FEATURES__ONLINE_URL must be a number. Got {db!r}.")
        parts.append(f"db={db}")
    if parsed.password:
        parts.append(f"password={unquote(parsed.password)}")
    if parsed.scheme == "rediss":
        parts.append("ssl=true")
    return ",".join(parts)


def definitions(settings: FeatureSettings, data_dir: Path) -> list[Any]:
    """The Feast objects of the platform: entities, sources, feature views and the feature service.

    Args:
        settings: The feature settings (TTL of a point-in-time lookup).
        data_dir: Folder of the exported Parquet files.
    """
    from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
    from feast import types as ft

    def fields(spec: Mapping[str, str]) -> list[Any]:
        return [Field(name=name, dtype=getattr(ft, dtype)) for name, dtype in spec.items()]

    ttl = timedelta(days=settings.ttl_days)
    claim = Entity(name="claim", join_keys=["claim_id"], value_type=ValueType.INT64, description="An insurance claim.")
    customer = Entity(
        name="customer", join_keys=["customer_id"], value_type=ValueType.INT64, description="A policyholder."
    )
    claim_src = FileSource(
        name="claim_features_source",
        path=str(data_dir / "claim_features.parquet"),
        timestamp_field="event_timestamp",
        description="marts.claim_features: one row per claim, as of its report.",
    )
    customer_src = FileSource(
        name="customer_features_source",
        path=str(data_dir / "customer_features.parquet"),
        timestamp_field="event_timestamp",
        description="marts.customer_features: one row per customer and change.",
    )
    claim_view = FeatureView(
        name="claim_features",
        entities=[claim],
        ttl=ttl,
        source=claim_src,
        schema=fields(_CLAIM_FEATURES),
        online=True,
        description="What the fraud model knows about a claim when it is reported.",
    )
    label_view = FeatureView(
        name="claim_labels",
        entities=[claim],
        ttl=ttl,
        source=claim_src,
        schema=fields(_CLAIM_LABELS),
        online=False,
        description="The fraud label and the sensitive attribute; training and fairness only.",
    )
    customer_view = FeatureView(
        name="customer_features",
        entities=[customer],
        ttl=ttl,
        source=customer_src,
        schema=fields(_CUSTOMER_FEATURES),
        online=True,
        description="The customer's history as of each change.",
    )
    service = FeatureService(
        name=FEATURE_SERVICE,
        features=[claim_view, customer_view[list(_SERVICE_CUSTOMER)]],
        description="Inputs of the claims-fraud model.",
    )
    return [claim, customer, claim_src, customer_src, claim_view, label_view, customer_view, service]


class FeatureStoreService:
    """The workspace's Feast feature store: export, apply, materialize, and look features up.

    Args:
        workspace: The workspace (marts to export, ``feature_repo/`` to keep the store in).
        settings: The feature settings (online store URL, Feast project, TTL).
    """

    def __init__(self, workspace: Workspace, settings: FeatureSettings) -> None:
        self.workspace = workspace
        self.settings = settings
        self.repo = workspace.path("feature_repo")
        self.data_dir = self.repo / "data"

    @property
    def online_kind(self) -> str:
        """``redis`` when an online URL is set, else ``sqlite``."""
        return "redis" if self.settings.online_url else "sqlite"

    # -- configuration ---------------------------------------------------------------------
    def repo_config(self) -> Any:
        """The Feast ``RepoConfig`` of this workspace (built in memory)."""
        from feast.repo_config import RepoConfig

        online: dict[str, Any]
        if self.settings.online_url:
            online = {"type": "redis", "connection_string": redis_connection_string(self.settings.online_url)}
        else:
            online = {"type": "sqlite", "path": str(self.repo / "online.db")}
        return RepoConfig(
            project=self.settings.project,
            provider="local",
            repo_path=self.repo,
            registry={"registry_type": "file", "path": str(self.repo / "registry.db"), "cache_ttl_seconds": 60},
            online_store=online,
            offline_store={"type": "file"},
            entity_key_serialization_version=3,
        )

    @property
    def store(self) -> Any:
        """The Feast ``FeatureStore`` (one per workspace, project and online store, per process)."""
        key = (str(self.repo), self.settings.project, self.settings.online_url)
        with _CACHE_LOCK:
            if key not in _CACHE:
                os.environ.setdefault("FEAST_USAGE", "False")  # no telemetry calls from a platform
                from feast import FeatureStore

                self.repo.mkdir(parents=True, exist_ok=True)
                _CACHE[key] = FeatureStore(config=self.repo_config())
            return _CACHE[key]

    # -- commands --------------------------------------------------------------------------
    def export(self) -> dict[str, int]:
        """Export the feature marts to Parquet for the offline store (atomically, file by file).

        Raises:
            NotFoundError: the marts are not built yet.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        counts: dict[str, int] = {}
        with warehouse(self.workspace) as conn:
            for stem, sql in SOURCES.items():
                if not table_exists(conn, f"marts.{stem}"):
                    raise NotFoundError(f"The mart marts.{stem} does not exist yet", hint="run 'aiw data build' first")
                final = self.data_dir / f"{stem}.parquet"
                tmp = final.with_suffix(f".{os.getpid()}.tmp")
                conn.execute(f"COPY ({sql}) TO '{_sql_path(tmp)}' (FORMAT parquet, COMPRESSION zstd)")
                os.replace(tmp, final)
                counts[final.name] = int(conn.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0])  # type: ignore[index]
        return counts

    def apply(self, *, actor: str = "system", export: bool = True) -> ApplyResult:
        """Export the marts (unless ``export=False``) and register the definitions with Feast.

        Idempotent: applying unchanged definitions changes nothing.
        """
        started = time.perf_counter()
        exported = self.export() if export else {}
        objects = definitions(self.settings, self.data_dir)
        try:
            self.store.apply(objects)
        except Exception as exc:  # Feast raises many unrelated types; say which step failed
            raise BackendError(
                f"Feast apply failed: {exc}", hint="see the feature definitions in aiw.features"
            ) from exc
        views = {o.name: [f.name for f in o.features] for o in objects if type(o).__name__ == "FeatureView"}
        result = ApplyResult(
            self.settings.project,
            [o.name for o in objects if type(o).__name__ == "Entity"],
            views,
            [o.name for o in objects if type(o).__name__ == "FeatureService"],
            exported,
            time.perf_counter() - started,
        )
        self.workspace.audit.append(
            actor,
            "features.apply",
            f"feast:{self.settings.project}",
            "success",
            {"feature_views": sorted(views), "exported": exported, "online_store": self.online_kind},
        )
        return result

    def materialize(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        views: Sequence[str] | None = None,
        actor: str = "system",
    ) -> MaterializeResult:
        """Load the newest feature values per entity between ``start`` and ``end`` into the online store.

        Args:
            start: Oldest event time to load; default ``end`` minus the TTL.
            end: Newest event time to load; default now, or the newest exported event if later.
            views: Feature views to load; default every online view.
            actor: Who asked, for the audit record.
        """
        started = time.perf_counter()
        end_utc = _utc(end) if end is not None else max(datetime.now(UTC), self._newest_event() + timedelta(seconds=1))
        start_utc = _utc(start) if start is not None else end_utc - timedelta(days=self.settings.ttl_days)
        if start_utc >= end_utc:
            raise InvalidInputError(f"materialize needs start < end. Got start={start_utc} and end={end_utc}.")
        names = list(views) if views else ["claim_features", "customer_features"]
        self._require_applied(names)
        try:
            # Feast prints a coloured banner per view; the caller renders its own progress.
            with contextlib.redirect_stdout(io.StringIO()):
                self.store.materialize(start_date=start_utc, end_date=end_utc, feature_views=names)
        except Exception as exc:
            raise _backend("materialize", exc) from exc
        result = MaterializeResult(start_utc, end_utc, names, self.online_kind, time.perf_counter() - started)
        self.workspace.audit.append(
            actor,
            "features.materialize",
            f"feast:{self.settings.project}",
            "success",
            {
                "views": names,
                "start": start_utc.isoformat(),
                "end": end_utc.isoformat(),
                "online_store": self.online_kind,
            },
        )
        return result

    def historical(self, entity_df: pd.DataFrame, features: Sequence[str] | str = FEATURE_SERVICE) -> pd.DataFrame:
        """A point-in-time correct training frame.

        Each row of ``entity_df`` gets, per feature view, the newest feature row whose event time
        is at or before the row's ``event_timestamp`` (and within the TTL); never a later one.

        Args:
            entity_df: Join keys (``claim_id`` and/or ``customer_id``) and ``event_timestamp``;
                other columns (labels) pass through.
            features: ``view:feature`` references, or a feature service name.

        Returns:
            ``entity_df`` with one column per feature (named without the view prefix).
        """
        import pandas as pd

        if not isinstance(entity_df, pd.DataFrame) or "event_timestamp" not in entity_df.columns:
            raise InvalidInputError(
                "entity_df must be a pandas DataFrame with an 'event_timestamp' column "
                "and the entities' join keys (claim_id, customer_id)."
            )
        if entity_df.empty:
            raise InvalidInputError("entity_df has no rows; give at least one entity and timestamp.")
        frame = entity_df.copy()
        frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
        refs = self._features(features)
        try:
            job = self.store.get_historical_features(entity_df=frame, features=refs)
            out = job.to_df()
        except (InvalidInputError, NotFoundError):
            raise
        except Exception as exc:
            raise _backend("get_historical_features", exc) from exc
        return out

    def online(
        self, entity_rows: Sequence[Mapping[str, Any]], features: Sequence[str] | str = FEATURE_SERVICE
    ) -> list[dict[str, Any]]:
        """The newest materialized values of ``features`` for each entity row, in the rows' order.

        Args:
            entity_rows: One mapping of join keys per entity (``{"claim_id": 1, "customer_id": 7}``).
            features: ``view:feature`` references, or a feature service name.

        Returns:
            One dict per entity row: its keys and each feature (``None`` when never materialized).
        """
        rows = _entity_rows(entity_rows)
        refs = self._features(features)
        try:
            response = self.store.get_online_features(features=refs, entity_rows=rows)
        except (InvalidInputError, NotFoundError):
            raise
        except Exception as exc:
            raise _backend("get_online_features", exc) from exc
        columns = response.to_dict()
        n = len(rows)
        return [{name: values[i] for name, values in columns.items()} for i in range(n)]

    def training_set(self, *, limit: int | None = None, since: datetime | None = None) -> pd.DataFrame:
        """The fraud model's training frame: every claim at its report time, its features and label.

        Args:
            limit: Keep only the newest ``limit`` claims.
            since: Keep only claims reported at or after this time.

        Returns:
            ``claim_id``, ``customer_id``, ``event_timestamp``, the ``claims_fraud`` features,
            ``is_fraud`` and ``gender`` (for fairness reports).
        """
        import pandas as pd

        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise InvalidInputError(f"The 'limit' parameter of training_set must be an int >= 1. Got {limit!r}.")
        path = self.data_dir / "claim_features.parquet"
        if not path.exists():
            raise NotFoundError("The feature store has no exported data yet", hint="run 'aiw features apply'")
        entities = pd.read_parquet(path, columns=["claim_id", "customer_id", "event_timestamp"])
        if since is not None:
            entities = entities[pd.to_datetime(entities["event_timestamp"], utc=True) >= _utc(since)]
        if limit is not None:
            entities = entities.nlargest(limit, "event_timestamp")
        refs = [*self._features(FEATURE_SERVICE), "claim_labels:is_fraud", "claim_labels:gender"]
        return self.historical(entities.reset_index(drop=True), refs)

    def feature_refs(self) -> list[str]:
        """Every registered ``view:feature`` reference."""
        return [f"{v.name}:{f.name}" for v in self.store.list_feature_views() for f in v.features]

    # -- internals -------------------------------------------------------------------------
    def _features(self, features: Sequence[str] | str) -> list[str]:
        if isinstance(features, str):
            if ":" in features:
                return [features]
            try:
                service = self.store.get_feature_service(features)
            except Exception as exc:
                raise NotFoundError(
                    f"No feature service {features!r} in project {self.settings.project!r}",
                    hint="run 'aiw features apply' first",
                ) from exc
            return [
                f"{proj.name_to_use()}:{feat.name}"
                for proj in service.feature_view_projections
                for feat in proj.features
            ]
        refs = list(features)
        if not refs:
            raise InvalidInputError("Name at least one feature ('view:feature') or a feature service.")
        bad = [r for r in refs if not isinstance(r, str) or r.count(":") != 1]
        if bad:
            raise InvalidInputError(f"Feature references look like 'view:feature'. Got {bad[:3]!r}.")
        known = set(self.feature_refs())
        unknown = [r for r in refs if r not in known]
        if unknown:
            raise NotFoundError(
                f"Unknown features {unknown[:5]!r} in project {self.settings.project!r}",
                hint="list them with 'aiw features list'; run 'aiw features apply' first",
            )
        return refs

    def _require_applied(self, views: Iterable[str]) -> None:
        known = {v.name for v in self.store.list_feature_views()}
        missing = [v for v in views if v not in known]
        if missing:
            raise NotFoundError(
                f"Feature views {missing} are not registered in project {self.settings.project!r}",
                hint="run 'aiw features apply' first",
            )

    def _newest_event(self) -> datetime:
        import pyarrow.parquet as pq

        newest = datetime(1970, 1, 1, tzinfo=UTC)
        for stem in SOURCES:
            path = self.data_dir / f"{stem}.parquet"
            if not path.exists():
                continue
            col = pq.read_table(path, columns=["event_timestamp"]).column(0)
            import pyarrow.compute as pc

            top = pc.max(col).as_py()
            if top is not None:
                newest = max(newest, _utc(top))
        return newest


def get_online_features(
    workspace: Workspace, entity_rows: Sequence[Mapping[str, Any]], features: Sequence[str] | str = FEATURE_SERVICE
) -> list[dict[str, Any]]:
    """Online feature lookup for the serving layer: one dict of features per entity row.

    Args:
        workspace: The workspace whose feature store to read (its settings pick SQLite or Redis).
        entity_rows: Join keys per entity, e.g. ``[{"claim_id": 17, "customer_id": 4}]``.
        features: ``view:feature`` references, or a feature service name (default ``claims_fraud``).
    """
    return FeatureStoreService(workspace, workspace.settings.features).online(entity_rows, features)


def _entity_rows(entity_rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(entity_rows, Mapping) or not isinstance(entity_rows, Sequence) or not entity_rows:
        raise InvalidInputError("entity_rows must be a non-empty list of mappings such as {'claim_id': 1}.")
    rows = []
    for i, row in enumerate(entity_rows):
        if not isinstance(row, Mapping) or not row:
            raise InvalidInputError(f"entity_rows[{i}] must be a non-empty mapping of join keys. Got {row!r}.")
        unknown = [k for k in row if k not in ENTITY_KEYS.values()]
        if unknown:
            raise InvalidInputError(
                f"entity_rows[{i}] has unknown join keys {unknown}; use {sorted(ENTITY_KEYS.values())}."
            )
        try:
            rows.append({k: int(v) for k, v in row.items()})
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"entity_rows[{i}] keys must be integers. Got {dict(row)!r}.") from exc
    return rows


def _backend(what: str, exc: Exception) -> BackendError:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return BackendError(
        f"Feast {what} failed: {type(exc).__name__}: {text}",
        hint="check the online store (AIW_FEATURES__ONLINE_URL) and run 'aiw features apply'",
    )


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def _utc(moment: Any) -> datetime:
    if not isinstance(moment, datetime):
        raise InvalidInputError(f"Expected a datetime. Got {moment!r}.")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
