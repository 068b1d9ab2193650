"""Qdrant: the index in a Qdrant server (``url=``) or in qdrant-client's local mode (``path=``).

Point ids are UUIDv5 of our chunk ids (Qdrant accepts only UUIDs and integers); the chunk record
rides in the payload with ``facets`` (``field=value`` strings), which payload filters match with
``MatchAny``, giving the filter semantics of :mod:`aiw.rag.index`. Full-text search is our BM25
over the collection's chunks, rebuilt only after a write.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aiw.errors import BackendError, ConfigError, InvalidInputError, TransientBackendError
from aiw.rag.adapters.memory_index import TextSearchCache
from aiw.rag.documents import Chunk
from aiw.rag.index import (
    Filters,
    Hit,
    IndexedDocument,
    TextQuery,
    check_k,
    check_vectors,
    chunk_from_stored,
    facet,
    normalise_filters,
    stored_fields,
    validate_collection,
)

__all__ = ["QdrantIndex", "point_id"]

_NAMESPACE = uuid.UUID("5b0c7f7e-2f1c-4a59-9a3e-6f1d3c1e9a01")
_PAGE = 1000


def point_id(chunk_id: str) -> str:
    """The Qdrant point id (UUIDv5) of a chunk id."""
    return str(uuid.uuid5(_NAMESPACE, chunk_id))


class QdrantIndex:
    """The :class:`~aiw.rag.index.VectorIndex` on Qdrant.

    Args:
        url: A Qdrant server (``http://127.0.0.1:6333``); or
        path: A folder for qdrant-client's embedded local mode (one process at a time).
    """

    supports_text_search = False

    def __init__(self, url: str = "", *, path: str | Path | None = None) -> None:
        if bool(url) == bool(path):
            raise ConfigError("QdrantIndex needs exactly one of url= (a server) or path= (local mode)")
        self.url = url
        self.path = Path(path) if path else None
        self._client: Any = None
        self._lock = threading.RLock()
        self._writes: dict[str, int] = {}
        self._text = TextSearchCache()

    @property
    def client(self) -> Any:
        """The qdrant client, opened on first use."""
        if self._client is None:
            from qdrant_client import QdrantClient

            try:
                if self.path is not None:
                    self.path.mkdir(parents=True, exist_ok=True)
                    self._client = QdrantClient(path=str(self.path))
                else:
                    self._client = QdrantClient(url=self.url, timeout=30)
            except Exception as exc:
                raise _backend(f"opening Qdrant at {self.url or self.path}", exc) from exc
        return self._client

    def _exists(self, collection: str) -> bool:
        validate_collection(collection)
        try:
            return bool(self.client.collection_exists(collection))
        except Exception as exc:
            raise _backend(f"Qdrant collection {collection!r}", exc) from exc

    def _dimension(self, collection: str) -> int:
        info = self.client.get_collection(collection)
        return int(info.config.params.vectors.size)

    def _filter(self, flt: Mapping[str, list[str]]) -> Any:
        from qdrant_client import models

        if not flt:
            return None
        return models.Filter(
            must=[
                models.FieldCondition(key="facets", match=models.MatchAny(any=[facet(k, v) for v in values]))
                for k, values in flt.items()
            ]
        )

    # -- writes ------------------------------------------------------------------------------
    def upsert(self, collection: str, chunks: Sequence[Chunk], vectors: np.ndarray) -> int:
        """Insert or replace chunks by id."""
        from qdrant_client import models

        with self._lock:
            exists = self._exists(collection)
            arr = check_vectors(chunks, vectors, self._dimension(collection) if exists else None)
            if not chunks:
                return 0
            try:
                if not exists:
                    self.client.create_collection(
                        collection,
                        vectors_config=models.VectorParams(size=int(arr.shape[1]), distance=models.Distance.COSINE),
                    )
                for start in range(0, len(chunks), 256):
                    part = chunks[start : start + 256]
                    self.client.upsert(
                        collection,
                        wait=True,
                        points=[
                            models.PointStruct(id=point_id(c.id), vector=v.tolist(), payload=stored_fields(c))
                            for c, v in zip(part, arr[start : start + 256], strict=True)
                        ],
                    )
            except Exception as exc:
                raise _backend(f"writing {len(chunks)} chunks to Qdrant {collection!r}", exc) from exc
            self._touched(collection)
        return len(chunks)

    def _touched(self, collection: str) -> None:
        self._writes[collection] = self._writes.get(collection, 0) + 1

    def _delete_where(self, collection: str, flt: Any) -> int:
        from qdrant_client import models

        with self._lock:
            if not self._exists(collection):
                return 0
            try:
                n = int(self.client.count(collection, count_filter=flt, exact=True).count)
                if n:
                    self.client.delete(collection, points_selector=models.FilterSelector(filter=flt), wait=True)
            except Exception as exc:
                raise _backend(f"deleting from Qdrant {collection!r}", exc) from exc
            self._touched(collection)
            return n

    def delete_documents(self, collection: str, doc_ids: Sequence[str]) -> int:
        """Delete every chunk of ``doc_ids``."""
        from qdrant_client import models

        ids = sorted(set(doc_ids))
        if not ids:
            return 0
        return self._delete_where(
            collection, models.Filter(must=[models.FieldCondition(key="doc_id", match=models.MatchAny(any=ids))])
        )

    def delete_chunks(self, collection: str, chunk_ids: Sequence[str]) -> int:
        """Delete chunks by id."""
        from qdrant_client import models

        ids = sorted(set(chunk_ids))
        if not ids:
            return 0
        return self._delete_where(
            collection, models.Filter(must=[models.HasIdCondition(has_id=[point_id(i) for i in ids])])
        )

    # -- reads -------------------------------------------------------------------------------
    def search_vector(self, collection: str, vector: np.ndarray, k: int, filters: Filters | None = None) -> list[Hit]:
        """Cosine search."""
        check_k(k)
        flt = normalise_filters(filters)
        if not self._exists(collection) or any(not v for v in flt.values()):
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        dimension = self._dimension(collection)
        if query.shape[0] != dimension:
            raise InvalidInputError(
                f"The query vector has dimension {query.shape[0]}; this collection holds {dimension}."
            )
        try:
            points = self.client.query_points(
                collection,
                query=query.tolist(),
                limit=k,
                query_filter=self._filter(flt),
                with_payload=True,
                with_vectors=True,
            ).points
        except Exception as exc:
            raise _backend(f"vector search in Qdrant {collection!r}", exc) from exc
        return [Hit(_chunk(p.payload), float(p.score), np.asarray(p.vector, dtype=np.float32)) for p in points]

    def search_text(self, collection: str, query: TextQuery, k: int, filters: Filters | None = None) -> list[Hit]:
        """BM25 (ours) over the collection's chunks."""
        check_k(k)
        flt = normalise_filters(filters)
        if not self._exists(collection):
            return []
        version = (self._writes.get(collection, 0), self.count(collection))
        return self._text.search(
            collection, version, lambda: [_chunk(p) for p in self._scroll(collection)], query, k, flt
        )

    def _scroll(self, collection: str, fields: Sequence[str] | bool = True) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        payload = list(fields) if not isinstance(fields, bool) else fields
        offset = None
        while True:
            try:
                points, offset = self.client.scroll(
                    collection, limit=_PAGE, offset=offset, with_payload=payload, with_vectors=False
                )
            except Exception as exc:
                raise _backend(f"reading Qdrant {collection!r}", exc) from exc
            out.extend(p.payload or {} for p in points)
            if offset is None:
                return out

    def get(self, collection: str, chunk_ids: Sequence[str]) -> list[Chunk]:
        """Chunks by id, in the order asked."""
        ids = list(dict.fromkeys(chunk_ids))
        if not ids or not self._exists(collection):
            return []
        try:
            points = self.client.retrieve(collection, ids=[point_id(i) for i in ids], with_payload=True)
        except Exception as exc:
            raise _backend(f"reading Qdrant {collection!r}", exc) from exc
        found = {c.id: c for c in (_chunk(p.payload) for p in points)}
        return [found[i] for i in chunk_ids if i in found]

    def count(self, collection: str, filters: Filters | None = None) -> int:
        """Chunks matching ``filters``."""
        flt = normalise_filters(filters)
        if not self._exists(collection):
            return 0
        if any(not v for v in flt.values()):
            return 0
        try:
            return int(self.client.count(collection, count_filter=self._filter(flt), exact=True).count)
        except Exception as exc:
            raise _backend(f"counting in Qdrant {collection!r}", exc) from exc

    def documents(self, collection: str) -> dict[str, IndexedDocument]:
        """Stored documents and their versions."""
        out: dict[str, IndexedDocument] = {}
        if not self._exists(collection):
            return out
        for p in self._scroll(collection, ["chunk_id", "doc_id", "source", "content_hash", "n_chunks"]):
            doc = out.setdefault(p["doc_id"], IndexedDocument(p["doc_id"], p["source"]))
            doc.add(p["chunk_id"], p["content_hash"], int(p["n_chunks"]))
        return out

    def collections(self) -> list[str]:
        """Existing collections, sorted."""
        try:
            return sorted(c.name for c in self.client.get_collections().collections)
        except Exception as exc:
            raise _backend("listing Qdrant collections", exc) from exc

    def drop(self, collection: str) -> None:
        """Delete a collection (no error when missing)."""
        with self._lock:
            if self._exists(collection):
                try:
                    self.client.delete_collection(collection)
                except Exception as exc:
                    raise _backend(f"dropping Qdrant {collection!r}", exc) from exc
            self._text.invalidate(collection)
            self._touched(collection)

    def close(self) -> None:
        """Close the client (releases the local-mode folder lock)."""
        if self._client is not None:
            try:
                self._client.close()
            finally:
                self._client = None


def _chunk(payload: Mapping[str, Any] | None) -> Chunk:
    return chunk_from_stored(payload, "Qdrant")


def _backend(what: str, exc: Exception) -> BackendError:
    if isinstance(exc, BackendError):
        return exc
    text = str(exc)
    transient = any(s in text.lower() for s in ("connect", "timed out", "timeout", "503", "502", "429"))
    cls = TransientBackendError if transient else BackendError
    return cls(f"{what} failed: {text}")
