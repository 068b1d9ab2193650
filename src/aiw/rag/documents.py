"""The two records of document Q&A: a loaded :class:`Document` and the :class:`Chunk` s cut from it."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_ACCESS_TAGS", "Chunk", "Document", "content_hash", "document_id"]

DEFAULT_ACCESS_TAGS: tuple[str, ...] = ("public",)
"""Access tags of a document that names none."""


def content_hash(text: str) -> str:
    """The SHA-256 (hex) of ``text`` encoded as UTF-8: a document's version."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def document_id(source: str) -> str:
    """A stable id for the document at ``source`` (its resolved path or URI): 24 hex characters."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:24]


@dataclass(frozen=True)
class Document:
    """One loaded document, its text normalised to Markdown-like lines (``#`` headings kept).

    Attributes:
        id: Stable id derived from ``source`` (:func:`document_id`).
        source: Where it came from: the resolved file path (or a URI).
        title: Its title (front matter, ``<title>``, PDF metadata, first heading or file name).
        text: The body; headings are lines starting with ``#`` .. ``######``.
        headings: Every heading in order of appearance.
        modified: Last modification time, ISO 8601 UTC.
        content_hash: SHA-256 of ``text``, title and access tags: changes when any of them does.
        access_tags: Who may read it (``public``, ``internal`` ...); a role sees a document when
            it may see at least one of its tags.
        metadata: Any other fields (front matter, sidecar), as strings.
    """

    id: str
    source: str
    title: str
    text: str
    headings: tuple[str, ...] = ()
    modified: str = ""
    content_hash: str = ""
    access_tags: tuple[str, ...] = DEFAULT_ACCESS_TAGS
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Chunk:
    """A passage of a document: what is embedded, indexed, retrieved and cited.

    Attributes:
        id: Unique and stable: ``<doc id>-<first 12 of content hash>-<index>``, so re-ingesting an
            unchanged document writes the same ids (upserts are idempotent) and a changed one
            writes new ids beside the old ones until those are deleted.
        doc_id: The document's id.
        text: The passage itself.
        index: Position in the document (0-based).
        n_chunks: How many chunks the document version has (tells a complete version from a
            partly written one).
        heading_path: The headings above the passage, outermost first (for citations).
        source: The document's source path.
        title: The document's title.
        content_hash: The document version's hash.
        access_tags: The document's access tags.
        metadata: The document's other metadata (strings).
    """

    id: str
    doc_id: str
    text: str
    index: int = 0
    n_chunks: int = 1
    heading_path: tuple[str, ...] = ()
    source: str = ""
    title: str = ""
    content_hash: str = ""
    access_tags: tuple[str, ...] = DEFAULT_ACCESS_TAGS
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def heading(self) -> str:
        """The heading path as one string (``Coverage > Flood``), empty at the top of a document."""
        return " > ".join(self.heading_path)

    @property
    def search_text(self) -> str:
        """What is embedded and full-text indexed: the title and headings, then the passage.

        The title always comes first, as BEIR does for dense models ("title + text"): it gives a
        passage cut from a long document the context of the whole.
        """
        parts = [self.title] if self.title else []
        parts.extend(h for h in self.heading_path if h and h != self.title)
        parts.append(self.text)
        return "\n".join(parts)

    def fields(self) -> dict[str, list[str]]:
        """Every filterable field and its values as strings (lists for multi-valued fields).

        These are what metadata filters compare against, on every index adapter alike.
        """
        out: dict[str, list[str]] = {k: [str(v)] for k, v in self.metadata.items()}
        out.update(
            {
                "doc_id": [self.doc_id],
                "source": [self.source],
                "title": [self.title],
                "content_hash": [self.content_hash],
                "heading": [self.heading],
                "access_tags": [str(t) for t in self.access_tags],
            }
        )
        return out

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready dict of every attribute (adapters store it; :meth:`from_record` reverses it)."""
        return {
            "id": self.id,
            "doc_id": self.doc_id,
            "text": self.text,
            "index": self.index,
            "n_chunks": self.n_chunks,
            "heading_path": list(self.heading_path),
            "source": self.source,
            "title": self.title,
            "content_hash": self.content_hash,
            "access_tags": list(self.access_tags),
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Chunk:
        """The chunk :meth:`to_record` made ``record`` from."""
        return cls(
            id=str(record["id"]),
            doc_id=str(record["doc_id"]),
            text=str(record["text"]),
            index=int(record.get("index", 0)),
            n_chunks=int(record.get("n_chunks", 1)),
            heading_path=tuple(record.get("heading_path") or ()),
            source=str(record.get("source", "")),
            title=str(record.get("title", "")),
            content_hash=str(record.get("content_hash", "")),
            access_tags=tuple(record.get("access_tags") or ()),
            metadata={str(k): str(v) for k, v in (record.get("metadata") or {}).items()},
        )
