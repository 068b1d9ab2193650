"""Data drift per column, in the scikit-learn shape: ``fit(reference)`` then ``score(current)``.

:class:`DataDriftDetector` learns a compact :class:`ReferenceProfile` from the reference data
(numeric columns: exact distinct values and counts, or a quantile sketch when a column has more
distinct values than ``max_points``; categorical columns: category counts) and scores any later
table against it, column by column, with Evidently's methods, defaults and selection rules:

* reference with <= 1000 rows: numeric with > 5 distinct values (reference and current
  together) -> ``ks``; numeric with 3..5 values or categorical with > 2 -> ``chisquare``;
  <= 2 values -> ``z``;
* reference with > 1000 rows: numeric with > 5 values -> ``wasserstein`` (normed);
  otherwise -> ``jensenshannon``.

Scores equal Evidently's to rounding error wherever the profile is exact (every column of a
reference with at most ``max_points`` rows, and any column with at most ``max_points``
distinct values); a sketched column's scores are approximations, flagged ``exact: false``.
The dataset drifts when at least ``drift_share`` of the scored columns drift.
"""

from __future__ import annotations

import base64
import json
import os
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

from aiw.errors import ConflictError, InvalidInputError
from aiw.mlops.monitoring import _stats as st
from aiw.mlops.monitoring._frame import INTEGER_CARDINALITY_LIMIT, Frame

__all__ = [
    "METHODS",
    "CategoricalProfile",
    "ColumnDrift",
    "DataDriftDetector",
    "DriftReport",
    "MethodInfo",
    "NumericProfile",
    "ReferenceProfile",
    "select_method",
]

PROFILE_FORMAT = "aiw-drift-profile/1"
SMALL_SAMPLE_ROWS = 1000  # Evidently: statistical tests up to this many reference rows
FEW_VALUES = 5  # numeric columns with at most this many values are treated as discrete
BINNED_AS_CATEGORIES = 20  # JS/PSI bin numeric columns with more distinct reference values
PLOT_BINS = 24
PLOT_CATEGORIES = 15


@dataclass(frozen=True)
class MethodInfo:
    """A drift method: what its score is, its default threshold and the column kinds it takes."""

    name: str
    score_type: Literal["p_value", "distance"]
    default_threshold: float
    kinds: tuple[str, ...]
    description: str

    def drifted(self, score: float, threshold: float) -> bool:
        """Evidently's decision: ``ks`` p <= t, the other tests p < t, distances d >= t."""
        if self.name == "ks":
            return bool(score <= threshold)
        if self.score_type == "p_value":
            return bool(score < threshold)
        return bool(score >= threshold)


METHODS: dict[str, MethodInfo] = {
    m.name: m
    for m in (
        MethodInfo("ks", "p_value", 0.05, ("numerical",), "Kolmogorov-Smirnov p-value"),
        MethodInfo("wasserstein", "distance", 0.1, ("numerical",), "Wasserstein distance (normed)"),
        MethodInfo("chisquare", "p_value", 0.05, ("numerical", "categorical"), "chi-square p-value"),
        MethodInfo("z", "p_value", 0.05, ("numerical", "categorical"), "Z-test p-value"),
        MethodInfo("jensenshannon", "distance", 0.1, ("numerical", "categorical"), "Jensen-Shannon distance"),
        MethodInfo("psi", "distance", 0.1, ("numerical", "categorical"), "PSI"),
    )
}
"""Every method by its Evidently name."""


def select_method(kind: str, n_reference: int, n_values: int) -> str:
    """Evidently's default method for a column.

    Args:
        kind: ``numerical`` or ``categorical``.
        n_reference: Non-missing reference observations.
        n_values: Distinct values in reference and current together.
    """
    if kind not in ("numerical", "categorical"):
        raise InvalidInputError(f"No drift method for a {kind!r} column; use numerical or categorical.")
    if n_reference <= SMALL_SAMPLE_ROWS:
        if kind == "numerical" and n_values > FEW_VALUES:
            return "ks"
        return "chisquare" if n_values > 2 else "z"
    if kind == "numerical" and n_values > FEW_VALUES:
        return "wasserstein"
    return "jensenshannon"


# -- the reference profile ------------------------------------------------------------------
def _pack(a: np.ndarray) -> dict[str, str]:
    arr = np.ascontiguousarray(a)
    return {"dtype": arr.dtype.str, "zlib_b64": base64.b64encode(zlib.compress(arr.tobytes(), 6)).decode()}


def _unpack(d: Mapping[str, str]) -> np.ndarray:
    raw = zlib.decompress(base64.b64decode(d["zlib_b64"]))
    return np.frombuffer(raw, dtype=np.dtype(d["dtype"])).copy()


@dataclass(frozen=True)
class NumericProfile:
    """What the profile keeps of a numeric column."""

    n: int
    n_missing: int
    mean: float
    std: float
    min: float
    max: float
    nunique: int
    dist: st.Dist
    kind: str = "numerical"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data; the sample is packed as compressed little-endian binary."""
        return {
            "kind": self.kind,
            "n": self.n,
            "n_missing": self.n_missing,
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
            "nunique": self.nunique,
            "exact": self.dist.exact,
            "values": _pack(self.dist.values),
            "weights": _pack(self.dist.weights),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NumericProfile:
        """The inverse of :meth:`to_dict`."""
        dist = st.Dist(_unpack(d["values"]), _unpack(d["weights"]), int(d["n"]), bool(d["exact"]))
        return cls(
            int(d["n"]),
            int(d["n_missing"]),
            float(d["mean"]),
            float(d["std"]),
            float(d["min"]),
            float(d["max"]),
            int(d["nunique"]),
            dist,
        )


@dataclass(frozen=True)
class CategoricalProfile:
    """What the profile keeps of a categorical column: each category and its count."""

    n: int
    n_missing: int
    values: list[Any]
    counts: np.ndarray
    kind: str = "categorical"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {
            "kind": self.kind,
            "n": self.n,
            "n_missing": self.n_missing,
            "values": [_json_scalar(v) for v in self.values],
            "counts": self.counts.tolist(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CategoricalProfile:
        """The inverse of :meth:`to_dict`."""
        return cls(int(d["n"]), int(d["n_missing"]), list(d["values"]), np.asarray(d["counts"], dtype=np.int64))


def _json_scalar(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, bool | int | float | str) or v is None:
        return v
    return str(v)  # dates, decimals and the like: compared as text


ColumnProfile = NumericProfile | CategoricalProfile


@dataclass(frozen=True)
class ReferenceProfile:
    """A compact, JSON-serialisable summary of the reference data, and the detector's settings.

    Attributes:
        columns: The profile of each monitored column.
        skipped: Columns left out, with the reason (text, dates, empty ...).
        n_rows: Rows of the reference data.
        params: The detector parameters the profile was fitted with.
        created_at: When it was fitted (UTC ISO-8601).
    """

    columns: dict[str, ColumnProfile]
    skipped: dict[str, str]
    n_rows: int
    params: dict[str, Any]
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {
            "format": PROFILE_FORMAT,
            "created_at": self.created_at,
            "n_rows": self.n_rows,
            "params": self.params,
            "skipped": self.skipped,
            "columns": {name: p.to_dict() for name, p in self.columns.items()},
        }

    def to_json(self) -> str:
        """The profile as a JSON document."""
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReferenceProfile:
        """Read a profile written by :meth:`to_dict`.

        Raises:
            InvalidInputError: not a drift profile, or one of another format version.
        """
        if not isinstance(d, Mapping) or d.get("format") != PROFILE_FORMAT:
            raise InvalidInputError(
                f"Not a drift profile of format {PROFILE_FORMAT!r}.",
                hint="fit a DataDriftDetector and save its profile_.to_json()",
            )
        cols: dict[str, ColumnProfile] = {}
        for name, c in d["columns"].items():
            cols[name] = NumericProfile.from_dict(c) if c["kind"] == "numerical" else CategoricalProfile.from_dict(c)
        return cls(
            cols, dict(d.get("skipped", {})), int(d["n_rows"]), dict(d.get("params", {})), str(d.get("created_at", ""))
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> ReferenceProfile:
        """Read a profile written by :meth:`to_json`."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"A drift profile must be JSON: {exc}") from exc
        return cls.from_dict(data)


# -- the report ---------------------------------------------------------------------------------
@dataclass
class ColumnDrift:
    """The drift verdict for one column.

    ``score`` is what Evidently calls the drift score: the p-value of a test or the distance;
    ``statistic`` is the test statistic (KS D, chi-squared, z) or the distance again.
    """

    column: str
    kind: str
    method: str
    score_type: str
    score: float | None
    statistic: float | None
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int
    missing_current: int
    exact: bool
    reference_mean: float | None = None
    current_mean: float | None = None
    plot: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return asdict(self)


@dataclass
class DriftReport:
    """What :meth:`DataDriftDetector.score` found.

    Attributes:
        columns: One verdict per scored column.
        skipped: Columns not scored, with the reason.
        dataset_drift: Whether at least ``drift_share`` of the scored columns drifted.
        share_drifted: Drifted columns / scored columns.
    """

    columns: list[ColumnDrift]
    skipped: dict[str, str]
    drift_share: float
    reference_rows: int
    current_rows: int
    elapsed_s: float
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    subject: str = ""
    kind: str = "data"

    @property
    def n_columns(self) -> int:
        """Scored columns."""
        return len(self.columns)

    @property
    def n_drifted(self) -> int:
        """Columns that drifted."""
        return sum(1 for c in self.columns if c.drifted)

    @property
    def share_drifted(self) -> float:
        """Drifted columns / scored columns (0 when none was scored)."""
        return self.n_drifted / self.n_columns if self.columns else 0.0

    @property
    def dataset_drift(self) -> bool:
        """Evidently's rule: share of drifted columns >= drift_share."""
        return bool(self.columns) and self.share_drifted >= self.drift_share

    @property
    def drifted_columns(self) -> list[str]:
        """Names of the drifted columns."""
        return [c.column for c in self.columns if c.drifted]

    def column(self, name: str) -> ColumnDrift:
        """The verdict of one column (KeyError when it was not scored)."""
        for c in self.columns:
            if c.column == name:
                return c
        raise KeyError(name)

    def summary(self) -> dict[str, Any]:
        """The headline figures alert rules and gauges read."""
        return {
            "subject": self.subject,
            "kind": self.kind,
            "dataset_drift": self.dataset_drift,
            "share_drifted": self.share_drifted,
            "drifted_columns": self.n_drifted,
            "columns": self.n_columns,
            "drift_share": self.drift_share,
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (NaN and infinities become null)."""
        return {
            "kind": self.kind,
            "subject": self.subject,
            "created_at": self.created_at,
            "dataset_drift": self.dataset_drift,
            "drift_share": self.drift_share,
            "share_drifted": self.share_drifted,
            "n_columns": self.n_columns,
            "n_drifted": self.n_drifted,
            "drifted_columns": self.drifted_columns,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "elapsed_s": self.elapsed_s,
            "skipped": self.skipped,
            "columns": [c.to_dict() for c in self.columns],
        }

    def to_json(self, indent: int | None = None) -> str:
        """The report as JSON."""
        return json.dumps(_clean(self.to_dict()), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DriftReport:
        """Read a report written by :meth:`to_dict`."""
        cols = [ColumnDrift(**c) for c in d.get("columns", [])]
        return cls(
            cols,
            dict(d.get("skipped", {})),
            float(d["drift_share"]),
            int(d["reference_rows"]),
            int(d["current_rows"]),
            float(d.get("elapsed_s", 0.0)),
            str(d.get("created_at", "")),
            str(d.get("subject", "")),
            str(d.get("kind", "data")),
        )


def _clean(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        return _clean(obj.item())
    return obj


# -- the detector ---------------------------------------------------------------------------
def _check_share(value: Any, owner: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise InvalidInputError(
            f"The 'drift_share' parameter of {owner} must be a float in (0, 1]. Got {value!r} instead."
        )
    return float(value)


class DataDriftDetector:
    """Per-column data drift with Evidently-compatible methods, thresholds and selection rules.

    The constructor only stores parameters; :meth:`fit` learns ``profile_`` from the reference
    data; :meth:`score` compares current data with it.

    Args:
        columns: Columns to monitor; None monitors every column of the reference.
        column_types: Force a column's kind, ``numerical`` or ``categorical`` (otherwise inferred
            from the reference by Evidently's rules; text and date columns are skipped).
        methods: Per-column method by name (``ks``, ``wasserstein``, ``chisquare``, ``z``,
            ``jensenshannon``, ``psi``), overriding the automatic choice.
        thresholds: Per-column threshold, overriding the method's default.
        drift_share: The dataset drifts when at least this share of scored columns drift.
        max_points: Most distinct values kept per numeric column; a column with more is kept
            as a quantile sketch of this many points (approximate scores). None keeps every
            value (exact at any size, larger profile). At least 10,000.
        n_jobs: Columns scored in parallel (threads; the statistics release the GIL).

    Example:
        >>> det = DataDriftDetector().fit(reference_df)            # doctest: +SKIP
        >>> report = det.score(current_df)                         # doctest: +SKIP
        >>> report.dataset_drift, report.drifted_columns           # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        columns: Sequence[str] | None = None,
        column_types: Mapping[str, str] | None = None,
        methods: Mapping[str, str] | None = None,
        thresholds: Mapping[str, float] | None = None,
        drift_share: float = 0.5,
        max_points: int | None = 100_000,
        n_jobs: int | None = None,
    ) -> None:
        self.columns = columns
        self.column_types = column_types
        self.methods = methods
        self.thresholds = thresholds
        self.drift_share = drift_share
        self.max_points = max_points
        self.n_jobs = n_jobs

    # -- parameters ------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """The constructor parameters (scikit-learn convention)."""
        return {
            "columns": None if self.columns is None else list(self.columns),
            "column_types": None if self.column_types is None else dict(self.column_types),
            "methods": None if self.methods is None else dict(self.methods),
            "thresholds": None if self.thresholds is None else dict(self.thresholds),
            "drift_share": self.drift_share,
            "max_points": self.max_points,
            "n_jobs": self.n_jobs,
        }

    def _validate(self) -> None:
        name = type(self).__name__
        _check_share(self.drift_share, name)
        mp = self.max_points
        if mp is not None and (isinstance(mp, bool) or not isinstance(mp, int) or mp < st.KS_EXACT_MAX_N):
            raise InvalidInputError(
                f"The 'max_points' parameter of {name} must be None or an int >= "
                f"{st.KS_EXACT_MAX_N}. Got {mp!r} instead."
            )
        nj = self.n_jobs
        if nj is not None and (isinstance(nj, bool) or not isinstance(nj, int) or nj < 1):
            raise InvalidInputError(
                f"The 'n_jobs' parameter of {name} must be None or an int >= 1. Got {nj!r} instead."
            )
        for col, kind in (self.column_types or {}).items():
            if kind not in ("numerical", "categorical"):
                raise InvalidInputError(
                    f"The 'column_types' parameter of {name} maps {col!r} to {kind!r}; "
                    "use 'numerical' or 'categorical'."
                )
        for col, method in (self.methods or {}).items():
            if method not in METHODS:
                raise InvalidInputError(
                    f"The 'methods' parameter of {name} names {method!r} for {col!r}; use one of {', '.join(METHODS)}."
                )
        for col, thr in (self.thresholds or {}).items():
            if isinstance(thr, bool) or not isinstance(thr, int | float) or not np.isfinite(thr) or thr <= 0:
                raise InvalidInputError(
                    f"The 'thresholds' parameter of {name} must map columns to "
                    f"positive floats. Got {thr!r} for {col!r} instead."
                )

    def _workers(self) -> int:
        return self.n_jobs or max(1, min(4, os.cpu_count() or 1))

    def _map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        """``[fn(x) for x in items]``, on a thread pool when more than one worker is allowed."""
        workers = min(self._workers(), len(items))
        if workers <= 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(fn, items))

    # -- fit -------------------------------------------------------------------------------
    def fit(self, reference: Any) -> DataDriftDetector:
        """Learn the reference profile.

        Args:
            reference: A pandas DataFrame or a pyarrow Table.

        Returns:
            self, fitted (``profile_``, ``feature_names_in_``, ``n_features_in_``).

        Raises:
            InvalidInputError: bad parameters, a listed column missing, or nothing to monitor.
        """
        self._validate()
        frame = Frame(reference, "reference")
        if frame.n_rows == 0:
            raise InvalidInputError("The reference data has no rows.", hint="fit on a non-empty table")
        names = list(self.columns) if self.columns is not None else frame.columns
        missing = [c for c in names if c not in frame]
        if missing:
            raise InvalidInputError(f"Columns not in the reference data: {', '.join(missing)}.")
        for param in ("column_types", "methods", "thresholds"):
            unknown = sorted(set(getattr(self, param) or {}) - set(names))
            if unknown:
                raise InvalidInputError(
                    f"The '{param}' parameter of {type(self).__name__} names columns "
                    f"that are not monitored: {', '.join(unknown)}."
                )
        forced = dict(self.column_types or {})

        def one(col: str) -> tuple[str, ColumnProfile | str]:
            return col, _profile_column(frame, col, forced.get(col), self.max_points)

        skipped: dict[str, str] = {}
        profiles: dict[str, ColumnProfile] = {}
        for col, prof in self._map(one, names):
            if isinstance(prof, str):
                skipped[col] = prof
            else:
                profiles[col] = prof
        for col, method in (self.methods or {}).items():
            kind = profiles[col].kind if col in profiles else None
            if kind is not None and kind not in METHODS[method].kinds:
                raise InvalidInputError(
                    f"The method {method!r} does not apply to the {kind} column {col!r}; use "
                    f"one of {', '.join(m for m, i in METHODS.items() if kind in i.kinds)}."
                )
        if not profiles:
            raise InvalidInputError(
                "No column of the reference data can be monitored "
                f"({'; '.join(f'{k}: {v}' for k, v in skipped.items()) or 'none'}).",
                hint="pass numerical or categorical columns, or set column_types",
            )
        self.profile_ = ReferenceProfile(
            profiles, skipped, frame.n_rows, self.get_params(), datetime.now(UTC).isoformat()
        )
        self.feature_names_in_ = np.asarray(list(profiles), dtype=object)
        self.n_features_in_ = len(profiles)
        return self

    @classmethod
    def from_profile(cls, profile: ReferenceProfile | Mapping[str, Any] | str) -> DataDriftDetector:
        """A fitted detector from a stored profile (a :class:`ReferenceProfile`, its dict or JSON)."""
        if isinstance(profile, str):
            profile = ReferenceProfile.from_json(profile)
        elif not isinstance(profile, ReferenceProfile):
            profile = ReferenceProfile.from_dict(profile)
        params = {
            k: v
            for k, v in profile.params.items()
            if k in ("columns", "column_types", "methods", "thresholds", "drift_share", "max_points", "n_jobs")
        }
        det = cls(**params)
        det._validate()
        det.profile_ = profile
        det.feature_names_in_ = np.asarray(list(profile.columns), dtype=object)
        det.n_features_in_ = len(profile.columns)
        return det

    # -- score -----------------------------------------------------------------------------
    def _check_fitted(self) -> ReferenceProfile:
        profile = getattr(self, "profile_", None)
        if profile is None:
            raise ConflictError(
                f"This {type(self).__name__} instance is not fitted yet.",
                hint="call 'fit' with the reference data (or use from_profile) before 'score'",
            )
        return profile

    def score(self, current: Any, *, drift_share: float | None = None) -> DriftReport:
        """Compare ``current`` with the reference profile.

        Args:
            current: A pandas DataFrame or a pyarrow Table with the monitored columns.
            drift_share: Override the share of drifted columns that makes dataset drift.

        Raises:
            ConflictError: the detector is not fitted.
            InvalidInputError: a monitored column is missing from ``current``.
        """
        profile = self._check_fitted()
        share = _check_share(drift_share if drift_share is not None else self.drift_share, type(self).__name__)
        started = time.perf_counter()
        frame = Frame(current, "current")
        missing = [c for c in profile.columns if c not in frame]
        if missing:
            raise InvalidInputError(
                f"Monitored columns missing from the current data: {', '.join(missing)}.",
                hint="score a table with the same columns as the reference",
            )
        methods = dict(self.methods or {})
        thresholds = dict(self.thresholds or {})

        def one(item: tuple[str, ColumnProfile]) -> ColumnDrift | str:
            col, prof = item
            if isinstance(prof, NumericProfile):
                return _score_numeric(frame, col, prof, methods.get(col), thresholds.get(col))
            return _score_categorical(frame, col, prof, methods.get(col), thresholds.get(col))

        results = self._map(one, list(profile.columns.items()))
        skipped = dict(profile.skipped)
        cols: list[ColumnDrift] = []
        for (name, _), res in zip(profile.columns.items(), results, strict=True):
            if isinstance(res, str):
                skipped[name] = res
            else:
                cols.append(res)
        return DriftReport(cols, skipped, share, profile.n_rows, frame.n_rows, round(time.perf_counter() - started, 6))


# -- per-column profiling -----------------------------------------------------------------------
_SKIP_HINT = "(declare it in column_types to monitor it)"


def _numeric_profile(values: np.ndarray, n_missing: int, dist: st.Dist, max_points: int | None) -> NumericProfile:
    nunique = dist.nunique
    if max_points is not None:
        dist = dist.sketch(max_points)
    return NumericProfile(
        int(values.size),
        n_missing,
        float(np.mean(values)),
        float(np.std(values)),
        float(values[0]),
        float(values[-1]),
        nunique,
        dist,
    )


def _int_or_float(v: float) -> Any:
    return int(v) if float(v).is_integer() else float(v)


def _profile_column(frame: Frame, col: str, forced: str | None, max_points: int | None) -> ColumnProfile | str:
    """A column's profile, or why it is not monitored.

    Kinds follow Evidently's inference (floats numerical; ints categorical up to 10 distinct
    values; bools and categories categorical; strings text when over half the values are
    distinct), worked out in the same pass that builds the profile.
    """
    family = frame.family(col)
    if forced == "numerical" or (forced is None and family in ("float", "int")):
        values, n_missing = frame.numeric(col)
        if values.size == 0:
            return "no values in the reference data"
        values = np.sort(values)
        dist = st.Dist.from_sorted(values)
        if forced is None and family == "int" and dist.nunique <= INTEGER_CARDINALITY_LIMIT:
            return CategoricalProfile(
                int(values.size), n_missing, [_int_or_float(v) for v in dist.values], dist.weights.astype(np.int64)
            )
        return _numeric_profile(values, n_missing, dist, max_points)
    if forced is None and family not in ("category", "string"):
        return f"{'datetime' if family == 'datetime' else 'unknown'} column {_SKIP_HINT}"
    cats, counts, n_missing = frame.value_counts(col)
    if not cats:
        return "no values in the reference data"
    if forced is None and family == "string":
        if not frame.holds_strings(col):
            return f"unknown column {_SKIP_HINT}"
        if len(cats) > 0.5 * int(counts.sum()):
            return f"text column {_SKIP_HINT}"
    return CategoricalProfile(int(counts.sum()), n_missing, [_json_scalar(v) for v in cats], counts)


# -- per-column scoring -------------------------------------------------------------------------
def _align(
    ref_vals: Sequence[Any], ref_counts: np.ndarray, cur_vals: Sequence[Any], cur_counts: np.ndarray
) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """Counts of both samples over the union of their categories (reference order first)."""
    index: dict[Any, int] = {}
    for v in list(ref_vals) + list(cur_vals):
        index.setdefault(v, len(index))
    r = np.zeros(len(index), dtype=np.float64)
    c = np.zeros(len(index), dtype=np.float64)
    np.add.at(r, [index[v] for v in ref_vals], ref_counts)
    np.add.at(c, [index[v] for v in cur_vals], cur_counts)
    return list(index), r, c


def _first_key(keys: list[Any]) -> Any:
    try:
        return sorted(keys)[0]
    except TypeError:  # mixed types: any fixed order gives the same two-sided p-value
        return sorted(keys, key=lambda v: (type(v).__name__, str(v)))[0]


def _discrete_test(
    method: str,
    keys: list[Any],
    r: np.ndarray,
    c: np.ndarray,
    n_ref: float,
    n_cur: float,
    numeric_bins: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[float, float]:
    """(score, statistic) for chisquare / z / jensenshannon / psi over aligned counts."""
    if method == "chisquare":
        stat, p = st.chisquare_pvalue(r, c)
        return p, stat
    if method == "z":
        first = keys.index(_first_key(keys))
        same = (
            np.count_nonzero(r) == 1
            and np.count_nonzero(c) == 1
            and int(np.flatnonzero(r)[0]) == int(np.flatnonzero(c)[0])
        )
        z, p = st.z_pvalue(float(r[first]), n_ref, float(c[first]), n_cur, single_same_value=same)
        return p, z
    rc, cc = numeric_bins if numeric_bins is not None else (r, c)
    p_ref, p_cur = st.binned_shares(rc, cc, n_ref, n_cur, feel_zeroes=(method == "psi"))
    value = st.jensenshannon(p_ref, p_cur) if method == "jensenshannon" else st.psi(p_ref, p_cur)
    return value, value


def _score_numeric(
    frame: Frame, col: str, prof: NumericProfile, method: str | None, threshold: float | None
) -> ColumnDrift | str:
    values, n_missing = frame.numeric(col)
    if values.size == 0:
        return "no values in the current data"
    values = np.sort(values)
    cur = st.Dist.from_sorted(values)
    ref = prof.dist
    if method is None or method in ("chisquare", "z", "jensenshannon", "psi"):
        if ref.exact and ref.nunique <= FEW_VALUES and cur.nunique <= FEW_VALUES:
            n_values = int(np.union1d(ref.values, cur.values).size)
        else:  # either side alone has more than FEW_VALUES: the exact union size does not matter
            n_values = ref.nunique + cur.nunique
        method = method or select_method("numerical", prof.n, n_values)
    info = METHODS[method]
    thr = float(threshold if threshold is not None else info.default_threshold)
    exact = ref.exact
    if method in ("ks", "wasserstein"):
        merged = st.merge_cdfs(ref, cur)
        if method == "ks":
            stat, score = st.ks_pvalue(ref, cur, merged)
        else:
            score = stat = st.wasserstein_norm(ref, cur, prof.std, merged)
    else:
        bins = None
        if method in ("jensenshannon", "psi") and prof.nunique > BINNED_AS_CATEGORIES:
            edges = st.sturges_edges(min(prof.min, float(values[0])), max(prof.max, float(values[-1])), prof.n + cur.n)
            bins = (st.hist_counts(ref, edges), st.hist_counts(cur, edges))
            keys: list[Any] = []
            r = c = np.zeros(0)
        else:
            union = np.union1d(ref.values, cur.values)
            r = np.zeros(union.size)
            c = np.zeros(union.size)
            r[np.searchsorted(union, ref.values)] = ref.weights
            c[np.searchsorted(union, cur.values)] = cur.weights
            keys = union.tolist()
        score, stat = _discrete_test(method, keys, r, c, float(prof.n), float(cur.n), bins)
    lo, hi = min(prof.min, float(values[0])), max(prof.max, float(values[-1]))
    edges = np.linspace(lo, hi, PLOT_BINS + 1) if hi > lo else np.array([lo - 0.5, lo + 0.5])
    plot = {
        "type": "histogram",
        "edges": edges.tolist(),
        "reference": (st.hist_counts(ref, edges) / prof.n).tolist(),
        "current": (st.hist_counts(cur, edges) / cur.n).tolist(),
    }
    return ColumnDrift(
        col,
        "numerical",
        method,
        info.score_type,
        st.finite_or_none(score),
        st.finite_or_none(stat),
        thr,
        info.drifted(float(score), thr),
        prof.n,
        cur.n,
        n_missing,
        exact,
        prof.mean,
        float(np.mean(values)),
        plot,
    )


def _score_categorical(
    frame: Frame, col: str, prof: CategoricalProfile, method: str | None, threshold: float | None
) -> ColumnDrift | str:
    cur_vals, cur_counts, n_missing = frame.value_counts(col)
    if not cur_vals:
        return "no values in the current data"
    keys, r, c = _align(prof.values, prof.counts, [_json_scalar(v) for v in cur_vals], cur_counts)
    n_cur = float(cur_counts.sum())
    method = method or select_method("categorical", prof.n, len(keys))
    info = METHODS[method]
    thr = float(threshold if threshold is not None else info.default_threshold)
    score, stat = _discrete_test(method, keys, r, c, float(prof.n), n_cur, None)
    top = np.argsort(-(r / prof.n + c / n_cur), kind="stable")[:PLOT_CATEGORIES]
    plot = {
        "type": "bars",
        "categories": [str(keys[i]) for i in top],
        "reference": (r[top] / prof.n).tolist(),
        "current": (c[top] / n_cur).tolist(),
        "other_categories": max(0, len(keys) - PLOT_CATEGORIES),
    }
    return ColumnDrift(
        col,
        "categorical",
        method,
        info.score_type,
        st.finite_or_none(score),
        st.finite_or_none(stat),
        thr,
        info.drifted(float(score), thr),
        prof.n,
        int(n_cur),
        n_missing,
        True,
        plot=plot,
    )
