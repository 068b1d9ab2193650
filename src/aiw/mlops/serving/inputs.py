"""Scoring payloads in MLflow's formats, checked against a model's signature, as typed columns.

Accepted bodies (the formats of MLflow's scoring server)::

    {"dataframe_split": {"columns": ["a", "b"], "data": [[1, "x"], [2, "y"]]}}
    {"dataframe_records": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]}
    {"instances": [{"a": 1, "b": "x"}]}        or rows in signature order: [[1, "x"]]
    {"inputs": {"a": [1, 2], "b": ["x", "y"]}}  or records, or rows in signature order

Or entity keys, whose features the server reads from the online feature store (the body of
Feast's own feature server; see :mod:`aiw.features.online`)::

    {"entities": {"claim_id": [17, 42]}}
    {"entities": {"claim_id": [17]}, "feature_service": "claims_fraud"}
    {"entities": {"claim_id": [17]}, "features": ["claim_features:amount", ...]}

Every problem names the column and why: missing, unexpected (extra), or of the wrong type (with
the row and the offending value). The result is one NumPy array per column, built without pandas,
so a one-row request costs microseconds here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aiw.errors import InvalidInputError
from aiw.mlops.registry.versions import ColumnSpec

__all__ = [
    "ENTITIES",
    "FORMATS",
    "ColumnBatch",
    "EntityRequest",
    "InputSchema",
    "parse_payload",
    "parse_request",
    "rows_to_batch",
]

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
"""The MLflow input formats understood here."""

ENTITIES = "entities"
"""The key of a request by entity keys (features read from the online store)."""
_ENTITY_OPTIONS = ("features", "feature_service")

_NUMERIC = ("double", "float")
_INTEGER = ("long", "integer")
_MAX_PROBLEMS = 5


@dataclass(frozen=True)
class InputSchema:
    """A model's input columns, in order."""

    columns: tuple[ColumnSpec, ...]

    @property
    def names(self) -> list[str]:
        """Column names in signature order."""
        return [c.name for c in self.columns]

    def describe(self) -> str:
        """``amount (double), region (string), ...``."""
        return ", ".join(f"{c.name} ({c.type})" for c in self.columns)


@dataclass(frozen=True)
class ColumnBatch:
    """Validated input: one typed array per signature column, all of ``rows`` length."""

    columns: dict[str, np.ndarray]
    rows: int

    def records(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The first ``limit`` rows as JSON-ready dicts (for the traffic log)."""
        n = self.rows if limit is None else min(limit, self.rows)
        cols = {k: v[:n].tolist() for k, v in self.columns.items()}
        return [{k: cols[k][i] for k in cols} for i in range(n)]


@dataclass(frozen=True)
class EntityRequest:
    """A scoring request by entity keys: the server reads the model's inputs from the online store.

    Attributes:
        entities: Join key -> one key value per row (all lists of ``rows`` length).
        rows: Rows to score.
        features: Explicit ``view:feature`` references, or None.
        feature_service: A feature service to take the features from, or None.
    """

    entities: dict[str, list[Any]]
    rows: int
    features: tuple[str, ...] | None = None
    feature_service: str | None = None


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _convert(spec: ColumnSpec, values: Sequence[Any], problems: list[str]) -> np.ndarray:
    """``values`` as the column's NumPy type; problems are appended, never raised, here."""
    kind = spec.type

    def bad(i: int, v: Any, expected: str) -> None:
        if len(problems) < _MAX_PROBLEMS:
            got = "null" if v is None else f"{_type_name(v)} {_show(v)}"
            problems.append(f"column {spec.name!r} has the wrong type in row {i}: expected {expected}, got {got}")

    if kind in _NUMERIC:
        has_null = False
        for i, v in enumerate(values):
            t = type(v)
            if t is not float and t is not int:
                if v is None:  # a missing number is NaN, which gradient boosting treats as missing
                    has_null = True
                else:
                    bad(i, v, "a number")
        if problems:
            return np.zeros(len(values), dtype=np.float64)
        if has_null:
            return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        return np.array(values, dtype=np.float64)
    if kind in _INTEGER:
        for i, v in enumerate(values):
            if type(v) is not int:
                if type(v) is float and v.is_integer():
                    continue
                bad(i, v, "an integer")
        return np.array(values, dtype=np.int64) if not problems else np.zeros(len(values), dtype=np.int64)
    if kind == "string":
        for i, v in enumerate(values):
            if type(v) is not str:
                bad(i, v, "a string")
        arr = np.empty(len(values), dtype=object)
        arr[:] = values
        return arr
    if kind == "boolean":
        for i, v in enumerate(values):
            if type(v) is not bool:
                bad(i, v, "true or false")
        return np.array(values, dtype=bool) if not problems else np.zeros(len(values), dtype=bool)
    if kind == "datetime":
        out = np.empty(len(values), dtype="datetime64[ns]")
        for i, v in enumerate(values):
            try:
                if type(v) is not str:
                    raise ValueError
                out[i] = np.datetime64(v, "ns")
            except ValueError:
                bad(i, v, "an ISO-8601 date or time string")
        return out
    problems.append(f"column {spec.name!r} has the type {kind!r}, which this server cannot accept")
    return np.empty(0)


def _columns_from_records(records: list[Any], schema: InputSchema, problems: list[str]) -> dict[str, list[Any]]:
    names = schema.names
    known = set(names)
    cols: dict[str, list[Any]] = {n: [] for n in names}
    extra: set[str] = set()
    missing: dict[str, int] = {}
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise InvalidInputError(f"Row {i} must be an object of column: value. Got {_type_name(rec)}.")
        if len(rec) != len(names) or not known.issuperset(rec):
            extra.update(k for k in rec if k not in known)
        for n in names:
            v = rec.get(n, _MISSING)
            if v is _MISSING:
                missing.setdefault(n, i)
                v = None
            cols[n].append(v)
    _name_problems(schema, missing, extra, problems)
    return cols


_MISSING = object()


def _name_problems(schema: InputSchema, missing: dict[str, int], extra: set[str], problems: list[str]) -> None:
    for spec in schema.columns:
        if spec.name in missing and spec.required:
            problems.append(
                f"column {spec.name!r} ({spec.type}) is missing"
                + (f" from row {missing[spec.name]}" if missing[spec.name] else "")
            )
    for name in sorted(extra)[:_MAX_PROBLEMS]:
        problems.append(f"column {name!r} is not an input of this model")


def _columns_from_rows(
    rows: list[Any],
    names: list[str],
    schema: InputSchema,
    problems: list[str],
) -> dict[str, list[Any]]:
    width = len(names)
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != width:
            raise InvalidInputError(
                f"Row {i} must be a list of {width} values (columns {', '.join(names)}). "
                f"Got {_type_name(row)}{f' of {len(row)}' if isinstance(row, list) else ''}."
            )
    given = {n: [r[j] for r in rows] for j, n in enumerate(names)}
    known = set(schema.names)
    missing = {n: 0 for n in schema.names if n not in given}
    extra = {n for n in names if n not in known}
    _name_problems(schema, missing, extra, problems)
    return {n: given.get(n, [None] * len(rows)) for n in schema.names}


def rows_to_batch(
    cols: dict[str, list[Any]],
    schema: InputSchema,
    *,
    problems: list[str] | None = None,
) -> ColumnBatch:
    """Typed columns from ``{column: values}`` (all the same length), checked against ``schema``.

    Raises:
        InvalidInputError: naming every column that is missing, extra or of the wrong type.
    """
    problems = [] if problems is None else problems
    lengths = {len(v) for v in cols.values()}
    if len(lengths) > 1:
        raise InvalidInputError("Every column must have the same number of values.")
    rows = lengths.pop() if lengths else 0
    extra = {n for n in cols if n not in set(schema.names)}
    missing = {n: 0 for n in schema.names if n not in cols}
    if extra or missing:
        _name_problems(schema, missing, extra, problems)
    out = {}
    for spec in schema.columns:
        values = cols.get(spec.name)
        if values is None:
            if spec.required:
                continue
            values = [None] * rows
        out[spec.name] = _convert(spec, values, problems)
    if problems:
        raise InvalidInputError(
            "Invalid input: " + "; ".join(problems[:_MAX_PROBLEMS]), hint=f"this model takes {schema.describe()}"
        )
    return ColumnBatch(out, rows)


def parse_payload(body: bytes | str | dict[str, Any], schema: InputSchema, *, max_rows: int) -> ColumnBatch:
    """Parse and check one scoring request.

    Args:
        body: The JSON body (bytes, text or an already parsed object).
        schema: The model's input columns.
        max_rows: The most rows one request may carry.

    Raises:
        InvalidInputError: not JSON, an unknown format, too many rows, or columns that are
            missing, unexpected or of the wrong type (each named).
    """
    doc = _json(body)
    return _parse_doc(doc, schema, max_rows, FORMATS)


def _parse_doc(doc: Any, schema: InputSchema, max_rows: int, accepted: Sequence[str]) -> ColumnBatch:
    if not isinstance(doc, dict):
        raise InvalidInputError(f"The request body must be a JSON object with one of the keys {', '.join(accepted)}.")
    keys = [k for k in doc if k in FORMATS]
    unknown = [k for k in doc if k not in FORMATS and k != "params"]
    if len(keys) != 1 or unknown:
        raise InvalidInputError(
            f"The request body must have exactly one of the keys {', '.join(accepted)}"
            + (f"; unknown keys: {', '.join(map(str, unknown))}" if unknown else f"; got {', '.join(keys) or 'none'}"),
            hint='e.g. {"dataframe_records": [{"column": value, ...}]}'
            + (' or {"entities": {"claim_id": [17]}}' if ENTITIES in accepted else ""),
        )
    fmt = keys[0]
    data = doc[fmt]
    problems: list[str] = []
    names = schema.names
    if fmt == "dataframe_split":
        if not isinstance(data, dict) or "data" not in data:
            raise InvalidInputError('dataframe_split must be an object {"columns": [...], "data": [[...], ...]}.')
        rows = data["data"]
        cols_given = data.get("columns", names)
        if not isinstance(rows, list) or not isinstance(cols_given, list):
            raise InvalidInputError("dataframe_split's 'columns' and 'data' must be lists.")
        _check_rows(len(rows), max_rows)
        cols = _columns_from_rows(rows, [str(c) for c in cols_given], schema, problems)
    elif fmt == "inputs" and isinstance(data, dict):
        cols = {str(k): v for k, v in data.items()}
        for k, v in cols.items():
            if not isinstance(v, list):
                raise InvalidInputError(f"inputs[{k!r}] must be a list of values (one per row).")
        _check_rows(max((len(v) for v in cols.values()), default=0), max_rows)
        return rows_to_batch(cols, schema, problems=problems)
    else:
        if not isinstance(data, list):
            raise InvalidInputError(f"{fmt} must be a list of rows.")
        _check_rows(len(data), max_rows)
        if data and all(isinstance(r, list) for r in data) and fmt != "dataframe_records":
            cols = _columns_from_rows(data, names, schema, problems)
        else:
            cols = _columns_from_records(data, schema, problems)
    if problems:
        raise InvalidInputError(
            "Invalid input: " + "; ".join(problems[:_MAX_PROBLEMS]), hint=f"this model takes {schema.describe()}"
        )
    return rows_to_batch(cols, schema, problems=problems)


def parse_request(
    body: bytes | str | dict[str, Any],
    schema: InputSchema,
    *,
    max_rows: int,
) -> ColumnBatch | EntityRequest:
    """Parse one scoring request: feature values (:func:`parse_payload`) or entity keys.

    Raises:
        InvalidInputError: as :func:`parse_payload`; for entity keys, a malformed ``entities``
            object (not lists, lists of different lengths, no keys), or both ``features`` and
            ``feature_service``.
    """
    doc = _json(body)
    if isinstance(doc, dict) and ENTITIES in doc:
        return _entity_request(doc, max_rows)
    return _parse_doc(doc, schema, max_rows, (*FORMATS, ENTITIES))


def _json(body: bytes | str | dict[str, Any]) -> Any:
    if isinstance(body, bytes | str):
        try:
            return json.loads(body)
        except ValueError as exc:
            raise InvalidInputError(f"The request body is not valid JSON: {exc}") from None
    return body


def _entity_request(doc: dict[str, Any], max_rows: int) -> EntityRequest:
    example = '{"entities": {"claim_id": [17, 42]}}'
    unknown = [k for k in doc if k != ENTITIES and k not in _ENTITY_OPTIONS]
    if unknown:
        raise InvalidInputError(
            f"A request by entity keys takes '{ENTITIES}' and optionally one of {', '.join(_ENTITY_OPTIONS)}; "
            f"unknown keys: {', '.join(map(str, unknown))}",
            hint=f"e.g. {example}",
        )
    entities = doc[ENTITIES]
    if not isinstance(entities, dict) or not entities:
        raise InvalidInputError(f"'{ENTITIES}' must be an object of join key: [key values].", hint=f"e.g. {example}")
    for k, v in entities.items():
        if not isinstance(v, list):
            raise InvalidInputError(
                f"entities[{k!r}] must be a list of key values (one per row). Got {_type_name(v)}.",
                hint=f"e.g. {example}",
            )
    lengths = {len(v) for v in entities.values()}
    if len(lengths) > 1:
        raise InvalidInputError(
            "Every list in 'entities' must have one value per row; got lengths "
            + ", ".join(f"{k}: {len(v)}" for k, v in entities.items())
        )
    rows = lengths.pop()
    _check_rows(rows, max_rows)
    features, service = doc.get("features"), doc.get("feature_service")
    if features is not None and service is not None:
        raise InvalidInputError("Give either 'features' or 'feature_service', not both.")
    if features is not None and (
        not isinstance(features, list) or not features or not all(isinstance(f, str) for f in features)
    ):
        raise InvalidInputError(
            "'features' must be a non-empty list of 'view:feature' references.",
            hint='e.g. ["claim_features:amount", "claim_features:region"]',
        )
    if service is not None and (not isinstance(service, str) or not service):
        raise InvalidInputError("'feature_service' must be the name of a feature service.", hint='e.g. "claims_fraud"')
    return EntityRequest(
        {str(k): v for k, v in entities.items()}, rows, tuple(features) if features is not None else None, service
    )


def _check_rows(n: int, max_rows: int) -> None:
    if n == 0:
        raise InvalidInputError("The request holds no rows to score.")
    if n > max_rows:
        raise InvalidInputError(
            f"The request holds {n} rows; at most {max_rows} are scored per request",
            hint="split it, or score a table with 'aiw models score'",
        )
