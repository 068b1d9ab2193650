"""The contract every :class:`~aiw.rag.index.VectorIndex` adapter passes.

Inherit :class:`VectorIndexContract` in a test class and provide an ``index`` fixture that yields
the adapter under test::

    class TestMyIndex(VectorIndexContract):
        @pytest.fixture
        def index(self, tmp_path):
            yield MyIndex(tmp_path)

Each test works in a collection of its own (the ``collection`` fixture), so adapters backed by a
shared server need no cleaning between tests. Vectors are small hand-made unit vectors, so the
expected cosine of every hit is known exactly.
"""

from __future__ import annotations

import secrets
from typing import Any

import numpy as np
import pytest

from aiw.errors import InvalidInputError
from aiw.rag.documents import Chunk
from aiw.rag.index import VectorIndex

__all__ = ["VectorIndexContract", "make_chunk", "unit"]

DIM = 8


def unit(*weights: float) -> np.ndarray:
    """A unit float32 vector of dimension 8 from its first coordinates."""
    vec = np.zeros(DIM, dtype=np.float32)
    vec[: len(weights)] = weights
    return vec / np.linalg.norm(vec)


def make_chunk(
    doc: str,
    index: int,
    text: str,
    *,
    n_chunks: int = 1,
    version: str = "v1",
    tags: tuple[str, ...] = ("public",),
    metadata: dict[str, str] | None = None,
    heading: tuple[str, ...] = (),
) -> Chunk:
    """A chunk of document ``doc`` (version ``version``) with predictable id and metadata."""
    return Chunk(
        id=f"{doc}-{version}-{index:05d}",
        doc_id=doc,
        text=text,
        index=index,
        n_chunks=n_chunks,
        heading_path=heading,
        source=f"/docs/{doc}.md",
        title=f"Title of {doc}",
        content_hash=f"{version}hash",
        access_tags=tags,
        metadata=metadata or {},
    )


# Four documents on distinct topics; vector i points mostly along axis i.
_CORPUS: list[tuple[Chunk, np.ndarray]] = [
    (
        make_chunk(
            "home",
            0,
            "Flood damage to the house is excluded unless the flood rider was bought.",
            n_chunks=2,
            metadata={"line": "home", "year": "2024"},
            heading=("Home", "Exclusions"),
        ),
        unit(1, 0.1),
    ),
    (
        make_chunk(
            "home",
            1,
            "Fire and smoke damage to the dwelling are covered up to the limit.",
            n_chunks=2,
            metadata={"line": "home", "year": "2024"},
            heading=("Home", "Coverage"),
        ),
        unit(1, 0.3),
    ),
    (
        make_chunk(
            "auto",
            0,
            "Collision coverage pays for damage to your car after an accident.",
            metadata={"line": "auto", "year": "2023"},
        ),
        unit(0.1, 1),
    ),
    (
        make_chunk(
            "travel",
            0,
            "Trip cancellation is reimbursed for covered medical reasons.",
            tags=("internal",),
            metadata={"line": "travel", "year": "2024"},
        ),
        unit(0, 0.1, 1),
    ),
    (
        make_chunk(
            "secret",
            0,
            "Reserve figures for flood claims in the north region.",
            tags=("internal", "finance"),
            metadata={"line": "home", "year": "2022"},
        ),
        unit(0, 0, 0.2, 1),
    ),
]


class VectorIndexContract:
    """Behaviour shared by every index adapter (see :class:`aiw.rag.index.VectorIndex`)."""

    @pytest.fixture
    def collection(self) -> str:
        """A fresh collection name per test."""
        return f"t{secrets.token_hex(6)}"

    @pytest.fixture
    def filled(self, index: VectorIndex, collection: str) -> tuple[VectorIndex, str]:
        """The index with the five-chunk corpus in ``collection``."""
        chunks = [c for c, _ in _CORPUS]
        index.upsert(collection, chunks, np.stack([v for _, v in _CORPUS]))
        return index, collection

    @staticmethod
    def _ids(hits: list[Any]) -> list[str]:
        return [h.chunk.id for h in hits]

    # -- writes ----------------------------------------------------------------------------
    def test_upsert_counts_and_round_trips_every_field(self, filled: tuple[VectorIndex, str]) -> None:
        index, coll = filled
        assert index.count(coll) == 5
        got = index.get(coll, ["home-v1-00000", "missing", "travel-v1-00000"])
        assert [c.id for c in got] == ["home-v1-00000", "travel-v1-00000"]
        assert got[0] == _CORPUS[0][0]
        assert got[0].heading_path == ("Home", "Exclusions") and got[0].metadata == {"line": "home", "year": "2024"}
        assert got[1].access_tags == ("internal",)

    def test_upsert_is_idempotent_by_chunk_id(self, filled: tuple[VectorIndex, str]) -> None:
        index, coll = filled
        changed = make_chunk(
            "auto", 0, "Comprehensive cover pays for hail damage to the car.", metadata={"line": "auto", "year": "2025"}
        )
        for _ in range(2):
            index.upsert(coll, [changed], unit(0, 0, 0, 0, 1)[None, :])
        assert index.count(coll) == 5
        assert index.get(coll, [changed.id]) == [changed]
        hits = index.search_vector(coll, unit(0, 0, 0, 0, 1), 1)
        assert self._ids(hits) == [changed.id] and hits[0].score == pytest.approx(1.0, abs=1e-4)
        assert self._ids(index.search_text(coll, "hail", 5)) == [changed.id]
        assert index.search_text(coll, "collision", 5) == []
        assert index.count(coll, {"year": "2025"}) == 1 and index.count(coll, {"year": "2023"}) == 0

    def test_empty_upsert_writes_nothing(self, index: VectorIndex, collection: str) -> None:
        assert index.upsert(collection, [], np.zeros((0, DIM), dtype=np.float32)) == 0
        assert index.count(collection) == 0

    def test_delete_documents_removes_all_their_chunks(self, filled: tuple[VectorIndex, str]) -> None:
        index, coll = filled
        assert index.delete_documents(coll, ["home", "nope"]) == 2
        assert index.count(coll) == 3
        assert index.count(coll, {"doc_id": "home"}) == 0
        assert all(h.chunk.doc_id != "home" for h in index.search_vector(coll, unit(1), 5))
        assert all(h.chunk.doc_id != "home" for h in index.search_text(coll, "flood damage", 5))
        assert index.delete_documents(coll, ["home"]) == 0

    def test_delete_chunks_by_id(self, filled: tuple[VectorIndex, str]) -> None:
        index, coll = filled
        assert index.delete_chunks(coll, ["home-v1-00001", "unknown"]) == 1
        assert index.get(coll, ["home-v1-00000", "home-v1-00001"]) == [_CORPUS[0][0]]
        assert index.count(coll) == 4

    def test_documents_lists_versions_and_completeness(self, filled: tuple[VectorIndex, str]) -> None:
        index, coll = filled
        newer = make_chunk(
            "home",
            0,
            "Flood damage is now covered.",
            n_chunks=2,
            version="v2",
            metadata={"line": "home", "year": "2024"},
        )
        index.upsert(coll, [newer], unit(1, 0.2)[None, :])
        docs = index.documents(coll)
        assert set(docs) == {"home", "auto", "travel", "secret"}
        home = docs["home"]
        assert home.source == "/docs/home.md"
        assert set(home.versions) == {"v1hash", "v2hash"}
        assert sorted(home.versions["v1hash"]) == ["home-v1-00000", "home-v1-00001"]
        assert home.complete("v1hash") and not home.complete("v2hash") and not home.complete("v9hash")
        assert docs["auto"].complete("v1hash")

    def test_wrong_dimension_and_count_mismatch_are_refused(self, filled: tuple[VectorIndex, str]) -> None:
        index, coll = filled
        extra = make_chunk("extra", 0, "text")
        with pytest.raises(InvalidInputError, match="dimension"):
            index.upsert(coll, [extra], np.ones((1, DIM + 1), dtype=np.float32))
        with pytest.raises(InvalidInputError):
            index.upsert(coll, [extra], np.ones((2, DIM), dtype=np.float32))
        with pytest.raises(InvalidInputError):
            index.search_vector(coll, np.ones(DIM + 2, dtype=np.float32), 3)
        assert index.count(coll) == 5

    def test_invalid_collection_names_are_refused(self, index: VectorIndex) -> None:
        for bad in ("ab", "has space", "../etc", "x" * 70, "-lead"):
            with pytest.raises(InvalidInputError, match="collection name"):
                index.upsert(bad, [make_chunk("d", 0, "t")], unit(1)[None, :])
            with pytest.raises(InvalidInputError):
                index.count(bad)

    # -- reads -----------------------------------------------------------------------------
    def test_missing_collection_reads_as_empty(self, index: VectorIndex, collection: str) -> None:
        assert index.count(collection) == 0
        assert index.search_vector(collection, unit(1), 3) == []
        assert index.search_text(collection, "flood", 3) == []
        assert index.get(collection, ["a"]) == []
        assert index.documents(collection) == {}
        index.drop(collection)  # no error

    def test_vector_search_orders_by_cosine(self, filled: tuple[VectorIndex, str]) -> None:
        index, coll = filled
        query = unit(1, 0.15)
        hits = index.search_vector(coll, query, 3)
        expected_order = sorted(_CORPUS, key=lambda cv: -float(np.dot(query, cv[1])))[:3]
        assert self._ids(hits) == [c.id for c, _ in expected_order]
        assert self._ids(hits) == ["home-v1-00000", "home-v1-00001", "auto-v1-00000"]
        for hit in hits:
            expected = float(np.dot(query, {c.id: v for c, v in _CORPUS}[hit.chunk.id]))
            assert hit.score == pytest.approx(expected, abs=1e-4)
            assert hit.vector is not None and hit.vector.shape == (DIM,)
        assert len(index.search_vector(coll, query, 50)) == 5

    def test_text_search_ranks_by_bm25_with_analysis(self, filled: tuple[VectorIndex, str]) -> None:
        index, coll = filled
        hits = index.search_text(coll, "Floods", 5)  # stemmed: flood
        assert set(self._ids(hits)) == {"home-v1-00000", "secret-v1-00000"}
        assert all(h.score > 0 for h in hits)
        assert hits == sorted(hits, key=lambda h: -h.score)
        assert self._ids(index.search_text(coll, "the of and", 5)) == []  # stopwords only
        assert self._ids(index.search_text(coll, "medical trip", 5))[0] == "travel-v1-00000"
        # The title and headings are searchable too.
        assert self._ids(index.search_text(coll, "exclusions", 5)) == ["home-v1-00000"]

    def test_weighted_text_query(self, filled: tuple[VectorIndex, str]) -> None:
        index, coll = filled
        reserve = self._ids(index.search_text(coll, {"flood": 0.1, "reserv": 5.0}, 5))
        assert reserve[0] == "secret-v1-00000"
        house = self._ids(index.search_text(coll, {"flood": 0.1, "hous": 5.0}, 5))
        assert house[0] == "home-v1-00000"

    def test_filters_equality_and_membership(self, filled: tuple[VectorIndex, str]) -> None:
        index, coll = filled
        assert index.count(coll, {"line": "home"}) == 3
        assert index.count(coll, {"line": ["auto", "travel"]}) == 2
        assert index.count(coll, {"line": "home", "year": "2024"}) == 2
        assert index.count(coll, {"line": []}) == 0
        assert index.count(coll, {"year": 2024}) == 3  # values compare as strings
        assert index.count(coll, {"unknown_field": "x"}) == 0
        hits = index.search_vector(coll, unit(1), 5, filters={"line": ["auto", "travel"]})
        assert self._ids(hits) == ["auto-v1-00000", "travel-v1-00000"]
        text = index.search_text(coll, "damage flood", 5, filters={"year": "2024"})
        assert set(self._ids(text)) == {"home-v1-00000", "home-v1-00001"}

    def test_access_tag_filters_on_multi_valued_field(self, filled: tuple[VectorIndex, str]) -> None:
        index, coll = filled
        assert index.count(coll, {"access_tags": "public"}) == 3
        assert index.count(coll, {"access_tags": "finance"}) == 1
        assert index.count(coll, {"access_tags": ["internal"]}) == 2
        assert index.count(coll, {"access_tags": ["public", "finance"]}) == 4
        hits = index.search_text(coll, "flood", 5, filters={"access_tags": ["public"]})
        assert self._ids(hits) == ["home-v1-00000"]
        vec = index.search_vector(coll, unit(0, 0, 0.2, 1), 5, filters={"access_tags": "public"})
        assert "secret-v1-00000" not in self._ids(vec) and len(vec) == 3

    def test_filter_applies_before_k(self, filled: tuple[VectorIndex, str]) -> None:
        index, coll = filled
        hits = index.search_vector(coll, unit(1), 1, filters={"doc_id": "secret"})
        assert self._ids(hits) == ["secret-v1-00000"]

    def test_builtin_fields_are_filterable(self, filled: tuple[VectorIndex, str]) -> None:
        index, coll = filled
        assert index.count(coll, {"doc_id": ["home", "auto"]}) == 3
        assert index.count(coll, {"source": "/docs/auto.md"}) == 1
        assert index.count(coll, {"content_hash": "v1hash"}) == 5
        assert index.count(coll, {"heading": "Home > Coverage"}) == 1
        assert index.count(coll, {"title": "Title of travel"}) == 1

    def test_invalid_filters_and_k_are_refused(self, filled: tuple[VectorIndex, str]) -> None:
        index, coll = filled
        with pytest.raises(InvalidInputError):
            index.count(coll, {"bad field!": "x"})
        with pytest.raises(InvalidInputError):
            index.search_vector(coll, unit(1), 3, filters={"line": {"nested": 1}})  # type: ignore[dict-item]
        with pytest.raises(InvalidInputError):
            index.search_vector(coll, unit(1), 0)
        with pytest.raises(InvalidInputError):
            index.search_text(coll, "flood", -1)

    def test_values_with_quotes_and_unicode_are_safe(self, index: VectorIndex, collection: str) -> None:
        odd = make_chunk(
            "o'neil",
            0,
            "Größe des Schadens: l'assurance « habitation ».",
            metadata={"owner": "O'Neil; DROP TABLE x", "city": "Zürich"},
        )
        index.upsert(collection, [odd], unit(1)[None, :])
        assert index.count(collection, {"owner": "O'Neil; DROP TABLE x"}) == 1
        assert index.count(collection, {"city": "Zürich"}) == 1
        assert index.get(collection, [odd.id]) == [odd]
        assert index.delete_documents(collection, ["o'neil"]) == 1

    def test_collections_are_isolated(self, filled: tuple[VectorIndex, str]) -> None:
        index, coll = filled
        other = f"{coll}-b"
        index.upsert(other, [_CORPUS[0][0]], _CORPUS[0][1][None, :])
        assert index.count(other) == 1 and index.count(coll) == 5
        assert {coll, other} <= set(index.collections())
        index.delete_documents(other, ["home"])
        assert index.count(coll, {"doc_id": "home"}) == 2
        index.drop(other)
        assert other not in index.collections() and index.count(other) == 0
        assert index.count(coll) == 5

    def test_text_search_sees_chunks_written_after_the_first_batch(self, index: VectorIndex, collection: str) -> None:
        index.upsert(collection, [_CORPUS[2][0]], _CORPUS[2][1][None, :])
        assert index.search_text(collection, "flood", 5) == []
        index.upsert(collection, [_CORPUS[0][0]], _CORPUS[0][1][None, :])
        assert self._ids(index.search_text(collection, "flood", 5)) == ["home-v1-00000"]
