"""The ``VectorIndex`` port: where chunks and their vectors are stored and searched.

Adapters live in :mod:`aiw.rag.adapters` (``memory``, ``lancedb``, ``chroma``, ``qdrant``) and are
found by short name through :func:`aiw._registry.resolve`. Every adapter passes the same contract
suite, :class:`aiw.testing.index_contract.VectorIndexContract`.

Metadata filters (:data:`Filters`) mean the same on every adapter. A filter maps a field name to a
condition; every condition must hold (AND):

* a scalar ``{"doc_type": "policy"}``: the field has that value (for a multi-valued field such as
  ``access_tags``: one of its values is that value);
* a list ``{"access_tags": ["public", "internal"]}``: the field has at least one of those values
  (an empty list matches nothing).

Values are compared as strings (``True`` as ``"true"``, ``3`` as ``"3"``). Filterable fields are
those of :meth:`aiw.rag.documents.Chunk.fields`: ``doc_id``, ``source``, ``title``,
``content_hash``, ``heading``, ``access_tags`` and every metadata key of the document.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from aiw.errors import BackendError, InvalidInputError
from aiw.rag.documents import Chunk

__all__ = [
    "FilterValue",
    "Filters",
    "Hit",
    "IndexedDocument",
    "TextQuery",
    "VectorIndex",
    "check_k",
    "check_vectors",
    "chunk_facets",
    "chunk_from_record",
    "chunk_from_stored",
    "facet",
    "matches",
    "normalise_filters",
    "query_weights",
    "validate_collection",
]

Scalar = str | int | float | bool
FilterValue = Scalar | Sequence[Scalar]
Filters = Mapping[str, FilterValue]
TextQuery = str | Mapping[str, float]
"""Free text, or analysed terms (as :func:`aiw.rag.bm25.analyze` makes them) mapped to weights."""

_COLLECTION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,61}[A-Za-z0-9]$")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Hit:
    """A chunk found by a search, with its score (higher is better).

    ``score`` is the cosine similarity for :meth:`VectorIndex.search_vector` and the BM25 score
    for :meth:`VectorIndex.search_text`. ``vector`` is the stored vector, filled by
    :meth:`VectorIndex.search_vector` (retrieval uses it for pseudo-relevance feedback).
    """

    chunk: Chunk
    score: float
    vector: np.ndarray | None = None


@dataclass
class IndexedDocument:
    """What an index holds of one document: its chunk ids per stored version.

    Attributes:
        doc_id: The document id.
        source: Its source path.
        versions: Content hash -> ids of the chunks stored for that version.
        expected: Content hash -> how many chunks that version has when complete.
    """

    doc_id: str
    source: str
    versions: dict[str, list[str]] = field(default_factory=dict)
    expected: dict[str, int] = field(default_factory=dict)

    def complete(self, content_hash: str) -> bool:
        """Whether every chunk of version ``content_hash`` is stored."""
        ids = self.versions.get(content_hash) or []
        return bool(ids) and len(set(ids)) >= self.expected.get(content_hash, 1)

    def add(self, chunk_id: str, content_hash: str, n_chunks: int) -> None:
        """Record one stored chunk (used by adapters while listing)."""
        self.versions.setdefault(content_hash, []).append(chunk_id)
        self.expected[content_hash] = n_chunks


@runtime_checkable
class VectorIndex(Protocol):
    """Stores chunks with their vectors per named collection, and searches them.

    Behaviour every adapter guarantees (checked by the contract suite):

    * Collections are created on first :meth:`upsert`; names are 3 to 63 characters of letters,
      digits, ``_`` and ``-`` (:func:`validate_collection`), else :class:`InvalidInputError`.
      Reading a collection that does not exist returns nothing (``[]``, ``0``, ``{}``); it never
      raises.
    * :meth:`upsert` is idempotent by chunk id: writing the same ids again replaces those chunks
      (text, metadata and vector) and never duplicates them. Vectors must be L2-normalised
      float32 of the collection's dimension; another dimension raises :class:`InvalidInputError`.
    * :meth:`delete_documents` removes every chunk of the given document ids;
      :meth:`delete_chunks` removes chunks by id. Unknown ids are ignored. Both return how many
      chunks were removed.
    * :meth:`search_vector` returns at most ``k`` hits by cosine similarity, best first, with
      ``score`` the cosine in [-1, 1] and ``vector`` the stored vector (feedback needs it);
      :meth:`search_text` returns at most ``k`` hits by BM25, best
      first, only chunks sharing at least one term with the query; the text is analysed by
      :func:`aiw.rag.bm25.analyze` (so every adapter matches the same terms), and a mapping of
      analysed terms to weights scores ``sum(weight * BM25 of term)``. Both apply ``filters`` (see the
      module docstring) before ranking, so a filter never shrinks the result below ``k`` while
      matching chunks remain.
    * :meth:`count` counts the chunks matching ``filters``; :meth:`documents` lists every stored
      document with the content hashes of its stored versions (so ingestion can skip unchanged
      documents and repair half-written ones).
    * Backend failures are raised as :class:`aiw.errors.BackendError` subclasses.
    """

    supports_text_search: bool
    """Whether :meth:`search_text` uses the backend's own full-text index (else our BM25)."""

    def upsert(self, collection: str, chunks: Sequence[Chunk], vectors: np.ndarray) -> int:
        """Insert or replace ``chunks`` (row ``i`` of ``vectors`` is chunk ``i``'s vector); returns how many."""
        ...

    def delete_documents(self, collection: str, doc_ids: Sequence[str]) -> int:
        """Delete every chunk of ``doc_ids``; returns how many chunks were deleted."""
        ...

    def delete_chunks(self, collection: str, chunk_ids: Sequence[str]) -> int:
        """Delete chunks by id; returns how many were deleted."""
        ...

    def search_vector(self, collection: str, vector: np.ndarray, k: int, filters: Filters | None = None) -> list[Hit]:
        """The ``k`` chunks most similar to ``vector`` (cosine), best first."""
        ...

    def search_text(self, collection: str, query: TextQuery, k: int, filters: Filters | None = None) -> list[Hit]:
        """The ``k`` best chunks for ``query`` by BM25, best first."""
        ...

    def get(self, collection: str, chunk_ids: Sequence[str]) -> list[Chunk]:
        """The stored chunks with these ids (unknown ids are left out), in the order asked."""
        ...

    def count(self, collection: str, filters: Filters | None = None) -> int:
        """How many chunks match ``filters`` (all chunks without filters)."""
        ...

    def documents(self, collection: str) -> dict[str, IndexedDocument]:
        """Every stored document: doc id -> its stored versions."""
        ...

    def collections(self) -> list[str]:
        """Names of the existing collections, sorted."""
        ...

    def drop(self, collection: str) -> None:
        """Delete a collection and everything in it (no error when it does not exist)."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


# -- helpers shared by the adapters ------------------------------------------------------------
def validate_collection(name: str) -> str:
    """``name`` if it is a valid collection name, else :class:`InvalidInputError`."""
    if not isinstance(name, str) or not _COLLECTION.match(name):
        raise InvalidInputError(
            f"The collection name must be 3 to 63 letters, digits, '_' or '-', starting and ending "
            f"with a letter or digit. Got {name!r} instead."
        )
    return name


def _as_str(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise InvalidInputError(f"A filter value must be a string, number or boolean. Got {value!r} instead.")


def normalise_filters(filters: Filters | None) -> dict[str, list[str]]:
    """``filters`` validated and made uniform: field -> accepted string values.

    A scalar becomes a one-element list; an empty list stays empty (matches nothing).

    Raises:
        InvalidInputError: a field name is malformed or a value is not a string, number or bool.
    """
    if not filters:
        return {}
    if not isinstance(filters, Mapping):
        raise InvalidInputError(f"Filters must be a mapping of field to value(s). Got {type(filters).__name__}.")
    out: dict[str, list[str]] = {}
    for key, cond in filters.items():
        if not isinstance(key, str) or not _FIELD.match(key):
            raise InvalidInputError(f"The filter field {key!r} is not a valid field name (letters, digits, _ . -).")
        if isinstance(cond, str | int | float | bool):
            out[key] = [_as_str(cond)]
        elif isinstance(cond, Sequence):
            out[key] = sorted({_as_str(v) for v in cond})
        else:
            raise InvalidInputError(
                f"The filter on {key!r} must be a value or a list of values. Got {type(cond).__name__}."
            )
    return out


def matches(chunk: Chunk, filters: Mapping[str, list[str]]) -> bool:
    """Whether ``chunk`` satisfies normalised ``filters``: the reference semantics."""
    fields = chunk.fields()
    return all(set(fields.get(key) or ()) & set(values) for key, values in filters.items())


def facet(field_name: str, value: str) -> str:
    """The string under which backends index "field has value" (``field=value``)."""
    return f"{field_name}={value}"


def chunk_facets(chunk: Chunk) -> list[str]:
    """Every ``field=value`` of ``chunk``: what backends without rich filters match on."""
    return sorted({facet(k, v) for k, values in chunk.fields().items() for v in values})


def stored_fields(chunk: Chunk) -> dict[str, Any]:
    """What a server backend (Chroma metadata, Qdrant payload) stores beside a vector: the whole
    chunk as JSON, its facets for filtering, and the keys deletes and refreshes look up."""
    return {
        "record": json.dumps(chunk.to_record(), ensure_ascii=False),
        "facets": chunk_facets(chunk),
        "chunk_id": chunk.id,
        "doc_id": chunk.doc_id,
        "source": chunk.source,
        "content_hash": chunk.content_hash,
        "n_chunks": chunk.n_chunks,
    }


def chunk_from_stored(stored: Mapping[str, Any] | None, backend: str) -> Chunk:
    """The chunk back from :func:`stored_fields` (refuses records aiw did not write)."""
    if not stored or "record" not in stored:
        raise BackendError(
            f"A {backend} record lacks its chunk data; it was not written by aiw",
            hint="ingest into a collection of its own",
        )
    return chunk_from_record(str(stored["record"]))


_CHUNKS: dict[str, Chunk] = {}
_CHUNKS_MAX = 10_000


def chunk_from_record(record: str) -> Chunk:
    """The chunk a stored JSON record holds, decoded once per distinct record.

    Searches return the same popular chunks again and again. The record text itself is the key,
    so a chunk rewritten under the same id is decoded anew; the chunks are shared (frozen, and
    their metadata must not be mutated).
    """
    found = _CHUNKS.get(record)
    if found is None:
        if len(_CHUNKS) >= _CHUNKS_MAX:
            _CHUNKS.clear()
        found = _CHUNKS[record] = Chunk.from_record(json.loads(record))
    return found


def check_vectors(chunks: Sequence[Chunk], vectors: np.ndarray, dimension: int | None) -> np.ndarray:
    """``vectors`` as a float32 (n, d) array matching ``chunks`` (and ``dimension`` when known).

    Raises:
        InvalidInputError: wrong shape, count or dimension, or non-finite values.
    """
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] != len(chunks):
        raise InvalidInputError(
            f"Upsert needs one vector per chunk: {len(chunks)} chunks, vectors of shape {arr.shape}."
        )
    if dimension is not None and arr.shape[1] != dimension:
        raise InvalidInputError(
            f"This collection holds vectors of dimension {dimension}; got {arr.shape[1]}.",
            hint="use the same embedding model as the collection, or ingest into a new collection",
        )
    if not np.isfinite(arr).all():
        raise InvalidInputError("Vectors must be finite (no NaN or infinity).")
    ids = [c.id for c in chunks]
    if len(set(ids)) != len(ids):
        raise InvalidInputError("Chunk ids in one upsert must be unique.")
    return arr


def check_k(k: int) -> int:
    """``k`` if it is an int >= 1, else :class:`InvalidInputError`."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InvalidInputError(f"The 'k' parameter of a search must be an int >= 1. Got {k!r} instead.")
    return k


def query_weights(query: TextQuery) -> dict[str, float]:
    """Analysed terms of ``query`` -> weight (each distinct term of a string weighs 1).

    Raises:
        InvalidInputError: neither a string nor a mapping of strings to finite numbers.
    """
    from aiw.rag.bm25 import analyze

    if isinstance(query, str):
        return dict.fromkeys(analyze(query), 1.0)
    if not isinstance(query, Mapping):
        raise InvalidInputError(
            f"A text query must be a string or a mapping of term to weight. Got {type(query).__name__}."
        )
    out: dict[str, float] = {}
    for term, weight in query.items():
        if (
            not isinstance(term, str)
            or isinstance(weight, bool)
            or not isinstance(weight, int | float)
            or not np.isfinite(weight)
        ):
            raise InvalidInputError(f"A weighted text query maps terms to finite numbers. Got {term!r}: {weight!r}.")
        if weight > 0 and term:
            out[term] = float(weight)
    return out
