"""LanceDB: the embedded default index (a folder in the workspace), vector and BM25 full-text search.

One Lance table per collection. Besides the vector and the chunk record, each row stores:

* ``terms``: the chunk's title, headings and text analysed by :func:`aiw.rag.bm25.analyze` and
  joined by spaces. Lance's native full-text index is built on it with a plain whitespace
  tokenizer, so Lance scores BM25 over exactly the terms every other adapter uses, and a weighted
  query (term -> boost) maps onto Lance's boosted ``MatchQuery`` clauses.
* ``facets``: ``field=value`` strings (:func:`aiw.rag.index.chunk_facets`); filters become
  ``array_has_any(facets, [...])`` SQL, evaluated before ranking (prefilter).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aiw.errors import BackendError, InvalidInputError
from aiw.rag.bm25 import analyze
from aiw.rag.documents import Chunk
from aiw.rag.index import (
    Filters,
    Hit,
    IndexedDocument,
    TextQuery,
    check_k,
    check_vectors,
    chunk_facets,
    chunk_from_record,
    facet,
    normalise_filters,
    query_weights,
    validate_collection,
)

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["LanceDBIndex", "filter_sql"]

_READ_COLUMNS = ["id", "record"]


def _fetch(table: Any, native: Callable[[Any], Any], sync: Callable[[], pa.Table]) -> pa.Table:
    """Run one read query, in a single trip to LanceDB's event loop when the installed LanceDB allows.

    LanceDB's synchronous builders are wrappers over its async API that fetch the table schema
    three times per search, each a round trip through LanceDB's background event loop: on a
    busy machine every trip waits for that thread to be scheduled, and the text and vector
    searches of one hybrid query queue behind each other there. ``native(query)`` configures
    the async query that the wrapping table holds; ``sync()`` is the public path, used when
    the private pieces this relies on (``LanceTable._table``, ``lancedb.background_loop.LOOP``)
    are not there.
    """
    try:
        from lancedb.background_loop import LOOP
    except ImportError:  # a LanceDB without it: the public path
        return sync()
    inner = getattr(table, "_table", None)
    if inner is None or not callable(getattr(inner, "query", None)):
        return sync()

    async def run() -> pa.Table:
        return await native(inner.query()).to_arrow()

    return LOOP.run(run())


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def filter_sql(filters: Mapping[str, list[str]]) -> str | None:
    """The SQL predicate of normalised ``filters`` over the ``facets`` column (None for no filter)."""
    if not filters:
        return None
    clauses = []
    for key, values in filters.items():
        if not values:
            return "false"
        clauses.append(f"array_has_any(facets, [{', '.join(_quote(facet(key, v)) for v in values)}])")
    return " AND ".join(clauses)


class LanceDBIndex:
    """The :class:`~aiw.rag.index.VectorIndex` over an embedded LanceDB folder.

    Args:
        path: The database folder (``Workspace.path("lancedb")``); created when missing. A
            ``db://`` or ``s3://`` URI works too.
    """

    supports_text_search = True

    def __init__(self, path: str | Path) -> None:
        if not str(path).strip():
            raise InvalidInputError("The 'path' parameter of LanceDBIndex must be a folder or URI.")
        self.path = str(path)
        self._db: Any = None
        self._tables: dict[str, Any] = {}
        self._fts_ready: set[str] = set()
        self._dims: dict[str, int] = {}
        self._lock = threading.RLock()

    # -- connection --------------------------------------------------------------------------
    @property
    def db(self) -> Any:
        """The LanceDB connection, opened on first use."""
        if self._db is None:
            import lancedb

            if "://" not in self.path:
                Path(self.path).mkdir(parents=True, exist_ok=True)
            try:
                self._db = lancedb.connect(self.path)
            except Exception as exc:
                raise BackendError(f"Cannot open the LanceDB index at {self.path}: {exc}") from exc
        return self._db

    def _table(self, collection: str) -> Any | None:
        validate_collection(collection)
        with self._lock:
            table = self._tables.get(collection)
            if table is not None:
                return table
            if collection not in self.collections():
                return None
            try:
                table = self.db.open_table(collection)
            except Exception as exc:
                raise BackendError(f"Cannot open the LanceDB table {collection!r}: {exc}") from exc
            self._tables[collection] = table
            return table

    def _dimension(self, collection: str, table: Any) -> int:
        # Reading the schema is a round trip through LanceDB's event loop: remember it.
        dim = self._dims.get(collection)
        if dim is None:
            dim = self._dims[collection] = int(table.schema.field("vector").type.list_size)
        return dim

    @staticmethod
    def _schema(dimension: int) -> pa.Schema:
        import pyarrow as pa

        return pa.schema(
            [
                pa.field("id", pa.string(), nullable=False),
                pa.field("doc_id", pa.string()),
                pa.field("source", pa.string()),
                pa.field("content_hash", pa.string()),
                pa.field("n_chunks", pa.int32()),
                pa.field("terms", pa.string()),
                pa.field("facets", pa.list_(pa.string())),
                pa.field("record", pa.string()),
                pa.field("vector", pa.list_(pa.float32(), dimension)),
            ]
        )

    def _ensure_fts(self, collection: str, table: Any) -> None:
        if collection in self._fts_ready:
            return
        from lancedb.index import FTS

        try:
            if not any(
                getattr(ix, "index_type", "") == "FTS" or "terms" in getattr(ix, "columns", [])
                for ix in table.list_indices()
            ):
                table.create_index(
                    "terms",
                    config=FTS(
                        base_tokenizer="whitespace",
                        lower_case=False,
                        stem=False,
                        remove_stop_words=False,
                        ascii_folding=False,
                        with_position=False,
                        max_token_length=None,
                    ),
                    replace=True,
                )
        except Exception as exc:
            raise BackendError(f"Cannot build the full-text index of {collection!r}: {exc}") from exc
        self._fts_ready.add(collection)

    # -- writes ------------------------------------------------------------------------------
    def upsert(self, collection: str, chunks: Sequence[Chunk], vectors: np.ndarray) -> int:
        """Insert or replace chunks by id (a Lance merge-insert on ``id``)."""
        import pyarrow as pa

        with self._lock:
            table = self._table(collection)
            arr = check_vectors(chunks, vectors, self._dimension(collection, table) if table is not None else None)
            if not chunks:
                return 0
            schema = self._schema(int(arr.shape[1]))
            data = pa.Table.from_pydict(
                {
                    "id": [c.id for c in chunks],
                    "doc_id": [c.doc_id for c in chunks],
                    "source": [c.source for c in chunks],
                    "content_hash": [c.content_hash for c in chunks],
                    "n_chunks": [c.n_chunks for c in chunks],
                    "terms": [" ".join(analyze(c.search_text)) for c in chunks],
                    "facets": [chunk_facets(c) for c in chunks],
                    "record": [json.dumps(c.to_record(), ensure_ascii=False) for c in chunks],
                    "vector": pa.FixedSizeListArray.from_arrays(
                        pa.array(arr.reshape(-1), pa.float32()), int(arr.shape[1])
                    ),
                },
                schema=schema,
            )
            try:
                if table is None:
                    table = self.db.create_table(collection, data=data, schema=schema)
                    self._tables[collection] = table
                else:
                    (table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(data))
            except Exception as exc:
                raise BackendError(f"Writing {len(chunks)} chunks to LanceDB {collection!r} failed: {exc}") from exc
            if collection in self._fts_ready:
                # Rows written after the full-text index was built are searched apart from it, with
                # their own term statistics, which skews BM25 (nDCG@10 on Cranfield: 0.354 with
                # three quarters of the rows outside the index, 0.361 with all inside). Fold them in.
                self.optimize(collection)
            self._ensure_fts(collection, table)
        return len(chunks)

    def _delete(self, collection: str, column: str, values: Sequence[str]) -> int:
        values = sorted(set(values))
        if not values:
            return 0
        with self._lock:
            table = self._table(collection)
            if table is None:
                return 0
            removed = 0
            for start in range(0, len(values), 500):
                predicate = f"{column} IN ({', '.join(_quote(v) for v in values[start : start + 500])})"
                try:
                    n = table.count_rows(predicate)
                    if n:
                        table.delete(predicate)
                except Exception as exc:
                    raise BackendError(f"Deleting from LanceDB {collection!r} failed: {exc}") from exc
                removed += n
            return removed

    def delete_documents(self, collection: str, doc_ids: Sequence[str]) -> int:
        """Delete every chunk of ``doc_ids``."""
        return self._delete(collection, "doc_id", doc_ids)

    def delete_chunks(self, collection: str, chunk_ids: Sequence[str]) -> int:
        """Delete chunks by id."""
        return self._delete(collection, "id", chunk_ids)

    # -- reads -------------------------------------------------------------------------------
    def search_vector(self, collection: str, vector: np.ndarray, k: int, filters: Filters | None = None) -> list[Hit]:
        """Exact cosine search (flat scan; Lance answers 10k chunks in a few ms)."""
        check_k(k)
        where = filter_sql(normalise_filters(filters))
        table = self._table(collection)
        if table is None:
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        dimension = self._dimension(collection, table)
        if query.shape[0] != dimension:
            raise InvalidInputError(
                f"The query vector has dimension {query.shape[0]}; this collection holds {dimension}."
            )

        def native(q: Any) -> Any:
            q = q.nearest_to(query).column("vector").distance_type("cosine")
            return (q.where(where) if where else q).select([*_READ_COLUMNS, "vector", "_distance"]).limit(k)

        def sync() -> Any:
            builder = table.search(query, vector_column_name="vector").distance_type("cosine")
            if where:
                builder = builder.where(where, prefilter=True)
            return builder.select([*_READ_COLUMNS, "vector", "_distance"]).limit(k).to_arrow()

        try:
            found = _fetch(table, native, sync)
        except Exception as exc:
            raise BackendError(f"Vector search in LanceDB {collection!r} failed: {exc}") from exc
        if found.num_rows == 0:
            return []
        # Columns, not rows: turning vectors into Python lists would cost more than the search.
        vectors = found.column("vector").combine_chunks().values.to_numpy(zero_copy_only=False)
        vectors = vectors.reshape(found.num_rows, dimension).astype(np.float32, copy=False)
        records = found.column("record").to_pylist()
        distances = found.column("_distance").to_pylist()
        return [
            Hit(chunk_from_record(r), 1.0 - float(d), vectors[i])
            for i, (r, d) in enumerate(zip(records, distances, strict=True))
        ]

    def search_text(self, collection: str, query: TextQuery, k: int, filters: Filters | None = None) -> list[Hit]:
        """BM25 by Lance's native full-text index over the analysed ``terms`` column."""
        from lancedb.query import BooleanQuery, MatchQuery, Occur

        check_k(k)
        where = filter_sql(normalise_filters(filters))
        weights = query_weights(query)
        table = self._table(collection)
        if table is None or not weights:
            return []
        self._ensure_fts(collection, table)
        fts = BooleanQuery(
            [
                (Occur.SHOULD, MatchQuery(term, "terms", boost=float(w)))  # type: ignore[call-arg]
                for term, w in weights.items()
            ]
        )

        def native(q: Any) -> Any:
            q = q.nearest_to_text(fts)
            return (q.where(where) if where else q).select([*_READ_COLUMNS, "_score"]).limit(k)

        def sync() -> Any:
            builder = table.search(fts, query_type="fts")
            if where:
                builder = builder.where(where, prefilter=True)
            return builder.select([*_READ_COLUMNS, "_score"]).limit(k).to_arrow()

        try:
            found = _fetch(table, native, sync)
        except Exception as exc:
            raise BackendError(f"Full-text search in LanceDB {collection!r} failed: {exc}") from exc
        scores = found.column("_score").to_pylist()
        return [
            Hit(chunk_from_record(r), float(sc))
            for r, sc in zip(found.column("record").to_pylist(), scores, strict=True)
            if float(sc) > 0
        ]

    def get(self, collection: str, chunk_ids: Sequence[str]) -> list[Chunk]:
        """Chunks by id, in the order asked."""
        ids = list(dict.fromkeys(chunk_ids))
        table = self._table(collection)
        if table is None or not ids:
            return []
        found: dict[str, Chunk] = {}
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            predicate = f"id IN ({', '.join(_quote(i) for i in part)})"
            try:
                rows = table.search().where(predicate).select(_READ_COLUMNS).limit(len(part)).to_arrow().to_pylist()
            except Exception as exc:
                raise BackendError(f"Reading from LanceDB {collection!r} failed: {exc}") from exc
            found.update({r["id"]: chunk_from_record(r["record"]) for r in rows})
        return [found[i] for i in chunk_ids if i in found]

    def count(self, collection: str, filters: Filters | None = None) -> int:
        """Chunks matching ``filters``."""
        where = filter_sql(normalise_filters(filters))
        table = self._table(collection)
        if table is None:
            return 0
        try:
            return int(table.count_rows(where))
        except Exception as exc:
            raise BackendError(f"Counting LanceDB {collection!r} failed: {exc}") from exc

    def documents(self, collection: str) -> dict[str, IndexedDocument]:
        """Stored documents and their versions (reads four small columns)."""
        table = self._table(collection)
        if table is None:
            return {}
        try:
            n = table.count_rows()
            rows = (
                (
                    table.search()
                    .select(["id", "doc_id", "source", "content_hash", "n_chunks"])
                    .limit(max(n, 1))
                    .to_arrow()
                    .to_pylist()
                )
                if n
                else []
            )
        except Exception as exc:
            raise BackendError(f"Listing LanceDB {collection!r} failed: {exc}") from exc
        out: dict[str, IndexedDocument] = {}
        for r in rows:
            doc = out.setdefault(r["doc_id"], IndexedDocument(r["doc_id"], r["source"]))
            doc.add(r["id"], r["content_hash"], int(r["n_chunks"]))
        return out

    def collections(self) -> list[str]:
        """Existing tables, sorted."""
        try:
            names: list[str] = []
            token: str | None = None
            while True:
                page = self.db.list_tables(page_token=token, limit=1000)
                names.extend(page.tables)
                token = page.page_token
                if not token:
                    return sorted(names)
        except Exception as exc:
            raise BackendError(f"Listing LanceDB tables at {self.path} failed: {exc}") from exc

    def drop(self, collection: str) -> None:
        """Drop a table (no error when missing)."""
        validate_collection(collection)
        with self._lock:
            self._tables.pop(collection, None)
            self._fts_ready.discard(collection)
            self._dims.pop(collection, None)
            try:
                self.db.drop_table(collection, ignore_missing=True)
            except Exception as exc:
                raise BackendError(f"Dropping LanceDB {collection!r} failed: {exc}") from exc

    def optimize(self, collection: str) -> None:
        """Fold rows written since the last index build into the full-text index (faster search)."""
        table = self._table(collection)
        if table is not None:
            try:
                table.optimize()
            except Exception as exc:
                raise BackendError(f"Optimising LanceDB {collection!r} failed: {exc}") from exc

    def close(self) -> None:
        """Forget open tables (LanceDB holds no server connection)."""
        with self._lock:
            self._tables.clear()
            self._db = None
