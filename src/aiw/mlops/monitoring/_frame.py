"""Column access over a pandas DataFrame or a pyarrow Table, without copying to the other.

Drift needs two things of a column: its finite numeric values, or its value counts. Both are
read straight from the container the caller has (Arrow from the warehouse, pandas from a
notebook), because converting a million strings from one to the other costs more than the
statistics themselves.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from aiw.errors import InvalidInputError

__all__ = ["INTEGER_CARDINALITY_LIMIT", "ColumnKind", "DtypeFamily", "Frame"]

ColumnKind = Literal["numerical", "categorical", "text", "datetime", "unknown"]
DtypeFamily = Literal["float", "int", "category", "string", "datetime", "other"]

INTEGER_CARDINALITY_LIMIT = 10
"""Integer columns with at most this many distinct values are categorical (Evidently's rule)."""


class Frame:
    """Read-only, column-wise view of a pandas DataFrame or a pyarrow Table / RecordBatch.

    Args:
        data: The table.
        what: How the caller names this table in error messages ("reference", "current").

    Raises:
        InvalidInputError: ``data`` is neither, or has duplicate column names.
    """

    def __init__(self, data: Any, what: str) -> None:
        self.what = what
        module = type(data).__module__
        if module.startswith("pandas") and hasattr(data, "columns") and hasattr(data, "iloc"):
            self.kind = "pandas"
            names = [str(c) for c in data.columns]
            self._data = data
            self.n_rows = len(data)
        elif module.startswith("pyarrow") and hasattr(data, "schema") and hasattr(data, "column"):
            import pyarrow as pa

            self.kind = "arrow"
            table = pa.Table.from_batches([data]) if isinstance(data, pa.RecordBatch) else data
            names = list(table.column_names)
            self._data = table
            self.n_rows = int(table.num_rows)
        else:
            raise InvalidInputError(
                f"The {what} data must be a pandas DataFrame or a pyarrow Table. Got {type(data).__name__} instead."
            )
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise InvalidInputError(
                f"The {what} data has duplicate column names: {', '.join(dupes)}.",
                hint="rename them so that each column has one name",
            )
        self.columns = names
        self._pos = {n: i for i, n in enumerate(names)}

    def _col(self, name: str) -> Any:
        if self.kind == "pandas":
            return self._data.iloc[:, self._pos[name]]
        return self._data.column(self._pos[name])

    def __contains__(self, name: object) -> bool:
        return name in self._pos

    # -- types ---------------------------------------------------------------------------
    def family(self, name: str) -> DtypeFamily:
        """The column's storage family, the first half of Evidently's ``infer_column_type``."""
        return self._family_pandas(name) if self.kind == "pandas" else self._family_arrow(name)

    def _family_pandas(self, name: str) -> DtypeFamily:
        import pandas as pd
        from pandas.api import types

        dtype = self._col(name).dtype
        if types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
            return "category"
        if types.is_float_dtype(dtype):
            return "float"
        if types.is_integer_dtype(dtype):
            return "int"
        if types.is_datetime64_any_dtype(dtype) or types.is_timedelta64_dtype(dtype):
            return "datetime"
        if types.is_string_dtype(dtype) or types.is_object_dtype(dtype):
            return "string"
        return "other"

    def _family_arrow(self, name: str) -> DtypeFamily:
        import pyarrow as pa

        t = self._col(name).type
        if pa.types.is_boolean(t) or pa.types.is_dictionary(t):
            return "category"
        if pa.types.is_floating(t) or pa.types.is_decimal(t):
            return "float"
        if pa.types.is_integer(t):
            return "int"
        if pa.types.is_temporal(t):
            return "datetime"
        if pa.types.is_string(t) or pa.types.is_large_string(t) or _is_string_view(t):
            return "string"
        return "other"

    def holds_strings(self, name: str) -> bool:
        """Whether the first and last non-missing values are strings (Evidently's object check)."""
        col = self._col(name)
        if self.kind == "arrow":
            return True  # an Arrow string column holds nothing else
        if len(col) == 0:
            return False
        first, last = col.iat[0], col.iat[-1]
        if _missing(first) or _missing(last):  # only then pay for a scan of the whole column
            present = np.flatnonzero(col.notna().to_numpy())
            if present.size == 0:
                return False
            first, last = col.iat[int(present[0])], col.iat[int(present[-1])]
        return isinstance(first, str) and isinstance(last, str)

    # -- values --------------------------------------------------------------------------
    def numeric(self, name: str) -> tuple[np.ndarray, int]:
        """The column's finite values as float64, and how many were missing or not finite."""
        col = self._col(name)
        if self.kind == "pandas":
            try:
                values = col.to_numpy(dtype=np.float64, na_value=np.nan)
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(
                    f"Column {name!r} of the {self.what} data is not numeric ({col.dtype}).",
                    hint="declare it categorical with column_types={...: 'categorical'}",
                ) from exc
        else:
            import pyarrow as pa
            import pyarrow.compute as pc

            try:
                values = pc.cast(col, pa.float64()).to_numpy()
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise InvalidInputError(
                    f"Column {name!r} of the {self.what} data is not numeric ({col.type}).",
                    hint="declare it categorical with column_types={...: 'categorical'}",
                ) from exc
        finite = np.isfinite(values)
        if finite.all():
            return values, 0
        return values[finite], int(values.size - np.count_nonzero(finite))

    def value_counts(self, name: str) -> tuple[list[Any], np.ndarray, int]:
        """Distinct non-missing values (Python scalars), their counts, and the missing count."""
        col = self._col(name)
        if self.kind == "pandas":
            vc = col.value_counts(dropna=True, sort=False)
            values = vc.index.tolist()
            counts = vc.to_numpy(dtype=np.int64)
        else:
            import pyarrow.compute as pc

            vc = pc.value_counts(col)
            values = vc.field(0)
            if hasattr(values, "dictionary_decode"):
                values = values.dictionary_decode()
            values = values.to_pylist()
            counts = vc.field(1).to_numpy(zero_copy_only=False).astype(np.int64)
        keep = [i for i, v in enumerate(values) if not _missing(v)] if values else []
        if len(keep) != len(values):
            values = [values[i] for i in keep]
            counts = counts[keep]
        nonzero = counts > 0  # a pandas Categorical reports unused categories with 0
        if not nonzero.all():
            values = [v for v, z in zip(values, nonzero, strict=True) if z]
            counts = counts[nonzero]
        return values, counts, int(self.n_rows - int(counts.sum()))


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return not np.isfinite(value)
    return False


def _is_string_view(t: Any) -> bool:
    import pyarrow as pa

    check = getattr(pa.types, "is_string_view", None)
    return bool(check(t)) if check else False
