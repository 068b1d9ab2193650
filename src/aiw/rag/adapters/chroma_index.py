"""Chroma: the index on a Chroma server (``chroma run --path DIR --host 127.0.0.1 --port 8001``).

We always pass our own embeddings (Chroma's default embedding function would download a model)
and turn Chroma's telemetry off. Chroma has no BM25 of its own here, so :meth:`search_text`
ranks with our BM25 over the collection's chunks, read once and rebuilt only after a write (or
when the count changes because another process wrote).

Metadata filters use a ``facets`` array per record (``field=value`` strings) and Chroma's
``$contains`` operator, so they mean exactly what :mod:`aiw.rag.index` says.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

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

__all__ = ["ChromaIndex", "chroma_where"]

_PAGE = 1000


def chroma_where(filters: Mapping[str, list[str]]) -> dict[str, Any] | None:
    """The Chroma ``where`` clause of normalised ``filters`` (None: no filter).

    Callers must handle a condition with no values (it matches nothing) before calling.
    """
    clauses: list[dict[str, Any]] = []
    for key, values in filters.items():
        options: list[dict[str, Any]] = [{"facets": {"$contains": facet(key, v)}} for v in values]
        clauses.append(options[0] if len(options) == 1 else {"$or": options})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


class ChromaIndex:
    """The :class:`~aiw.rag.index.VectorIndex` on a Chroma server.

    Args:
        url: The server, ``http://127.0.0.1:8001``.
    """

    supports_text_search = False

    def __init__(self, url: str) -> None:
        parsed = urlparse(url if "://" in url else f"http://{url}")
        if not parsed.hostname:
            raise ConfigError(f"The Chroma URL {url!r} has no host", hint="set AIW_INDEX__URL=http://host:port")
        self.url = url
        self._host = parsed.hostname
        self._port = parsed.port or (443 if parsed.scheme == "https" else 8000)
        self._ssl = parsed.scheme == "https"
        self._client: Any = None
        self._lock = threading.RLock()
        self._writes: dict[str, int] = {}
        self._text = TextSearchCache()

    @property
    def client(self) -> Any:
        """The Chroma HTTP client, connected on first use."""
        if self._client is None:
            os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
            import chromadb
            from chromadb.config import Settings as ChromaSettings

            try:
                self._client = chromadb.HttpClient(
                    host=self._host, port=self._port, ssl=self._ssl, settings=ChromaSettings(anonymized_telemetry=False)
                )
            except Exception as exc:
                raise TransientBackendError(
                    f"Cannot reach the Chroma server at {self.url}: {exc}",
                    hint="start it with 'chroma run --path DIR --port PORT'",
                ) from exc
        return self._client

    def _collection(self, name: str, *, create: bool = False) -> Any | None:
        validate_collection(name)
        try:
            if create:
                return self.client.get_or_create_collection(
                    name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
                )
            return self.client.get_collection(name, embedding_function=None)
        except Exception as exc:
            if not create and _is_not_found(exc):
                return None
            raise _backend(f"Chroma collection {name!r}", exc) from exc

    @staticmethod
    def _dimension(coll: Any) -> int | None:
        try:
            got = coll.get(limit=1, include=["embeddings"])
        except Exception as exc:
            raise _backend("reading Chroma", exc) from exc
        embeddings = got.get("embeddings")
        return len(embeddings[0]) if embeddings is not None and len(embeddings) else None

    # -- writes ------------------------------------------------------------------------------
    def upsert(self, collection: str, chunks: Sequence[Chunk], vectors: np.ndarray) -> int:
        """Insert or replace chunks by id."""
        with self._lock:
            coll = self._collection(collection)
            arr = check_vectors(chunks, vectors, self._dimension(coll) if coll is not None else None)
            if not chunks:
                return 0
            coll = coll if coll is not None else self._collection(collection, create=True)
            assert coll is not None  # created above
            batch = max(1, min(self.client.get_max_batch_size(), 2000))
            try:
                for start in range(0, len(chunks), batch):
                    part = chunks[start : start + batch]
                    coll.upsert(
                        ids=[c.id for c in part],
                        embeddings=arr[start : start + batch],
                        documents=[c.search_text for c in part],
                        metadatas=[stored_fields(c) for c in part],
                    )
            except Exception as exc:
                raise _backend(f"writing {len(chunks)} chunks to Chroma {collection!r}", exc) from exc
            self._touched(collection)
        return len(chunks)

    def _touched(self, collection: str) -> None:
        self._writes[collection] = self._writes.get(collection, 0) + 1

    def delete_documents(self, collection: str, doc_ids: Sequence[str]) -> int:
        """Delete every chunk of ``doc_ids``."""
        ids = sorted(set(doc_ids))
        return self._delete(collection, {"doc_id": {"$in": ids}} if ids else None)

    def delete_chunks(self, collection: str, chunk_ids: Sequence[str]) -> int:
        """Delete chunks by id."""
        ids = sorted(set(chunk_ids))
        return self._delete(collection, None, ids=ids) if ids else 0

    def _delete(self, collection: str, where: dict[str, Any] | None, *, ids: list[str] | None = None) -> int:
        """Delete the chunks that ``where`` or ``ids`` select; returns how many existed."""
        if where is None and ids is None:
            return 0
        select: dict[str, Any] = {"where": where} if where is not None else {"ids": ids}
        with self._lock:
            coll = self._collection(collection)
            if coll is None:
                return 0
            try:
                found = coll.get(**select, include=[])["ids"]
                if found:
                    coll.delete(ids=found)
            except Exception as exc:
                raise _backend(f"deleting from Chroma {collection!r}", exc) from exc
            self._touched(collection)
            return len(found)

    # -- reads -------------------------------------------------------------------------------
    def search_vector(self, collection: str, vector: np.ndarray, k: int, filters: Filters | None = None) -> list[Hit]:
        """Cosine search with Chroma's HNSW index."""
        check_k(k)
        flt = normalise_filters(filters)
        coll = self._collection(collection)
        if coll is None or any(not v for v in flt.values()):
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        dimension = self._dimension(coll)
        if dimension is not None and query.shape[0] != dimension:
            raise InvalidInputError(
                f"The query vector has dimension {query.shape[0]}; this collection holds {dimension}."
            )
        try:
            res = coll.query(
                query_embeddings=[query],
                n_results=k,
                where=chroma_where(flt),
                include=["metadatas", "distances", "embeddings"],
            )
        except Exception as exc:
            raise _backend(f"vector search in Chroma {collection!r}", exc) from exc
        metas, dists, embs = res["metadatas"][0], res["distances"][0], res["embeddings"][0]
        return [
            Hit(_chunk(m), 1.0 - float(d), np.asarray(e, dtype=np.float32))
            for m, d, e in zip(metas, dists, embs, strict=True)
        ]

    def search_text(self, collection: str, query: TextQuery, k: int, filters: Filters | None = None) -> list[Hit]:
        """BM25 (ours) over the collection's chunks."""
        check_k(k)
        flt = normalise_filters(filters)
        coll = self._collection(collection)
        if coll is None:
            return []
        version = (self._writes.get(collection, 0), self._count(coll, None))
        return self._text.search(collection, version, lambda: self._all(coll), query, k, flt)

    def _all(self, coll: Any) -> list[Chunk]:
        out: list[Chunk] = []
        offset = 0
        while True:
            try:
                page = coll.get(include=["metadatas"], limit=_PAGE, offset=offset)
            except Exception as exc:
                raise _backend("reading Chroma", exc) from exc
            out.extend(_chunk(m) for m in page["metadatas"])
            if len(page["ids"]) < _PAGE:
                return out
            offset += _PAGE

    def get(self, collection: str, chunk_ids: Sequence[str]) -> list[Chunk]:
        """Chunks by id, in the order asked."""
        ids = list(dict.fromkeys(chunk_ids))
        coll = self._collection(collection)
        if coll is None or not ids:
            return []
        try:
            res = coll.get(ids=ids, include=["metadatas"])
        except Exception as exc:
            raise _backend(f"reading Chroma {collection!r}", exc) from exc
        found = {i: _chunk(m) for i, m in zip(res["ids"], res["metadatas"], strict=True)}
        return [found[i] for i in chunk_ids if i in found]

    def _count(self, coll: Any, flt: dict[str, list[str]] | None) -> int:
        try:
            if not flt:
                return int(coll.count())
            if any(not v for v in flt.values()):
                return 0
            return len(coll.get(where=chroma_where(flt), include=[])["ids"])
        except Exception as exc:
            raise _backend("counting in Chroma", exc) from exc

    def count(self, collection: str, filters: Filters | None = None) -> int:
        """Chunks matching ``filters``."""
        flt = normalise_filters(filters)
        coll = self._collection(collection)
        return 0 if coll is None else self._count(coll, flt)

    def documents(self, collection: str) -> dict[str, IndexedDocument]:
        """Stored documents and their versions."""
        coll = self._collection(collection)
        out: dict[str, IndexedDocument] = {}
        if coll is None:
            return out
        offset = 0
        while True:
            try:
                page = coll.get(include=["metadatas"], limit=_PAGE, offset=offset)
            except Exception as exc:
                raise _backend(f"listing Chroma {collection!r}", exc) from exc
            for cid, meta in zip(page["ids"], page["metadatas"], strict=True):
                doc = out.setdefault(str(meta["doc_id"]), IndexedDocument(str(meta["doc_id"]), str(meta["source"])))
                doc.add(cid, str(meta["content_hash"]), int(meta["n_chunks"]))
            if len(page["ids"]) < _PAGE:
                return out
            offset += _PAGE

    def collections(self) -> list[str]:
        """Existing collections, sorted."""
        try:
            return sorted(c if isinstance(c, str) else c.name for c in self.client.list_collections())
        except Exception as exc:
            raise _backend("listing Chroma collections", exc) from exc

    def drop(self, collection: str) -> None:
        """Delete a collection (no error when missing)."""
        validate_collection(collection)
        with self._lock:
            try:
                self.client.delete_collection(collection)
            except Exception as exc:
                if not _is_not_found(exc):
                    raise _backend(f"dropping Chroma {collection!r}", exc) from exc
            self._text.invalidate(collection)
            self._touched(collection)

    def close(self) -> None:
        """Forget the client (the HTTP connection pool closes with it)."""
        self._client = None


def _chunk(meta: Mapping[str, Any] | None) -> Chunk:
    return chunk_from_stored(meta, "Chroma")


def _is_not_found(exc: Exception) -> bool:
    return type(exc).__name__ in {"NotFoundError", "InvalidCollectionException"} or "does not exist" in str(exc)


def _backend(what: str, exc: Exception) -> BackendError:
    if isinstance(exc, InvalidInputError | BackendError):
        return exc  # type: ignore[return-value]
    text = str(exc)
    transient = any(s in text.lower() for s in ("connect", "timed out", "timeout", "503", "502", "429"))
    cls = TransientBackendError if transient else BackendError
    return cls(f"{what} failed: {text}")
