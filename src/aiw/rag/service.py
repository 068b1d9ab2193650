"""The document Q&A facade used by the CLI, the API and the dashboard (no logic lives in those shells)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiw.errors import ConfigError, InvalidInputError, NotFoundError
from aiw.rag.answer import Answer, Answerer, condense
from aiw.rag.chunking import Chunker
from aiw.rag.index import Filters, VectorIndex, validate_collection
from aiw.rag.ingest import IngestReport, Progress, ingest
from aiw.rag.loaders import discover
from aiw.rag.retrieval import Mode, Retrieval, Retriever

if TYPE_CHECKING:
    from aiw.providers.embeddings import Embedder
    from aiw.providers.llm import LLM, Message
    from aiw.rag.evaluation import EvalReport
    from aiw.settings import Settings
    from aiw.workspace import Workspace

__all__ = ["AskResult", "RagService", "open_index"]


def open_index(workspace: Workspace, settings: Settings) -> VectorIndex:
    """The index named by ``settings.index.adapter`` (embedded defaults inside the workspace)."""
    from aiw._registry import resolve

    name = settings.index.adapter
    url = settings.index.url
    cls = resolve("index", name)
    if name == "lancedb":
        return cls(url or workspace.path("lancedb"))
    if name == "memory":
        return cls()
    if name == "chroma":
        if not url:
            raise ConfigError(
                "The chroma index needs a server URL",
                hint="set AIW_INDEX__URL=http://127.0.0.1:8001 (start it with 'chroma run')",
            )
        return cls(url=url)
    if name == "qdrant":
        return cls(url) if url else cls(path=workspace.root / "qdrant")
    try:  # a third-party adapter: give it the URL when it takes one
        return cls(url) if url else cls()
    except TypeError as exc:
        raise ConfigError(f"Cannot construct the index adapter {name!r}: {exc}") from exc


@dataclass
class AskResult:
    """An answer with the retrieval behind it."""

    answer: Answer
    retrieval: Retrieval

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: answer, citations, and retrieved chunks with their scores."""
        out = self.answer.as_dict()
        out["retrieved"] = [
            {
                "chunk_id": r.chunk.id,
                "doc_id": r.chunk.doc_id,
                "source": r.chunk.source,
                "title": r.chunk.title,
                "heading": r.chunk.heading,
                "text": r.chunk.text,
                "score": round(r.score, 6),
                "bm25": r.bm25,
                "cosine": r.cosine,
                "bm25_rank": r.bm25_rank,
                "vector_rank": r.vector_rank,
            }
            for r in self.retrieval.chunks
        ]
        out["timings_ms"] = {k: round(v, 2) for k, v in self.retrieval.timings_ms.items()}
        return out


class RagService:
    """Ingest documents, answer questions and evaluate retrieval over one workspace.

    Args:
        workspace: The workspace (index folder, cache, audit log).
        settings: The platform settings (index, embeddings, llm and rag sections).
        index: An index to use instead of the configured one (tests, evaluation).
        embedder: An embedder to use instead of the configured one.
        llm: An LLM to use instead of the configured one.
    """

    def __init__(
        self,
        workspace: Workspace,
        settings: Settings | None = None,
        *,
        index: VectorIndex | None = None,
        embedder: Embedder | None = None,
        llm: LLM | None = None,
    ) -> None:
        self.workspace = workspace
        self.settings = settings or workspace.settings
        self._index = index
        self._embedder = embedder
        self._llm = llm
        self._lock = threading.Lock()

    # -- collaborators, built on first use -----------------------------------------------------
    @property
    def index(self) -> VectorIndex:
        """The vector index."""
        with self._lock:
            if self._index is None:
                self._index = open_index(self.workspace, self.settings)
            return self._index

    @property
    def embedder(self) -> Embedder:
        """The embedding model (with the workspace's embedding cache)."""
        with self._lock:
            if self._embedder is None:
                from aiw.providers.embeddings import get_embedder

                self._embedder = get_embedder(self.settings.embeddings, self.workspace.path("cache"))
            return self._embedder

    @property
    def llm(self) -> LLM:
        """The answer writer (the extractive fallback unless a model is configured)."""
        with self._lock:
            if self._llm is None:
                from aiw.providers.llm import get_llm

                self._llm = get_llm(self.settings.llm, self.workspace.path("cache"))
            return self._llm

    @property
    def retriever(self) -> Retriever:
        """A retriever over the index with the rag settings."""
        return Retriever(self.index, self.embedder, self.settings.rag)

    def _collection(self, collection: str | None) -> str:
        return validate_collection(collection or self.settings.rag.collection)

    # -- ingestion -----------------------------------------------------------------------------
    def allowed_roots(self) -> list[Path]:
        """Folders API callers may ingest from (``rag.allowed_roots``, else the documents folder)."""
        roots = [Path(r).expanduser().resolve() for r in self.settings.rag.allowed_roots]
        return roots or [self.workspace.documents_dir.resolve()]

    def _confine(self, paths: Sequence[str]) -> list[str]:
        from aiw.workspace import safe_join

        roots = self.allowed_roots()
        out = []
        for raw in paths:
            if not isinstance(raw, str) or not raw.strip():
                raise InvalidInputError("Each path must be a non-empty string.")
            errors = []
            for root in roots:
                try:
                    out.append(str(safe_join(root, raw)))
                    break
                except InvalidInputError as exc:
                    errors.append(exc)
            else:
                raise InvalidInputError(
                    f"The path {raw!r} is outside the folders documents may be ingested from",
                    hint=f"use a path under {', '.join(map(str, roots))} (AIW_RAG__ALLOWED_ROOTS)",
                )
        return out

    def ingest(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        collection: str | None = None,
        actor: str = "system",
        progress: Progress | None = None,
        confined: bool = False,
    ) -> IngestReport:
        """Ingest files and folders incrementally (audited as ``rag.ingest``).

        Args:
            paths: Files and folders.
            collection: Target collection (default ``rag.collection``).
            actor: Who asks, for the audit log.
            progress: ``progress(stage, done, total)``.
            confined: Refuse paths outside :meth:`allowed_roots` (set by the API).
        """
        name = self._collection(collection)
        items: list[str] = self._confine([str(p) for p in paths]) if confined else [str(p) for p in paths]
        discover(items)  # refuse bad paths before loading the model
        s = self.settings.rag
        return ingest(
            items,
            collection=name,
            index=self.index,
            embedder=self.embedder,
            chunker=Chunker(s.chunk_tokens, min(s.chunk_overlap, s.chunk_tokens // 2)),
            progress=progress,
            actor=actor,
            audit=self.workspace.audit,
            default_access_tags=s.default_access_tags,
        )

    # -- questions -----------------------------------------------------------------------------
    def _retrieve(
        self,
        question: str,
        collection: str | None,
        top_k: int | None,
        filters: Filters | None,
        role: str | None,
        history: Sequence[Message],
        mode: Mode,
    ) -> tuple[str, Retrieval]:
        name = self._collection(collection)
        if history:  # check before spending a model call on condensing
            self._require_documents(name)
        query = condense(history, question, self.llm) if history else question.strip()
        retrieval = self.retriever.retrieve(query, collection=name, top_k=top_k, mode=mode, filters=filters, role=role)
        if not history and not retrieval.chunks:
            # Counting is a round trip to the index: only an empty retrieval needs to tell
            # "nothing this role may see matched" from "nothing there".
            self._require_documents(name)
        return name, retrieval

    def _require_documents(self, name: str) -> None:
        if self.index.count(name) == 0:
            raise NotFoundError(
                f"The collection {name!r} holds no documents",
                hint=f"ingest some first: aiw rag ingest PATH --collection {name}",
            )

    def ask(
        self,
        question: str,
        *,
        collection: str | None = None,
        top_k: int | None = None,
        filters: Filters | None = None,
        role: str | None = None,
        history: Sequence[Message] = (),
        mode: Mode = "hybrid",
    ) -> AskResult:
        """Answer ``question`` from ``collection`` with citations.

        Args:
            question: The question.
            collection: The collection (default ``rag.collection``).
            top_k: Chunks given to the answerer (default ``rag.top_k``).
            filters: Metadata filters.
            role: The caller's role: only documents it may read are used (None: unrestricted).
            history: Prior turns (``role``/``content``); the question is condensed with them.
            mode: ``hybrid``, ``bm25`` or ``vector``.

        Raises:
            NotFoundError: the collection is empty or does not exist.
        """
        _, retrieval = self._retrieve(question, collection, top_k, filters, role, history, mode)
        answer = Answerer(self.llm, self.settings.rag).answer(question, retrieval, history)
        return AskResult(answer, retrieval)

    def ask_stream(
        self,
        question: str,
        *,
        collection: str | None = None,
        top_k: int | None = None,
        filters: Filters | None = None,
        role: str | None = None,
        history: Sequence[Message] = (),
        mode: Mode = "hybrid",
    ) -> Iterator[str | AskResult]:
        """Like :meth:`ask`, yielding the answer's text in pieces and the :class:`AskResult` last.

        Retrieval happens before the first piece, so errors (empty collection, bad input) raise
        before anything is yielded.
        """
        _, retrieval = self._retrieve(question, collection, top_k, filters, role, history, mode)

        def pieces() -> Iterator[str | AskResult]:
            for item in Answerer(self.llm, self.settings.rag).stream(question, retrieval, history):
                yield item if isinstance(item, str) else AskResult(item, retrieval)

        return pieces()

    # -- inventory and evaluation ------------------------------------------------------------------
    def collections(self) -> list[dict[str, Any]]:
        """Every collection with its document and chunk counts."""
        return [
            {"collection": name, "documents": len(self.index.documents(name)), "chunks": self.index.count(name)}
            for name in self.index.collections()
        ]

    def eval(
        self,
        path: str | os.PathLike[str],
        *,
        limit: int | None = None,
        collection: str | None = None,
        progress: Progress | None = None,
    ) -> EvalReport:
        """Evaluate retrieval on a BEIR folder (BM25, vector and hybrid); see :mod:`aiw.rag.evaluation`."""
        from aiw.rag.evaluation import evaluate, load_beir

        dataset = load_beir(Path(path))
        s = self.settings.rag
        return evaluate(
            dataset,
            index=self.index,
            embedder=self.embedder,
            settings=s,
            collection=collection,
            limit=limit,
            chunker=Chunker(s.chunk_tokens, min(s.chunk_overlap, s.chunk_tokens // 2)),
            progress=progress,
        )
