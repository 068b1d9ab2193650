"""Retrieval metrics on hand-computed examples, and an evaluation run on a tiny BEIR set."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from aiw.errors import InvalidInputError
from aiw.rag.adapters.memory_index import InMemoryIndex
from aiw.rag.evaluation import evaluate, load_beir, mrr_at_k, ndcg_at_k, recall_at_k

pytestmark = pytest.mark.unit


def test_ndcg_with_graded_gains_by_hand() -> None:
    rels = {"a": 3, "b": 1, "c": 0, "d": 2}
    ranked = ["b", "x", "a"]
    dcg = (2**1 - 1) / math.log2(2) + 0 + (2**3 - 1) / math.log2(4)
    idcg = (2**3 - 1) / math.log2(2) + (2**2 - 1) / math.log2(3) + (2**1 - 1) / math.log2(4)
    assert ndcg_at_k(ranked, rels, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(["a", "d", "b"], rels, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["x", "a"], rels, 1) == 0.0
    assert ndcg_at_k(["a"], {"a": 0}, 10) == 0.0  # nothing relevant: 0, not a division by zero


def test_recall_and_mrr_by_hand() -> None:
    rels = {"a": 2, "b": 1, "c": 0}
    assert recall_at_k(["c", "a", "x"], rels, 100) == 0.5
    assert recall_at_k(["c", "a", "b"], rels, 2) == 0.5
    assert recall_at_k(["a", "b"], {}, 100) == 0.0
    assert mrr_at_k(["c", "x", "b"], rels, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(["c", "x", "b"], rels, 2) == 0.0


def test_evaluate_tiny_beir_set(tiny_beir: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    dataset = load_beir(tiny_beir)
    assert len(dataset.corpus) == 6 and dataset.qrels["q3"] == {"d4": 3, "d5": 0}
    index = InMemoryIndex()
    report = evaluate(dataset, index=index, embedder=embedder)
    assert report.documents == 5  # the empty document is left out
    assert [r.mode for r in report.results] == ["hybrid", "bm25", "vector"]
    for result in report.results:
        assert result.queries == 3
        assert result.ndcg_at_10 == pytest.approx(1.0) and result.mrr_at_10 == pytest.approx(1.0)
        assert result.recall_at_100 == pytest.approx(1.0)
        assert 0 < result.latency_p50_ms <= result.latency_p95_ms
    data = report.as_dict()
    assert data["results"][0]["ndcg@10"] == 1.0 and data["settings"]["rrf_k"] == 60
    again = evaluate(dataset, index=index, embedder=embedder, modes=["bm25"], limit=1)
    assert again.ingest["unchanged"] == 5 and again.ingest["chunks_written"] == 0
    assert again.results[0].queries == 1


def test_load_beir_reports_what_is_missing(tmp_path: Path, tiny_beir: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"corpus\.jsonl"):
        load_beir(tmp_path)
    folder = tiny_beir
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\thigh\n")
    with pytest.raises(InvalidInputError, match="not an integer"):
        load_beir(folder)
