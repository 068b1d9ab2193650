"""Incremental ingestion: load, chunk, embed and index documents; skip what did not change.

Crash safety comes from versioned chunk ids (``<doc>-<hash>-<n>``). A changed document's new
chunks are written *beside* the old ones, and only when every new chunk is stored are the old
version's chunks deleted. A crash at any point leaves each document with at least one complete
version in the index, so questions keep being answered; the next run finishes the job (it treats
an incomplete version as missing and deletes stale versions of complete documents).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiw.errors import InvalidInputError
from aiw.rag.chunking import Chunker
from aiw.rag.documents import DEFAULT_ACCESS_TAGS, Chunk, Document
from aiw.rag.index import VectorIndex, validate_collection
from aiw.rag.loaders import LoadFailure, discover, load_document

if TYPE_CHECKING:
    from aiw.governance.audit import AuditLog
    from aiw.providers.embeddings import Embedder

__all__ = ["IngestReport", "Progress", "chunk_window", "ingest", "ingest_documents"]

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: stage is ``load``, ``embed`` or ``write``."""


@dataclass
class IngestReport:
    """What one ingestion run did.

    Attributes:
        collection: The collection written.
        added: Paths of documents new to the collection.
        updated: Paths of documents whose content changed (replaced).
        unchanged: How many documents were skipped by content hash.
        deleted: Paths of documents removed from disk under the given roots (deleted from the index).
        failed: Files that could not be loaded, with the reason (they were skipped).
        chunks_written: Chunks embedded and upserted.
        chunks_deleted: Chunks of old versions or removed documents deleted.
        seconds: Wall time of the run.
    """

    collection: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    deleted: list[str] = field(default_factory=list)
    failed: list[LoadFailure] = field(default_factory=list)
    chunks_written: int = 0
    chunks_deleted: int = 0
    seconds: float = 0.0

    @property
    def touched(self) -> list[str]:
        """Every document this run wrote or deleted."""
        return [*self.added, *self.updated, *self.deleted]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "collection": self.collection,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "failed": [{"path": f.path, "reason": f.reason} for f in self.failed],
            "chunks_written": self.chunks_written,
            "chunks_deleted": self.chunks_deleted,
            "seconds": round(self.seconds, 3),
        }


def chunk_window(embedder: Embedder, chunker: Chunker, document: Document) -> int | None:
    """Tokens a chunk may have so that title + headings + chunk fit the model's window."""
    inner = getattr(embedder, "inner", None)  # a cache wrapper around the model
    limit = getattr(embedder, "max_seq_length", None) or getattr(inner, "max_seq_length", None)
    if not isinstance(limit, int) or limit <= 0:
        return None
    context = chunker.count([document.title])[0] + 12  # the title, and room for a short heading path
    return max(16, limit - 2 - context)


def ingest_documents(
    documents: Sequence[Document],
    *,
    collection: str,
    index: VectorIndex,
    embedder: Embedder,
    chunker: Chunker | None = None,
    batch_size: int = 512,
    progress: Progress | None = None,
    remove: Iterable[str] = (),
    report: IngestReport | None = None,
    fail_after: int | None = None,
) -> IngestReport:
    """Index already loaded documents incrementally (the core of :func:`ingest`).

    Args:
        documents: The documents to have in the collection.
        collection: The collection name.
        index: Where chunks go.
        embedder: Embeds chunk texts (title and headings included).
        chunker: Splits documents; default 256 tokens with 32 overlap.
        batch_size: Chunks embedded and written per step. The embedder splits each step into its own
            forward-pass batches and sorts texts by length first, so large steps pad less.
        progress: Called as chunks are embedded and written.
        remove: Document ids to delete (documents gone from disk).
        report: A report to add to (``ingest`` passes the one holding load failures).
        fail_after: Testing aid: raise after this many chunk batches were written, to prove a
            crash leaves the previous index usable.
    """
    validate_collection(collection)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(
            f"The 'batch_size' parameter of ingest must be an int >= 1. Got {batch_size!r} instead."
        )
    started = time.perf_counter()
    report = report or IngestReport(collection)
    chunker = chunker or Chunker()
    stored = index.documents(collection)
    todo: list[tuple[Document, bool]] = []
    for doc in documents:
        known = stored.get(doc.id)
        if known is not None and known.complete(doc.content_hash):
            stale = [cid for h, ids in known.versions.items() if h != doc.content_hash for cid in ids]
            if stale:  # a previous run crashed after writing this version: finish its swap
                report.chunks_deleted += index.delete_chunks(collection, stale)
            report.unchanged += 1
        else:
            todo.append((doc, known is not None))

    chunks: list[Chunk] = []
    for doc, _ in todo:
        chunks.extend(chunker.split(doc, max_tokens=chunk_window(embedder, chunker, doc)))
    todo_by_id = {doc.id: (doc, existed) for doc, existed in todo}
    pending: dict[str, int] = {}
    for c in chunks:
        pending[c.doc_id] = pending.get(c.doc_id, 0) + 1
    for batch, start in enumerate(range(0, len(chunks), batch_size), start=1):
        part = chunks[start : start + batch_size]
        index.upsert(collection, part, embedder.embed([c.search_text for c in part]))
        report.chunks_written += len(part)
        if progress:
            progress("embed", min(start + batch_size, len(chunks)), len(chunks))
        if fail_after is not None and batch >= fail_after:
            raise RuntimeError(f"ingest stopped on purpose after {batch} batches (fail_after)")
        completed = []
        for c in part:
            pending[c.doc_id] -= 1
            if pending[c.doc_id] == 0:
                completed.append(c.doc_id)
        # A document whose new version is now complete: only now delete its old versions.
        for doc_id in completed:
            doc, existed = todo_by_id[doc_id]
            if existed:
                stale = [cid for h, ids in stored[doc_id].versions.items() if h != doc.content_hash for cid in ids]
                report.chunks_deleted += index.delete_chunks(collection, stale)
            (report.updated if existed else report.added).append(doc.source)
    gone = [d for d in remove if d in stored]
    if gone:
        report.chunks_deleted += index.delete_documents(collection, gone)
        report.deleted.extend(sorted(stored[d].source for d in gone))
    report.seconds = time.perf_counter() - started
    return report


def ingest(
    paths: Iterable[str | os.PathLike[str]],
    *,
    collection: str,
    index: VectorIndex,
    embedder: Embedder,
    chunker: Chunker | None = None,
    batch_size: int = 512,
    progress: Progress | None = None,
    actor: str = "system",
    audit: AuditLog | None = None,
    root: Path | None = None,
    default_access_tags: Sequence[str] = DEFAULT_ACCESS_TAGS,
    fail_after: int | None = None,
) -> IngestReport:
    """Ingest files and folders into ``collection``, incrementally.

    Unchanged documents (same content hash, complete in the index) are skipped; changed ones are
    replaced (new chunks first, then the old ones deleted); documents that were ingested from
    under one of ``paths`` and no longer exist there are deleted. A file that cannot be loaded is
    reported in :attr:`IngestReport.failed` and skipped; its previous version stays indexed.

    Args:
        paths: Files and folders (folders are searched recursively).
        collection: The collection name.
        index: The vector index.
        embedder: The embedding provider.
        chunker: The chunker (sizes in embedding tokens); default 256/32.
        batch_size: Chunks embedded and written per step (see :func:`ingest_documents`).
        progress: ``progress(stage, done, total)``.
        actor: Who runs it, for the audit log.
        audit: When given, the run is audited (``rag.ingest``, success or failure).
        root: When given, every path must be inside it (API callers).
        default_access_tags: Access tags of documents that name none.
        fail_after: Testing aid, see :func:`ingest_documents`.

    Raises:
        InvalidInputError: a path does not exist, escapes ``root`` or is unsupported.
    """
    started = time.perf_counter()
    validate_collection(collection)
    report = IngestReport(collection)
    try:
        files, roots = discover(paths, root=root)
        documents: list[Document] = []
        for i, file in enumerate(files, start=1):
            try:
                documents.append(load_document(file, default_access_tags=default_access_tags))
            except InvalidInputError as exc:
                report.failed.append(LoadFailure(str(file), exc.message))
            if progress:
                progress("load", i, len(files))
        seen = {d.id for d in documents} | {_doc_id(f.path) for f in report.failed}
        stored = index.documents(collection)
        remove = [
            doc_id
            for doc_id, info in stored.items()
            if doc_id not in seen and _under(Path(info.source), roots) and not Path(info.source).exists()
        ]
        ingest_documents(
            documents,
            collection=collection,
            index=index,
            embedder=embedder,
            chunker=chunker,
            batch_size=batch_size,
            progress=progress,
            remove=remove,
            report=report,
            fail_after=fail_after,
        )
    except Exception as exc:
        if audit is not None:
            audit.append(
                actor,
                "rag.ingest",
                f"collection:{collection}",
                outcome="failure",
                details={"error": str(exc)[:500], **_summary(report)},
            )
        raise
    report.seconds = time.perf_counter() - started
    if audit is not None:
        audit.append(actor, "rag.ingest", f"collection:{collection}", details=_summary(report))
    return report


_window = chunk_window  # the name other modules used first


def _summary(report: IngestReport) -> dict[str, Any]:
    return {
        "added": len(report.added),
        "updated": len(report.updated),
        "unchanged": report.unchanged,
        "deleted": len(report.deleted),
        "failed": [f.path for f in report.failed][:50],
        "chunks_written": report.chunks_written,
        "chunks_deleted": report.chunks_deleted,
    }


def _doc_id(path: str) -> str:
    from aiw.rag.documents import document_id

    return document_id(str(Path(path).resolve()))


def _under(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)
