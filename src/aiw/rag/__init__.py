"""Document Q&A: load and chunk documents, index them, retrieve (hybrid), answer with citations.

Stages, one module each: :mod:`~aiw.rag.loaders` and :mod:`~aiw.rag.chunking` (documents to
chunks), :mod:`~aiw.rag.index` (the ``VectorIndex`` port; adapters in :mod:`aiw.rag.adapters`),
:mod:`~aiw.rag.ingest` (incremental, crash-safe), :mod:`~aiw.rag.retrieval` (BM25 + vector, fused),
:mod:`~aiw.rag.answer` (cited answers, "I don't know", follow-ups), :mod:`~aiw.rag.evaluation`
(BEIR metrics). :class:`~aiw.rag.service.RagService` is the facade the CLI, API and dashboard use.
Backends (LanceDB, Chroma, Qdrant, the embedding model) are imported only when used.
"""

from aiw.rag.documents import Chunk, Document
from aiw.rag.index import Hit, VectorIndex
from aiw.rag.service import RagService

__all__ = ["Chunk", "Document", "Hit", "RagService", "VectorIndex"]
