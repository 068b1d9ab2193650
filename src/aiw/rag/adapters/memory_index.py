"""The reference :class:`~aiw.rag.index.VectorIndex`: numpy cosine search and our BM25, in memory.

It defines the behaviour the other adapters are tested against, and serves tests, evaluation runs
and small throwaway collections. Nothing is persisted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from aiw.errors import InvalidInputError
from aiw.rag.bm25 import BM25
from aiw.rag.documents import Chunk
from aiw.rag.index import (
    Filters,
    Hit,
    IndexedDocument,
    TextQuery,
    check_k,
    check_vectors,
    matches,
    normalise_filters,
    query_weights,
    validate_collection,
)

__all__ = ["InMemoryIndex", "TextSearchCache"]


@dataclass
class _Collection:
    dimension: int | None = None
    chunks: dict[str, Chunk] = field(default_factory=dict)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    version: int = 0
    matrix: tuple[int, list[Chunk], np.ndarray] | None = None


class TextSearchCache:
    """BM25 over a collection's chunks, rebuilt only when the collection changed.

    Adapters whose backend has no BM25 keep one of these; ``version`` is any value that changes
    whenever the collection's content does (a write counter, a row count ...).
    """

    def __init__(self) -> None:
        self._built: dict[str, tuple[object, list[Chunk], BM25]] = {}
        self._lock = threading.Lock()

    def search(
        self,
        collection: str,
        version: object,
        load: Callable[[], list[Chunk]],
        query: TextQuery,
        k: int,
        filters: dict[str, list[str]],
    ) -> list[Hit]:
        """The ``k`` best chunks for ``query``; ``load()`` returns every chunk when a rebuild is due."""
        with self._lock:
            entry = self._built.get(collection)
        if entry is None or entry[0] != version:
            chunks = load()
            bm25 = BM25().fit([c.search_text for c in chunks])
            entry = (version, chunks, bm25)
            with self._lock:
                self._built[collection] = entry
        _, chunks, bm25 = entry
        if not chunks:
            return []
        mask = np.fromiter((matches(c, filters) for c in chunks), dtype=bool, count=len(chunks)) if filters else None
        return [Hit(chunks[i], score) for i, score in bm25.search(query_weights(query), k, mask=mask)]

    def invalidate(self, collection: str) -> None:
        """Forget what was built for ``collection``."""
        with self._lock:
            self._built.pop(collection, None)


class InMemoryIndex:
    """An in-process index: exact cosine search with numpy and exact BM25.

    Thread-safe for concurrent readers and writers (one lock).
    """

    supports_text_search = True

    def __init__(self) -> None:
        self._collections: dict[str, _Collection] = {}
        self._lock = threading.RLock()
        self._text = TextSearchCache()

    def _get(self, collection: str) -> _Collection | None:
        return self._collections.get(validate_collection(collection))

    def upsert(self, collection: str, chunks: Sequence[Chunk], vectors: np.ndarray) -> int:
        """Insert or replace chunks by id."""
        validate_collection(collection)
        with self._lock:
            coll = self._collections.get(collection)
            arr = check_vectors(chunks, vectors, coll.dimension if coll else None)
            if not chunks:
                return 0
            if coll is None:
                coll = self._collections[collection] = _Collection(dimension=int(arr.shape[1]))
            for chunk, vec in zip(chunks, arr, strict=True):
                coll.chunks[chunk.id] = chunk
                coll.vectors[chunk.id] = vec.copy()
            coll.version += 1
        return len(chunks)

    def delete_documents(self, collection: str, doc_ids: Sequence[str]) -> int:
        """Delete every chunk of ``doc_ids``."""
        wanted = set(doc_ids)
        with self._lock:
            coll = self._get(collection)
            if coll is None:
                return 0
            ids = [cid for cid, c in coll.chunks.items() if c.doc_id in wanted]
            return self._remove(coll, ids)

    def delete_chunks(self, collection: str, chunk_ids: Sequence[str]) -> int:
        """Delete chunks by id."""
        with self._lock:
            coll = self._get(collection)
            if coll is None:
                return 0
            return self._remove(coll, [cid for cid in set(chunk_ids) if cid in coll.chunks])

    @staticmethod
    def _remove(coll: _Collection, ids: list[str]) -> int:
        for cid in ids:
            del coll.chunks[cid]
            del coll.vectors[cid]
        if ids:
            coll.version += 1
        return len(ids)

    def search_vector(self, collection: str, vector: np.ndarray, k: int, filters: Filters | None = None) -> list[Hit]:
        """Exact cosine search (vectors are normalised, so a dot product)."""
        check_k(k)
        flt = normalise_filters(filters)
        with self._lock:
            coll = self._get(collection)
            if coll is None or not coll.chunks:
                return []
            if coll.matrix is None or coll.matrix[0] != coll.version:
                ids = list(coll.chunks)
                coll.matrix = (coll.version, [coll.chunks[i] for i in ids], np.stack([coll.vectors[i] for i in ids]))
            _, chunks, matrix = coll.matrix
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        if query.shape[0] != matrix.shape[1]:
            raise InvalidInputError(
                f"The query vector has dimension {query.shape[0]}; this collection holds {matrix.shape[1]}."
            )
        # Multiply-and-sum rather than BLAS: a matrix-vector product this small is faster on one
        # thread than on a BLAS thread pool competing with the embedding model for the cores.
        scores = np.einsum("ij,j->i", matrix, query)
        if flt:
            keep = np.fromiter((matches(c, flt) for c in chunks), dtype=bool, count=len(chunks))
            scores = np.where(keep, scores, -np.inf)
        top = np.argpartition(-scores, k - 1)[:k] if k < scores.shape[0] else np.arange(scores.shape[0])
        order = top[np.lexsort((top, -scores[top]))]
        return [Hit(chunks[i], float(scores[i]), matrix[i]) for i in order if np.isfinite(scores[i])]

    def search_text(self, collection: str, query: TextQuery, k: int, filters: Filters | None = None) -> list[Hit]:
        """BM25 over every chunk's title, headings and text."""
        check_k(k)
        flt = normalise_filters(filters)
        with self._lock:
            coll = self._get(collection)
            if coll is None:
                return []
            version = coll.version
            snapshot = list(coll.chunks.values())
        return self._text.search(collection, version, lambda: snapshot, query, k, flt)

    def get(self, collection: str, chunk_ids: Sequence[str]) -> list[Chunk]:
        """Chunks by id, in the order asked."""
        with self._lock:
            coll = self._get(collection)
            if coll is None:
                return []
            return [coll.chunks[i] for i in chunk_ids if i in coll.chunks]

    def count(self, collection: str, filters: Filters | None = None) -> int:
        """Chunks matching ``filters``."""
        flt = normalise_filters(filters)
        with self._lock:
            coll = self._get(collection)
            if coll is None:
                return 0
            return sum(1 for c in coll.chunks.values() if matches(c, flt)) if flt else len(coll.chunks)

    def documents(self, collection: str) -> dict[str, IndexedDocument]:
        """Stored documents and their versions."""
        out: dict[str, IndexedDocument] = {}
        with self._lock:
            coll = self._get(collection)
            for chunk in coll.chunks.values() if coll else ():
                doc = out.setdefault(chunk.doc_id, IndexedDocument(chunk.doc_id, chunk.source))
                doc.add(chunk.id, chunk.content_hash, chunk.n_chunks)
        return out

    def collections(self) -> list[str]:
        """Existing collections."""
        with self._lock:
            return sorted(self._collections)

    def drop(self, collection: str) -> None:
        """Forget a collection."""
        with self._lock:
            self._collections.pop(validate_collection(collection), None)
        self._text.invalidate(collection)

    def close(self) -> None:
        """Nothing to release."""
        return None
