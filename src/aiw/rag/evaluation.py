"""Retrieval quality on a BEIR-format data set: nDCG@10, Recall@100, MRR@10 and latency.

A BEIR folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``,
``text``) and ``qrels/<split>.tsv`` (``query-id``, ``corpus-id``, ``score``; graded relevance
allowed). :func:`evaluate` indexes the corpus (incrementally: a second run re-embeds nothing),
runs every judged query in each mode and reports, per mode:

* nDCG@10 with gains ``2^rel - 1`` and the ideal ranking taken over every judged document;
* Recall@100: the share of relevant (``rel > 0``) documents in the first 100;
* MRR@10: the reciprocal rank of the first relevant document within 10, else 0;
* query latency p50 / p95 in milliseconds (retrieval only, no answer generation).

Documents are ranked by their best chunk (the first time a document appears in the fused chunk
ranking), which is how a document-level judgement applies to chunked retrieval.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aiw.errors import InvalidInputError
from aiw.rag.documents import Document, content_hash
from aiw.rag.index import VectorIndex
from aiw.rag.ingest import IngestReport, ingest_documents
from aiw.rag.retrieval import MODES, Mode, Retriever
from aiw.settings import RagSettings

if TYPE_CHECKING:
    from aiw.providers.embeddings import Embedder
    from aiw.rag.chunking import Chunker

__all__ = [
    "RETRIEVAL_SETTINGS",
    "BeirDataset",
    "EvalReport",
    "ModeResult",
    "evaluate",
    "load_beir",
    "mrr_at_k",
    "ndcg_at_k",
    "recall_at_k",
]

RETRIEVAL_SETTINGS = (
    "top_k",
    "rrf_k",
    "bm25_weight",
    "vector_weight",
    "candidates",
    "feedback",
    "feedback_docs",
    "feedback_terms",
    "feedback_query_weight",
    "vector_feedback_docs",
    "vector_feedback_weight",
    "chunk_tokens",
    "chunk_overlap",
)
"""The RAG settings an evaluation report records (what its figures depend on)."""


@dataclass
class BeirDataset:
    """A BEIR data set in memory."""

    name: str
    corpus: dict[str, tuple[str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    row = json.loads(line)
                except ValueError as exc:
                    raise InvalidInputError(f"{path.name} line {n} is not JSON: {exc}") from exc
                if not isinstance(row, dict) or "_id" not in row:
                    raise InvalidInputError(f"{path.name} line {n} must be an object with an '_id'.")
                rows.append(row)
    return rows


def load_beir(path: str | Path, *, split: str = "test") -> BeirDataset:
    """Read a BEIR folder.

    Raises:
        InvalidInputError: a file is missing or malformed.
    """
    root = Path(path).expanduser()
    files = {
        "corpus": root / "corpus.jsonl",
        "queries": root / "queries.jsonl",
        "qrels": root / "qrels" / f"{split}.tsv",
    }
    for what, file in files.items():
        if not file.is_file():
            raise InvalidInputError(
                f"The BEIR folder {root} has no {file.relative_to(root)} ({what})",
                hint="a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/test.tsv",
            )
    corpus = {
        str(r["_id"]): (str(r.get("title") or ""), str(r.get("text") or "")) for r in _read_jsonl(files["corpus"])
    }
    queries = {str(r["_id"]): str(r.get("text") or "") for r in _read_jsonl(files["queries"])}
    qrels: dict[str, dict[str, int]] = {}
    with files["qrels"].open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            parts = line.strip().split("\t") if "\t" in line else line.split()
            if not parts or (n == 1 and not parts[-1].lstrip("-").isdigit()):
                continue  # blank line or header
            if len(parts) < 3:
                raise InvalidInputError(f"qrels line {n} needs query-id, corpus-id and score.")
            try:
                qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
            except ValueError as exc:
                raise InvalidInputError(f"qrels line {n}: the score {parts[2]!r} is not an integer.") from exc
    return BeirDataset(root.name, corpus, queries, qrels)


# -- metrics -----------------------------------------------------------------------------------
def ndcg_at_k(ranked: Sequence[str], rels: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k with gains ``2^rel - 1`` and log2 discounts; the ideal ranking uses every judgement."""
    dcg = sum((2 ** rels.get(doc, 0) - 1) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted((r for r in rels.values() if r > 0), reverse=True)[:k]
    idcg = sum((2**r - 1) / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], rels: Mapping[str, int], k: int = 100) -> float:
    """Share of relevant (``rel > 0``) documents found in the first ``k``."""
    relevant = {d for d, r in rels.items() if r > 0}
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr_at_k(ranked: Sequence[str], rels: Mapping[str, int], k: int = 10) -> float:
    """1 / rank of the first relevant document within ``k``, else 0."""
    for i, doc in enumerate(ranked[:k], start=1):
        if rels.get(doc, 0) > 0:
            return 1.0 / i
    return 0.0


@dataclass
class ModeResult:
    """The scores of one retrieval mode."""

    mode: str
    ndcg_at_10: float
    recall_at_100: float
    mrr_at_10: float
    latency_p50_ms: float
    latency_p95_ms: float
    queries: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, rounded."""
        return {
            "mode": self.mode,
            "ndcg@10": round(self.ndcg_at_10, 4),
            "recall@100": round(self.recall_at_100, 4),
            "mrr@10": round(self.mrr_at_10, 4),
            "latency_p50_ms": round(self.latency_p50_ms, 2),
            "latency_p95_ms": round(self.latency_p95_ms, 2),
            "queries": self.queries,
        }


@dataclass
class EvalReport:
    """What :func:`evaluate` measured."""

    dataset: str
    documents: int
    results: list[ModeResult] = field(default_factory=list)
    ingest: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "dataset": self.dataset,
            "documents": self.documents,
            "ingest": self.ingest,
            "settings": self.settings,
            "results": [r.as_dict() for r in self.results],
        }

    def rows(self) -> list[list[str]]:
        """Table rows: mode, nDCG@10, Recall@100, MRR@10, p50, p95."""
        return [
            [
                r.mode,
                f"{r.ndcg_at_10:.4f}",
                f"{r.recall_at_100:.4f}",
                f"{r.mrr_at_10:.4f}",
                f"{r.latency_p50_ms:.1f}",
                f"{r.latency_p95_ms:.1f}",
            ]
            for r in self.results
        ]


def corpus_documents(dataset: BeirDataset) -> list[Document]:
    """The corpus as documents whose ids are the BEIR ids (empty documents are left out)."""
    docs = []
    for doc_id, (title, text) in dataset.corpus.items():
        if not text.strip() and not title.strip():
            continue
        body = text.strip() or title.strip()
        docs.append(
            Document(
                id=doc_id,
                source=f"beir:{dataset.name}/{doc_id}",
                title=title.strip(),
                text=body,
                content_hash=content_hash(f"{title}\x00{body}"),
            )
        )
    return docs


def evaluate(
    dataset: BeirDataset,
    *,
    index: VectorIndex,
    embedder: Embedder,
    settings: RagSettings | None = None,
    collection: str | None = None,
    modes: Sequence[Mode] = MODES,
    limit: int | None = None,
    chunker: Chunker | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    label: str = "",
) -> EvalReport:
    """Index ``dataset``'s corpus and score every judged query in each mode.

    Args:
        dataset: From :func:`load_beir`.
        index: Where to index the corpus.
        embedder: The embedding model.
        settings: Retrieval settings (defaults: the platform defaults).
        collection: Collection name; default ``eval-<dataset name>``.
        modes: Which of ``hybrid``, ``bm25``, ``vector`` to score.
        limit: Score only the first ``limit`` judged queries.
        chunker: Chunker for the corpus (default from ``settings``).
        progress: ``progress(stage, done, total)`` for ingestion and queries.
        label: Suffix for the mode names in the report (e.g. ``" (no feedback)"``).
    """
    from aiw.rag.chunking import Chunker

    settings = settings or RagSettings()  # type: ignore[call-arg]
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise InvalidInputError(f"The 'limit' parameter must be an int >= 1. Got {limit!r} instead.")
    for mode in modes:
        if mode not in MODES:
            raise InvalidInputError(f"Unknown mode {mode!r}; use {', '.join(MODES)}.")
    name = collection or "eval-" + "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in dataset.name)[:40]
    docs = corpus_documents(dataset)
    chunker = chunker or Chunker(settings.chunk_tokens, settings.chunk_overlap)
    report: IngestReport = ingest_documents(
        docs,
        collection=name,
        index=index,
        embedder=embedder,
        chunker=chunker,
        progress=progress,
        remove=[d for d in index.documents(name) if d not in dataset.corpus],
    )
    judged = [q for q in dataset.queries if q in dataset.qrels and any(r > 0 for r in dataset.qrels[q].values())]
    if limit:
        judged = judged[:limit]
    if not judged:
        raise InvalidInputError("No query of the data set has a positive relevance judgement in its qrels.")
    retriever = Retriever(index, embedder, settings)
    out = EvalReport(
        dataset=dataset.name,
        documents=len(docs),
        ingest=report.as_dict(),
        settings=settings.model_dump(include=set(RETRIEVAL_SETTINGS)),
    )
    depth = max(settings.candidates, 100)
    for mode in modes:
        ndcg, recall, mrr, latency = [], [], [], []
        for i, qid in enumerate(judged, start=1):
            started = time.perf_counter()
            result = retriever.retrieve(
                dataset.queries[qid], collection=name, mode=mode, top_k=2 * depth, candidates=depth
            )
            latency.append((time.perf_counter() - started) * 1000)
            ranked = list(dict.fromkeys(r.chunk.doc_id for r in result.chunks))
            rels = dataset.qrels[qid]
            ndcg.append(ndcg_at_k(ranked, rels, 10))
            recall.append(recall_at_k(ranked, rels, 100))
            mrr.append(mrr_at_k(ranked, rels, 10))
            if progress:
                progress(f"query:{mode}", i, len(judged))
        out.results.append(
            ModeResult(
                mode=f"{mode}{label}",
                ndcg_at_10=float(np.mean(ndcg)),
                recall_at_100=float(np.mean(recall)),
                mrr_at_10=float(np.mean(mrr)),
                latency_p50_ms=float(np.percentile(latency, 50)),
                latency_p95_ms=float(np.percentile(latency, 95)),
                queries=len(judged),
            )
        )
    return out
