"""The cheaper query paths give the same lists: pooled Rocchio, a short RM3 feedback search, one-trip LanceDB reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aiw.rag.adapters import lancedb_index
from aiw.rag.adapters.lancedb_index import LanceDBIndex
from aiw.rag.adapters.memory_index import InMemoryIndex
from aiw.rag.bm25 import analyze
from aiw.rag.chunking import Chunker
from aiw.rag.index import Hit
from aiw.rag.ingest import ingest
from aiw.rag.retrieval import ROCCHIO_POOL, Retriever, rm3_query
from aiw.settings import RagSettings
from aiw.testing.index_contract import make_chunk

pytestmark = pytest.mark.unit

QUESTIONS = (
    "is flood damage covered for my house?",
    "windscreen replacement deductible",
    "which late claims go to the special investigations unit?",
    "courtesy car days",
)


@pytest.fixture(scope="module")
def small_chunks(corpus_template: Path, embedder):  # type: ignore[no-untyped-def]
    """The five documents cut into small chunks, in memory (more chunks than one list holds)."""
    index = InMemoryIndex()
    ingest(
        [corpus_template],
        collection="pol",
        index=index,
        embedder=embedder,
        chunker=Chunker(chunk_tokens=24, chunk_overlap=0),
    )
    return index


def test_pooled_rocchio_equals_a_second_search_when_the_pool_holds_every_chunk(small_chunks, embedder) -> None:  # type: ignore[no-untyped-def]
    total = small_chunks.count("pol")
    depth = -(-total // ROCCHIO_POOL)  # the pool then covers the collection
    s = RagSettings(vector_feedback_docs=3)
    assert s.vector_feedback_docs <= depth < total
    retriever = Retriever(small_chunks, embedder, s)
    for question in QUESTIONS:
        got = retriever.retrieve(question, collection="pol", mode="vector", top_k=depth, candidates=depth)
        qvec = embedder.embed([question])[0]
        first = small_chunks.search_vector("pol", qvec, depth)
        refined = qvec + s.vector_feedback_weight * np.mean([h.vector for h in first[: s.vector_feedback_docs]], axis=0)
        refined /= np.linalg.norm(refined)
        second = small_chunks.search_vector("pol", refined, depth)
        assert [r.chunk.id for r in got.chunks] == [h.chunk.id for h in second]
        assert np.allclose([r.score for r in got.chunks], [h.score for h in second], atol=1e-5)
        # Each chunk still reports its cosine with the query itself, and the best one is the first search's.
        assert got.best_cosine == pytest.approx(first[0].score, abs=1e-6)
        vector_of = {h.chunk.id: h.vector for h in small_chunks.search_vector("pol", qvec, total)}
        for r in got.chunks:
            assert r.cosine == pytest.approx(float(np.dot(qvec, vector_of[r.chunk.id])), abs=1e-5)


def test_rm3_reads_the_same_feedback_from_a_short_first_search(small_chunks, embedder) -> None:  # type: ignore[no-untyped-def]
    s = RagSettings()
    retriever = Retriever(small_chunks, embedder, s)
    total = small_chunks.count("pol")
    for question in QUESTIONS:
        full = small_chunks.search_text("pol", question, total)
        expanded = rm3_query(
            question, full[: s.feedback_docs], terms=s.feedback_terms, query_weight=s.feedback_query_weight
        )
        expected = small_chunks.search_text("pol", expanded, 20)
        got = retriever.retrieve(question, collection="pol", mode="bm25", top_k=20, candidates=20)
        assert [r.chunk.id for r in got.chunks] == [h.chunk.id for h in expected]


def test_lancedb_one_trip_reads_match_its_public_query_builders(
    tmp_path: Path,
    corpus_template: Path,
    embedder,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    index = LanceDBIndex(tmp_path / "lancedb")
    ingest(
        [corpus_template],
        collection="pol",
        index=index,
        embedder=embedder,
        chunker=Chunker(chunk_tokens=24, chunk_overlap=0),
    )
    table = index._table("pol")
    assert getattr(table, "_table", None) is not None  # the one-trip path is taken with this LanceDB

    def lists() -> list[object]:
        out: list[object] = []
        for question in QUESTIONS:
            qvec = embedder.embed([question])[0]
            for filters in (None, {"access_tags": ["public"]}, {"access_tags": ["internal"]}, {"access_tags": []}):
                vec = index.search_vector("pol", qvec, 7, filters)
                text = index.search_text("pol", {**dict.fromkeys(analyze(question), 1.0), "flood": 0.3}, 7, filters)
                out.append([(h.chunk, round(h.score, 5), np.round(h.vector, 5).tolist()) for h in vec])  # type: ignore[union-attr]
                out.append([(h.chunk, round(h.score, 4)) for h in text])
        return out

    fast = lists()
    monkeypatch.setattr(lancedb_index, "_fetch", lambda table, native, sync: sync())
    assert lists() == fast
    assert any(fast)


def test_rm3_feedback_reads_each_chunk_text_even_when_ids_repeat() -> None:
    """The same document version cut by two chunk sizes gives equal ids and different texts."""
    long = make_chunk("home", 1, "Flood damage is excluded. Storm damage is covered. Wear is excluded.")
    short = make_chunk("home", 1, "Subsidence cover needs a survey.")
    assert (long.id, long.content_hash) == (short.id, short.content_hash)
    first = rm3_query("damage", [Hit(long, 1.0)], terms=5, query_weight=0.5)
    second = rm3_query("damage", [Hit(short, 1.0)], terms=5, query_weight=0.5)
    assert "flood" in first and "subsid" in second and "flood" not in second
