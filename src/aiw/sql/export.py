"""Query results as CSV, JSON or Parquet, written atomically (temporary file, then rename)."""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from aiw.errors import InvalidInputError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["FORMATS", "format_for", "to_bytes", "write_atomic"]

Format = Literal["csv", "json", "parquet"]
FORMATS: tuple[str, ...] = ("csv", "json", "parquet")
"""File formats a result can be written in."""


def format_for(path: Path, explicit: str | None) -> Format:
    """The format to write ``path`` in: ``explicit``, else from its suffix.

    Raises:
        InvalidInputError: neither names one of :data:`FORMATS`.
    """
    fmt = (explicit or path.suffix.lstrip(".")).lower()
    if fmt == "jsonl":
        fmt = "json"
    if fmt not in FORMATS:
        raise InvalidInputError(
            f"Cannot tell the output format of {path.name!r}", hint=f"pass --format with one of {', '.join(FORMATS)}"
        )
    return fmt  # type: ignore[return-value]


def to_bytes(table: pa.Table, fmt: Format) -> bytes:
    """``table`` encoded as ``fmt``: CSV with a header, JSON as an array of objects, or Parquet."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from aiw.sql.runner import jsonable

    if fmt == "csv":
        buf = io.BytesIO()
        pacsv.write_csv(table, buf)
        return buf.getvalue()
    if fmt == "json":
        names = table.column_names
        rows = (
            [
                dict(zip(names, (jsonable(v) for v in row), strict=True))
                for row in zip(*(c.to_pylist() for c in table.columns), strict=True)
            ]
            if names
            else []
        )
        return (json.dumps(rows, ensure_ascii=False, indent=None) + "\n").encode()
    if fmt == "parquet":
        buf = io.BytesIO()
        pq.write_table(table, buf)
        return buf.getvalue()
    raise InvalidInputError(f"Unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def write_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    A reader never sees a half-written file, and a failure leaves any earlier file untouched.
    """
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
