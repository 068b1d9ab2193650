"""Governed model versions over the MLflow registry: checksums, lineage, who registered what.

MLflow stays the registry of record for versions and aliases; this layer adds, per version, the
SHA-256 of every artifact file, the run, the training data's fingerprint, the code version, the
parent version and the registering identity (table ``mlops_model_versions``), and it is the only
code that moves aliases (see :mod:`aiw.mlops.registry.approvals`). A version whose files no longer
match their checksums is refused at load time with :class:`~aiw.errors.IntegrityError`.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from aiw.db.schema import mlops_aliases, mlops_model_versions
from aiw.errors import AiwError, BackendError, IntegrityError, InvalidInputError, NotFoundError
from aiw.governance.identity import Principal
from aiw.mlops.registry.checksums import check_manifest, manifest_digest, manifest_of

if TYPE_CHECKING:
    from aiw.mlops.tracking import LoggedModel
    from aiw.workspace import Workspace

__all__ = [
    "ALIAS_OF_TARGET",
    "TARGETS",
    "ColumnSpec",
    "ModelRegistry",
    "ModelSummary",
    "ModelVersion",
    "add_alias_listener",
    "remove_alias_listener",
]

TARGETS = ("staging", "production")
"""Where a version can be promoted."""

ALIAS_OF_TARGET = {"staging": "staging", "production": "champion"}
"""The MLflow alias each target moves (``@staging``, ``@champion``)."""

_AliasListener = Callable[[str, str, str, int], None]
_listeners: list[_AliasListener] = []
_listeners_lock = threading.Lock()


def add_alias_listener(listener: _AliasListener) -> None:
    """Call ``listener(workspace_root, model, alias, version)`` after every alias move in this process.

    The serving layer subscribes so that a promotion or rollback made in the same process is served
    at once (other processes notice within ``serving.alias_ttl_s``).
    """
    with _listeners_lock:
        if listener not in _listeners:
            _listeners.append(listener)


def remove_alias_listener(listener: _AliasListener) -> None:
    """Stop calling ``listener``."""
    with _listeners_lock:
        if listener in _listeners:
            _listeners.remove(listener)


def _notify(root: str, model: str, alias: str, version: int) -> None:
    with _listeners_lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(root, model, alias, version)
        except Exception:  # a listener's failure must not undo a committed promotion
            import logging

            logging.getLogger(__name__).exception("alias listener failed for %s@%s", model, alias)


@dataclass(frozen=True)
class ColumnSpec:
    """One input column of a model's signature."""

    name: str
    type: str
    required: bool = True


@dataclass(frozen=True)
class ModelVersion:
    """A registered, governed model version.

    Attributes:
        name: The model's name.
        version: The MLflow registry version number.
        run_id: The training run.
        model_uri: The logged model (``models:/m-...``).
        artifact_uri: Where its files live.
        flavor: ``sklearn``.
        manifest: {relative path: SHA-256} of every file.
        manifest_sha256: The digest of the manifest.
        trusted_types: The skops allow-list used when loading.
        signature: The input columns.
        metrics: The run's metrics.
        data_fingerprint: {table, rows, sha256, source} of the training data.
        code_version: {package, version, git_commit, git_dirty}.
        parent_version: The version this one succeeds (lineage), if any.
        description: Free text.
        registered_by: Who registered it.
        registered_at: When.
        aliases: Aliases that point at it now.
    """

    name: str
    version: int
    run_id: str
    model_uri: str
    artifact_uri: str
    flavor: str
    manifest: dict[str, str]
    manifest_sha256: str
    trusted_types: tuple[str, ...]
    signature: tuple[ColumnSpec, ...]
    metrics: dict[str, float]
    data_fingerprint: dict[str, Any]
    code_version: dict[str, str]
    parent_version: int | None
    description: str
    registered_by: str
    registered_at: datetime
    aliases: tuple[str, ...] = field(default_factory=tuple)

    @property
    def resource(self) -> str:
        """The audit resource name, ``model:<name>/<version>``."""
        return f"model:{self.name}/{self.version}"

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "model_uri": self.model_uri,
            "artifact_uri": self.artifact_uri,
            "flavor": self.flavor,
            "manifest": self.manifest,
            "manifest_sha256": self.manifest_sha256,
            "trusted_types": list(self.trusted_types),
            "signature": [c.__dict__ for c in self.signature],
            "metrics": self.metrics,
            "data_fingerprint": self.data_fingerprint,
            "code_version": self.code_version,
            "parent_version": self.parent_version,
            "description": self.description,
            "registered_by": self.registered_by,
            "registered_at": self.registered_at.isoformat(),
            "aliases": list(self.aliases),
        }


@dataclass(frozen=True)
class ModelSummary:
    """One model: its newest version, how many versions, and where its aliases point."""

    name: str
    latest_version: int
    versions: int
    aliases: dict[str, int]
    updated_at: datetime


MAX_ID = 2**31 - 1
"""The largest version or request number (the metadata database stores 32-bit integers)."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")


def check_model_name(name: str) -> str:
    """``name`` if it is a valid model name, else :class:`InvalidInputError`."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInputError(
            f"A model name must be 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit. "
            f"Got {name!r}."
        )
    return name


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def local_path_of(uri: str) -> Path | None:
    """The local folder of a ``file://`` URI or plain path, else None (remote artifact store)."""
    if uri.startswith("file:"):
        from mlflow.utils.file_utils import local_file_uri_to_path

        return Path(local_file_uri_to_path(uri))
    if "://" not in uri:
        return Path(uri)
    return None


class ModelRegistry:
    """Register governed versions, read them back, and check their files.

    Args:
        workspace: The workspace (its metadata DB, audit log, and MLflow tracking store).
    """

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.db = workspace.db
        self.audit = workspace.audit

    # -- helpers -------------------------------------------------------------------------------
    def _client(self) -> Any:
        """An ``MlflowClient`` on the workspace's tracking store and registry.

        The registry needs no experiment, so none is looked up (or created) here.
        """
        from aiw.mlops.tracking import mlflow_client

        return mlflow_client(self.workspace)  # artifact downloads go through the fluent API

    def deny(
        self,
        principal: Principal | str,
        action: str,
        resource: str,
        exc: AiwError,
        details: dict[str, Any] | None = None,
    ) -> AiwError:
        """Audit a refusal (outcome ``denied``) and hand back ``exc`` for the caller to raise."""
        actor = principal.name if isinstance(principal, Principal) else principal
        self.audit.append(actor, action, resource, outcome="denied", details={"reason": exc.message, **(details or {})})
        return exc

    def require(self, principal: Principal, permission: str, action: str, resource: str) -> None:
        """Raise (and audit) :class:`~aiw.errors.PolicyViolation` unless ``principal`` may do this."""
        try:
            principal.require(permission)
        except AiwError as exc:
            raise self.deny(principal, action, resource, exc, {"role": principal.role}) from None

    # -- registration ----------------------------------------------------------------------------
    def register(
        self,
        source: str | LoggedModel,
        name: str,
        principal: Principal,
        *,
        description: str = "",
        parent_version: int | None = None,
    ) -> ModelVersion:
        """Register a logged model as a new version of ``name``, with checksums and lineage.

        Args:
            source: A :class:`~aiw.mlops.tracking.LoggedModel`, a ``models:/m-...`` URI or a run id
                whose run logged exactly one model.
            name: The registered model's name.
            principal: Who registers (needs ``models:write``).
            description: Free text kept with the version.
            parent_version: The version this one succeeds; default the newest existing version.

        Raises:
            PolicyViolation: the principal may not register models.
            NotFoundError: the run or model does not exist.
            InvalidInputError: a bad name, or a model this layer cannot govern (not scikit-learn
                saved with skops).
        """
        check_model_name(name)
        resource = f"model:{name}"
        self.require(principal, "models:write", "models.register", resource)
        client = self._client()
        try:
            model_uri, _, artifact_uri, run_id = self._source(client, source)
            # A LoggedModel from this process carries its run's lineage tags and metrics: no read.
            lineage, metrics = self._lineage(client, source, run_id)
        except AiwError as exc:
            raise self.deny(principal, "models.register", resource, exc) from None
        except Exception as exc:
            raise BackendError(f"MLflow could not read the run or model {source!r}: {exc}") from exc
        remote = local_path_of(artifact_uri) is None
        folder = self._download(artifact_uri, name) if remote else local_path_of(artifact_uri)
        assert folder is not None
        try:
            manifest = manifest_of(folder)
            flavor, trusted, signature = read_mlmodel(folder / "MLmodel")
        except AiwError as exc:
            raise self.deny(principal, "models.register", resource, exc) from None
        if parent_version is None:
            parent_version = self.latest_version(name)
        else:
            self.get(name, parent_version)
        tags = lineage
        fingerprint = {
            "table": tags.get("aiw.data.table", ""),
            "rows": int(tags.get("aiw.data.rows", "0") or 0),
            "sha256": tags.get("aiw.data.sha256", ""),
            "source": tags.get("aiw.data.source", ""),
        }
        code = {
            "version": tags.get("aiw.code.version", ""),
            "git_commit": tags.get("aiw.code.git_commit", ""),
            "git_dirty": tags.get("aiw.code.git_dirty", ""),
        }
        try:
            mv = _create_version(client, name, model_uri, run_id, description)
        except Exception as exc:
            self.audit.append(
                principal.name,
                "models.register",
                resource,
                outcome="failure",
                details={"reason": str(exc)[:500], "model_uri": model_uri},
            )
            raise BackendError(f"MLflow could not register {name!r}: {exc}") from exc
        version = int(mv.version)
        now = datetime.now(UTC)
        row = {
            "model_name": name,
            "version": version,
            "run_id": run_id,
            "model_uri": model_uri,
            "artifact_uri": artifact_uri,
            "flavor": flavor,
            "manifest": json.dumps(manifest, sort_keys=True),
            "manifest_sha256": manifest_digest(manifest),
            "trusted_types": json.dumps(sorted(trusted)),
            "signature": json.dumps([c.__dict__ for c in signature]),
            "metrics": json.dumps(metrics, sort_keys=True),
            "data_fingerprint": json.dumps(fingerprint, sort_keys=True),
            "code_version": json.dumps(code, sort_keys=True),
            "parent_version": parent_version,
            "description": description,
            "registered_by": principal.name,
            "registered_at": now,
        }
        try:
            with self.db.begin() as conn:
                conn.execute(mlops_model_versions.insert().values(**row))
                self.audit.append(
                    principal.name,
                    "models.register",
                    f"model:{name}/{version}",
                    details={
                        "run_id": run_id,
                        "model_uri": model_uri,
                        "manifest_sha256": row["manifest_sha256"],
                        "files": len(manifest),
                        "parent_version": parent_version,
                        "data_sha256": fingerprint["sha256"],
                        "trusted_types": sorted(trusted),
                    },
                    conn=conn,
                )
        except Exception:
            # Keep MLflow and the governance table in step: an ungoverned version must not linger.
            try:
                client.delete_model_version(name, str(version))
            except Exception:
                import logging

                logging.getLogger(__name__).exception("could not remove MLflow version %s/%s", name, version)
            raise
        if remote:  # keep the checked download as this version's local copy
            target = self._cache_dir(name, str(version))
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                folder.rename(target)
        # The row just committed is the version (a new version has no alias yet): no read back.
        return _to_version(SimpleNamespace(**row), ())

    def _lineage(self, client: Any, source: str | LoggedModel, run_id: str) -> tuple[dict[str, str], dict[str, float]]:
        """(the run's ``aiw.*`` tags, its metrics): from ``source`` when it carries them, else from MLflow."""
        from aiw.mlops.tracking import LoggedModel

        if isinstance(source, LoggedModel) and source.lineage:
            return dict(source.lineage), dict(source.metrics)
        run = client.get_run(run_id)
        return dict(run.data.tags), {k: float(v) for k, v in run.data.metrics.items()}

    def _download(self, artifact_uri: str, name: str) -> Path:
        """Download a remote model folder into a fresh folder of the workspace cache."""
        import tempfile

        import mlflow

        base = self.workspace.path("cache") / "models" / name
        base.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=base))
        try:
            return Path(mlflow.artifacts.download_artifacts(artifact_uri=artifact_uri, dst_path=str(tmp)))
        except Exception as exc:
            raise BackendError(f"Cannot download the model files from {artifact_uri}: {exc}") from exc

    def _source(self, client: Any, source: str | LoggedModel) -> tuple[str, str, str, str]:
        """(model_uri, model_id, artifact_uri, run_id) of what to register."""
        from aiw.mlops.tracking import LoggedModel

        if isinstance(source, LoggedModel):
            return source.model_uri, source.model_id, source.artifact_uri, source.run_id
        if not isinstance(source, str) or not source.strip():
            raise InvalidInputError("Name what to register: a run id or a models:/m-... URI.")
        source = source.strip()
        if source.startswith("models:/m-"):
            model_id = source.split("/", 1)[1].strip("/")
            try:
                logged = client.get_logged_model(model_id)
            except Exception as exc:
                raise NotFoundError(f"No logged model {source}", hint="see the run's models in MLflow") from exc
            return source, model_id, logged.artifact_location, logged.source_run_id
        if not re.fullmatch(r"[0-9a-f]{32}", source):
            raise InvalidInputError(f"{source!r} is neither a run id (32 hex digits) nor a models:/m-... URI.")
        try:
            run = client.get_run(source)
        except Exception as exc:
            raise NotFoundError(f"No MLflow run {source}", hint="copy the run id from 'aiw models train'") from exc
        found = client.search_logged_models(
            experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{source}'"
        )
        if len(found) != 1:
            raise InvalidInputError(f"The run {source} logged {len(found)} models; register one by its models:/ URI.")
        logged = found[0]
        return f"models:/{logged.model_id}", logged.model_id, logged.artifact_location, source

    # -- reads ---------------------------------------------------------------------------------
    def _cache_dir(self, name: str, version: str, *, create: bool = False) -> Path:
        path = self.workspace.path("cache") / "models" / name / version
        if create:
            path.mkdir(parents=True, exist_ok=True)
        return path

    def latest_version(self, name: str) -> int | None:
        """The newest registered version of ``name``, or None."""
        with self.db.engine.connect() as conn:
            value = conn.execute(
                sa.select(sa.func.max(mlops_model_versions.c.version)).where(mlops_model_versions.c.model_name == name)
            ).scalar()
        return int(value) if value is not None else None

    def aliases(self, name: str) -> dict[str, int]:
        """{alias: version} of ``name`` as this layer set them."""
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                sa.select(mlops_aliases.c.alias, mlops_aliases.c.version).where(mlops_aliases.c.model_name == name)
            ).all()
        return {r.alias: int(r.version) for r in rows}

    def get(self, name: str, version: int | str) -> ModelVersion:
        """One version.

        Raises:
            NotFoundError: no such model or version.
        """
        number = _version_number(version)
        with self.db.engine.connect() as conn:
            row = conn.execute(
                sa.select(mlops_model_versions).where(
                    (mlops_model_versions.c.model_name == name) & (mlops_model_versions.c.version == number)
                )
            ).first()
        if row is None:
            known = self.versions(name)
            if not known:
                raise NotFoundError(f"No model named {name!r} is registered", hint="see 'aiw models list'")
            raise NotFoundError(
                f"Model {name!r} has no version {number}",
                hint=f"its versions are {', '.join(str(v.version) for v in known)}",
            )
        aliases = tuple(sorted(a for a, v in self.aliases(name).items() if v == number))
        return _to_version(row, aliases)

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version of ``name``, newest first (empty when the model is unknown)."""
        aliases = self.aliases(name)
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                sa.select(mlops_model_versions)
                .where(mlops_model_versions.c.model_name == name)
                .order_by(mlops_model_versions.c.version.desc())
            ).all()
        return [_to_version(r, tuple(sorted(a for a, v in aliases.items() if v == r.version))) for r in rows]

    def list_models(self) -> list[ModelSummary]:
        """Every governed model, by name."""
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    mlops_model_versions.c.model_name,
                    sa.func.max(mlops_model_versions.c.version).label("latest"),
                    sa.func.count().label("n"),
                    sa.func.max(mlops_model_versions.c.registered_at).label("updated"),
                )
                .group_by(mlops_model_versions.c.model_name)
                .order_by(mlops_model_versions.c.model_name)
            ).all()
            alias_rows = conn.execute(sa.select(mlops_aliases)).all()
        by_model: dict[str, dict[str, int]] = {}
        for a in alias_rows:
            by_model.setdefault(a.model_name, {})[a.alias] = int(a.version)
        return [
            ModelSummary(r.model_name, int(r.latest), int(r.n), by_model.get(r.model_name, {}), _utc(r.updated))
            for r in rows
        ]

    def resolve(self, name: str, ref: str | int | None = None) -> int:
        """The version number ``ref`` names: a number, an alias (default ``champion``) or ``latest``.

        Raises:
            NotFoundError: unknown model, version or alias.
        """
        check_model_name(name)
        if ref is None or ref == "":
            ref = "champion"
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            return self.get(name, int(ref)).version
        if ref == "latest":
            latest = self.latest_version(name)
            if latest is None:
                raise NotFoundError(f"No model named {name!r} is registered", hint="see 'aiw models list'")
            return latest
        aliases = self.aliases(name)
        if ref not in aliases:
            if self.latest_version(name) is None:
                raise NotFoundError(f"No model named {name!r} is registered", hint="see 'aiw models list'")
            raise NotFoundError(
                f"Model {name!r} has no alias {ref!r}",
                hint=(
                    f"its aliases are {', '.join(sorted(aliases))}"
                    if aliases
                    else "no version was promoted yet: request, approve and promote one"
                ),
            )
        return aliases[ref]

    # -- integrity -----------------------------------------------------------------------------
    def local_folder(self, mv: ModelVersion) -> Path:
        """The version's files on this machine (downloaded once into the cache when remote)."""
        folder = local_path_of(mv.artifact_uri)
        if folder is not None:
            return folder
        target = self._cache_dir(mv.name, str(mv.version))
        if not target.exists():
            self._download(mv.artifact_uri, mv.name).rename(target)
        return target

    def verified_folder(self, name: str, version: int, *, actor: str = "system:serving") -> tuple[Path, ModelVersion]:
        """The version's folder after checking every file against its registered SHA-256.

        Raises:
            IntegrityError: a file changed, went missing or was added (audited as ``denied``).
        """
        mv = self.get(name, version)
        folder = self.local_folder(mv)
        result = check_manifest(folder, mv.manifest)
        if not result.ok:
            exc = IntegrityError(
                f"Model {name!r} version {version} failed its checksum check ({result.describe()}); "
                "it will not be loaded",
                hint="restore the registered files or register a new version",
            )
            raise self.deny(
                actor,
                "models.load",
                mv.resource,
                exc,
                {"changed": result.changed, "missing": result.missing, "added": result.added},
            ) from None
        return folder, mv

    def check_mlflow_aliases(self, name: str) -> list[str]:
        """Differences between MLflow's aliases of ``name`` and those this layer set (empty if none).

        Aliases are moved only here; a difference means someone moved one in MLflow directly.
        """
        ours = self.aliases(name)
        try:
            theirs = {k: int(v) for k, v in (self._client().get_registered_model(name).aliases or {}).items()}
        except Exception as exc:
            raise BackendError(f"MLflow could not read the aliases of {name!r}: {exc}") from exc
        problems = []
        for alias in sorted(set(ours) | set(theirs)):
            if ours.get(alias) != theirs.get(alias):
                problems.append(f"@{alias}: governed {ours.get(alias)}, MLflow {theirs.get(alias)}")
        return problems


def _create_version(client: Any, name: str, model_uri: str, run_id: str, description: str) -> Any:
    """A new MLflow version of ``name``; the registered model is created with its first version.

    The version is created straight away (one call when the model exists, the usual case); only
    when MLflow answers that the model does not exist is it created first.
    """
    from mlflow.exceptions import MlflowException

    try:
        return client.create_model_version(name, model_uri, run_id=run_id, description=description or None)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
    # Created meanwhile by another registration: fine, add the version to it.
    with contextlib.suppress(Exception):
        client.create_registered_model(name)
    return client.create_model_version(name, model_uri, run_id=run_id, description=description or None)


def _version_number(version: int | str) -> int:
    try:
        number = int(version)
    except (TypeError, ValueError):
        raise InvalidInputError(f"A model version must be a positive integer. Got {version!r}.") from None
    if not 1 <= number <= MAX_ID:
        raise InvalidInputError(f"A model version must be an integer in [1, {MAX_ID}]. Got {version!r}.")
    return number


def read_mlmodel(path: Path) -> tuple[str, list[str], tuple[ColumnSpec, ...]]:
    """(flavor, skops trusted types, input columns) from an MLmodel file."""
    import yaml  # type: ignore[import-untyped,unused-ignore]

    if not path.is_file():
        raise InvalidInputError(f"{path.parent} is not an MLflow model folder (no MLmodel file)")
    # libyaml's loader when present: the pure-Python one takes 10x longer on an MLmodel file.
    doc = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    flavors = doc.get("flavors", {})
    sk = flavors.get("sklearn")
    if not sk:
        raise InvalidInputError(
            f"Only scikit-learn models can be governed here; this model's flavors are {', '.join(flavors) or 'none'}",
            hint="log it with aiw.mlops.tracking.log_model",
        )
    if sk.get("serialization_format") != "skops":
        raise InvalidInputError(
            f"The model is saved as {sk.get('serialization_format')!r}; only skops (safe loading) is accepted",
            hint="log it with serialization_format='skops' (the default of aiw.mlops.tracking.log_model)",
        )
    inputs = json.loads((doc.get("signature") or {}).get("inputs") or "[]")
    columns = tuple(ColumnSpec(c["name"], c["type"], bool(c.get("required", True))) for c in inputs if "name" in c)
    if not columns:
        raise InvalidInputError("The model has no column signature; log it with an input example or a signature")
    return "sklearn", list(sk.get("skops_trusted_types") or []), columns


def _to_version(row: Any, aliases: tuple[str, ...]) -> ModelVersion:
    return ModelVersion(
        name=row.model_name,
        version=int(row.version),
        run_id=row.run_id,
        model_uri=row.model_uri,
        artifact_uri=row.artifact_uri,
        flavor=row.flavor,
        manifest=json.loads(row.manifest),
        manifest_sha256=row.manifest_sha256,
        trusted_types=tuple(json.loads(row.trusted_types)),
        signature=tuple(ColumnSpec(**c) for c in json.loads(row.signature)),
        metrics=json.loads(row.metrics),
        data_fingerprint=json.loads(row.data_fingerprint),
        code_version=json.loads(row.code_version),
        parent_version=row.parent_version,
        description=row.description,
        registered_by=row.registered_by,
        registered_at=_utc(row.registered_at),
        aliases=aliases,
    )
