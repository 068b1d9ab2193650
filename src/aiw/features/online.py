"""Online features for model serving: a model's input columns, read by entity key.

A scoring request may carry entity keys instead of feature values
(``{"entities": {"claim_id": [17, 42]}}``). :class:`OnlineFeatureReader` maps each of the model's
input columns (its signature) to the online feature of the same name, reads those features from
the feature store's online store (SQLite, or Redis), and hands back one list of values per
column, in the order of the keys.

Which feature feeds a column:

* by default, the feature of the same name in an *online* feature view whose join keys the
  request gives (the ``claim_labels`` view is offline, so a label or the sensitive attribute is
  never served);
* with ``feature_service``, only that service's features are considered;
* with ``features`` (``["claim_features:amount", ...]``), exactly those: each must feed one input.

A column that no feature feeds, or that two do, is refused with the names that would settle it.
Keys the online store does not hold (never materialized, or older than the TTL) are refused with
:class:`MissingOnlineFeatures`, naming them.

Feast is imported only when the first such request arrives; a resolved mapping is kept for
:data:`PLAN_TTL_S` seconds (the registry's own cache time), so a request costs one online read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiw.errors import InvalidInputError, NotFoundError
from aiw.features.store import FeatureStoreService

if TYPE_CHECKING:
    from aiw.workspace import Workspace

__all__ = ["PLAN_TTL_S", "MissingOnlineFeatures", "OnlineFeatureReader", "OnlineInputs", "OnlinePlan"]

PLAN_TTL_S = 60.0
"""How long a resolved column -> feature mapping is reused (the Feast registry's cache time)."""

_SHOW_KEYS = 10
_NOT_FOUND = 3  # feast.protos.feast.serving.ServingService_pb2.FieldStatus.NOT_FOUND
_OUTSIDE_MAX_AGE = 4  # FieldStatus.OUTSIDE_MAX_AGE: older than the view's TTL


class MissingOnlineFeatures(InvalidInputError):
    """Some entity keys of a request have no features in the online store (answered with 422).

    Attributes:
        missing: ``{"claim_id": [999999, ...]}``: the keys without online features.
    """

    kind = "features_missing"

    def __init__(self, message: str, *, missing: dict[str, list[Any]], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.missing = missing

    def fields(self) -> dict[str, Any]:
        """The keys without online features (added to the API's 422 body)."""
        return {"missing": self.missing}


@dataclass(frozen=True)
class OnlinePlan:
    """Which online feature feeds each input column of a model.

    Attributes:
        refs: Input column -> ``view:feature``.
        join_keys: View -> the join keys it is looked up by.
        key_types: Join key -> the Python type of its values (``int`` or ``str``).
    """

    refs: dict[str, str]
    join_keys: dict[str, tuple[str, ...]]
    key_types: dict[str, type]

    @property
    def needed_keys(self) -> list[str]:
        """Every join key the lookup needs, in a stable order."""
        return sorted({k for keys in self.join_keys.values() for k in keys})


@dataclass(frozen=True)
class OnlineInputs:
    """A model's input columns read from the online store.

    Attributes:
        columns: Input column -> one value per entity row.
        refs: The ``view:feature`` references read, in column order.
        online_store: ``sqlite`` or ``redis``.
        project: The Feast project.
    """

    columns: dict[str, list[Any]]
    refs: tuple[str, ...]
    online_store: str
    project: str

    def describe(self) -> dict[str, Any]:
        """What a response says about where its inputs came from."""
        return {
            "source": "online_store",
            "online_store": self.online_store,
            "project": self.project,
            "refs": list(self.refs),
        }


class OnlineFeatureReader:
    """Read model inputs from the workspace's online feature store by entity key.

    Safe to share between threads. Args:
        workspace: The workspace (its ``features`` settings pick SQLite or Redis and the project).
    """

    def __init__(self, workspace: Workspace) -> None:
        self.service = FeatureStoreService(workspace, workspace.settings.features)
        self._lock = threading.Lock()
        self._plans: dict[tuple[Any, ...], tuple[float, OnlinePlan]] = {}

    # -- the mapping -------------------------------------------------------------------------
    def plan(
        self,
        columns: Sequence[str],
        keys: Sequence[str],
        *,
        features: Sequence[str] | None = None,
        feature_service: str | None = None,
    ) -> OnlinePlan:
        """Which online feature feeds each of ``columns``, given the join keys a request carries.

        Args:
            columns: The model's input columns (signature order).
            keys: The join keys the request gives.
            features: Explicit ``view:feature`` references (each must feed one column).
            feature_service: Consider only this feature service's features.

        Raises:
            InvalidInputError: an unknown join key, feature or feature service; a column no
                online feature feeds, or that several do; a view whose join key is not given.
            NotFoundError: the feature store has no online feature views (not applied yet).
        """
        cache_key = (
            tuple(columns),
            tuple(sorted(keys)),
            tuple(features) if features is not None else None,
            feature_service,
        )
        now = time.monotonic()
        with self._lock:
            hit = self._plans.get(cache_key)
        if hit is not None and hit[0] > now:
            return hit[1]
        made = self._plan(list(columns), set(keys), features, feature_service)
        with self._lock:
            if len(self._plans) > 256:
                self._plans.clear()
            self._plans[cache_key] = (now + PLAN_TTL_S, made)
        return made

    def _plan(
        self, columns: list[str], keys: set[str], features: Sequence[str] | None, feature_service: str | None
    ) -> OnlinePlan:
        store = self.service.store
        project = self.service.settings.project
        entity_keys = {e.join_key: _python_type(e.value_type) for e in store.list_entities(allow_cache=True)}
        unknown = sorted(keys - set(entity_keys))
        if unknown:
            raise InvalidInputError(
                f"Unknown entity key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} in 'entities'; "
                f"the feature store (project {project!r}) knows {', '.join(sorted(entity_keys)) or 'none'}",
                hint='e.g. {"entities": {"claim_id": [17, 42]}}',
            )
        views = {v.name: v for v in store.list_feature_views(allow_cache=True) if v.online}
        if not views:
            raise NotFoundError(
                f"The feature store (project {project!r}) has no online feature views",
                hint="run 'aiw features apply' and 'aiw features materialize' first",
            )
        view_keys = {name: tuple(c.name for c in v.entity_columns) for name, v in views.items()}
        if features is not None:
            candidates = self._named(features, views)
        elif feature_service is not None:
            candidates = self._service(feature_service, views)
        else:
            candidates = [(name, f.name) for name, v in views.items() for f in v.features]
        explicit = features is not None or feature_service is not None
        wanted = set(columns)
        if features is not None:
            extra = [f"{v}:{f}" for v, f in candidates if f not in wanted]
            if extra:
                raise InvalidInputError(
                    f"The features {', '.join(extra[:5])} are not inputs of this model",
                    hint=f"the model takes {', '.join(columns)}",
                )
        by_column: dict[str, list[str]] = {}
        unreachable: dict[str, list[str]] = {}
        for view, feature in candidates:
            if feature not in wanted:
                continue
            if set(view_keys[view]) <= keys:
                by_column.setdefault(feature, []).append(f"{view}:{feature}")
            else:
                unreachable.setdefault(feature, []).append(view)
        if explicit and unreachable:
            view = sorted({v for vs in unreachable.values() for v in vs})[0]
            need = [k for k in view_keys[view] if k not in keys]
            raise InvalidInputError(
                f"The feature view {view!r} is looked up by {', '.join(need)}, which 'entities' does not give",
                hint=f"add {need[0]} to 'entities'",
            )
        missing = [c for c in columns if c not in by_column]
        if missing:
            shown = ", ".join(map(repr, missing[:8])) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
            where = (
                " among the named features"
                if features is not None
                else f" in feature service {feature_service!r}"
                if feature_service is not None
                else f" in any online feature view looked up by {', '.join(sorted(keys))}"
            )
            also = sorted({v for c in missing for v in unreachable.get(c, [])})
            need = sorted({k for v in also for k in view_keys[v]} - keys)
            if features is not None:
                hint = "name one feature per input column, or leave 'features' out to match them by name"
            elif feature_service is not None:
                hint = "leave 'feature_service' out to match the inputs by name in every online view"
            elif also:
                hint = f"{', '.join(also)} also has them: add {', '.join(need)} to 'entities'"
            else:
                hint = "send the input columns themselves (dataframe_records ...), or apply a view that has them"
            plural = "s" if len(missing) > 1 else ""
            raise InvalidInputError(
                f"No online feature feeds the model's input column{plural} {shown}{where}", hint=hint
            )
        ambiguous = {c: refs for c, refs in by_column.items() if len(refs) > 1}
        if ambiguous:
            column, several = next(iter(sorted(ambiguous.items())))
            raise InvalidInputError(
                f"The model's input column {column!r} is a feature of several views: {', '.join(several)}",
                hint=f'name the ones to use, e.g. "features": ["{several[0]}", ...], or pass a "feature_service"',
            )
        chosen = {c: by_column[c][0] for c in columns}
        used = {r.split(":", 1)[0] for r in chosen.values()}
        join_keys = {v: view_keys[v] for v in sorted(used)}
        return OnlinePlan(chosen, join_keys, {k: entity_keys.get(k, int) for keys in join_keys.values() for k in keys})

    def _named(self, features: Sequence[str], views: Mapping[str, Any]) -> list[tuple[str, str]]:
        out = []
        for ref in features:
            view, sep, feature = ref.partition(":")
            if not sep or not view or not feature or ":" in feature:
                raise InvalidInputError(f"Feature references look like 'view:feature'. Got {ref!r}.")
            found = views.get(view)
            if found is None or feature not in {f.name for f in found.features}:
                raise InvalidInputError(
                    f"Unknown online feature {ref!r}",
                    hint="list them with 'aiw features list'; only online views are served",
                )
            out.append((view, feature))
        return out

    def _service(self, name: str, views: Mapping[str, Any]) -> list[tuple[str, str]]:
        try:
            service = self.service.store.get_feature_service(name, allow_cache=True)
        except Exception as exc:  # Feast raises its own FeatureServiceNotFoundException
            known = [s.name for s in self.service.store.list_feature_services()]
            raise InvalidInputError(
                f"Unknown feature service {name!r}", hint=f"known: {', '.join(known) or 'none'}"
            ) from exc
        return [(p.name, f.name) for p in service.feature_view_projections if p.name in views for f in p.features]

    # -- the lookup --------------------------------------------------------------------------
    def read(
        self,
        columns: Sequence[str],
        entities: Mapping[str, Sequence[Any]],
        *,
        features: Sequence[str] | None = None,
        feature_service: str | None = None,
    ) -> OnlineInputs:
        """Read ``columns`` for every entity row of ``entities`` (``{join_key: [values]}``).

        Raises:
            InvalidInputError: see :meth:`plan`; key values of the wrong type.
            MissingOnlineFeatures: keys the online store holds no (fresh) features for, named.
            BackendError: the online store failed.
        """
        from aiw.features.store import _backend

        plan = self.plan(columns, list(entities), features=features, feature_service=feature_service)
        rows = {k: _keys(k, entities[k], plan.key_types[k]) for k in plan.needed_keys}
        refs = [plan.refs[c] for c in columns]
        unique = list(dict.fromkeys(refs))
        try:
            response = self.service.store.get_online_features(
                features=unique, entity_rows=rows, full_feature_names=True
            )
        except Exception as exc:
            raise _backend("get_online_features", exc) from exc
        names = list(response.proto.metadata.feature_names.val)
        values = response.to_dict()
        statuses = {n: list(r.statuses) for n, r in zip(names, response.proto.results, strict=True)}
        self._check_found(plan, rows, unique, statuses)
        out = {c: values[plan.refs[c].replace(":", "__", 1)] for c in columns}
        return OnlineInputs(out, tuple(refs), self.service.online_kind, self.service.settings.project)

    def _check_found(
        self, plan: OnlinePlan, rows: dict[str, list[Any]], refs: list[str], statuses: dict[str, list[int]]
    ) -> None:
        n = len(next(iter(rows.values())))
        problems: list[str] = []
        missing: dict[str, list[Any]] = {}
        for view, keys in plan.join_keys.items():
            names = [r.replace(":", "__", 1) for r in refs if r.split(":", 1)[0] == view]
            absent, stale = [], []
            for i in range(n):
                row = [statuses[name][i] for name in names]
                if all(s == _NOT_FOUND for s in row):
                    absent.append(i)
                elif all(s in (_NOT_FOUND, _OUTSIDE_MAX_AGE) for s in row):
                    stale.append(i)
            for label, idx in (("has no", absent), ("has only stale (older than the TTL)", stale)):
                if not idx:
                    continue
                for k in keys:
                    missing.setdefault(k, []).extend(rows[k][i] for i in idx)
                if len(keys) == 1:
                    shown = f"{keys[0]} " + ", ".join(str(rows[keys[0]][i]) for i in idx[:_SHOW_KEYS])
                else:
                    shown = "; ".join(", ".join(f"{k}={rows[k][i]}" for k in keys) for i in idx[:_SHOW_KEYS])
                more = f" and {len(idx) - _SHOW_KEYS} more" if len(idx) > _SHOW_KEYS else ""
                problems.append(f"the online store {label} features of view {view!r} for {shown}{more}")
        if problems:
            raise MissingOnlineFeatures(
                "Cannot score: " + "; ".join(problems),
                missing={k: sorted(set(v)) for k, v in missing.items()},
                hint="check the keys, or load their features with 'aiw features materialize'",
            )


def _keys(name: str, values: Sequence[Any], kind: type) -> list[Any]:
    """The values of join key ``name``, each of the entity's type (JSON numbers for INT64 keys)."""
    for i, v in enumerate(values):
        if type(v) is not kind:
            expected = "an integer" if kind is int else "a string"
            raise InvalidInputError(f"entities[{name!r}][{i}] must be {expected} key. Got {v!r}.")
    return list(values)


def _python_type(value_type: Any) -> type:
    """``int`` for Feast's integer value types, else ``str``."""
    return int if getattr(value_type, "name", "") in ("INT64", "INT32") else str
