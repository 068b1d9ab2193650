"""Split documents into chunks: by headings, then paragraphs, then sentences, then words.

Sizes are measured in the embedding model's own tokens, so a chunk never silently loses its end
to the model's truncation. Each chunk keeps the path of headings above it, which is what answers
cite (``Home policy > Exclusions > Flood``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiw.errors import InvalidInputError
from aiw.rag.documents import Chunk, Document

__all__ = ["Chunker", "Section", "sections", "split_sentences"]

TokenCounter = Callable[[Sequence[str]], list[int]]

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
# A sentence ends at . ! ? (optionally followed by a closing quote or bracket) before whitespace.
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+")


@dataclass(frozen=True)
class Section:
    """The text under one heading (``path`` holds the headings above it, outermost first)."""

    path: tuple[str, ...]
    text: str


def sections(text: str) -> list[Section]:
    """Split Markdown-like ``text`` at its ``#`` headings (fenced code blocks are not split)."""
    out: list[Section] = []
    stack: list[tuple[int, str]] = []
    body: list[str] = []
    in_fence = False

    def flush() -> None:
        content = "\n".join(body).strip()
        if content:
            out.append(Section(tuple(h for _, h in stack), content))
        body.clear()

    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line)
        if match:
            flush()
            level = len(match.group(1))
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, match.group(2).strip()))
        else:
            body.append(line)
    flush()
    return out


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` (a simple rule: end punctuation followed by whitespace)."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


@dataclass
class _Unit:
    text: str
    tokens: int
    new_paragraph: bool


class Chunker:
    """Cuts a document into chunks of at most ``chunk_tokens`` tokens with ``chunk_overlap`` overlap.

    A section that fits is one chunk. A longer one is cut into sentences (words for a sentence
    that alone is too long), packed greedily; a chunk that is at least half full ends early at a
    paragraph break rather than split the next paragraph. Consecutive chunks of one section
    share up to ``chunk_overlap`` tokens of whole sentences.

    Args:
        chunk_tokens: Most tokens per chunk (16 to 4096).
        chunk_overlap: Tokens repeated between consecutive chunks of a section (less than half
            of ``chunk_tokens``).
        count_tokens: Token counts of a batch of texts; defaults to the embedding model's tokenizer.
    """

    def __init__(
        self, chunk_tokens: int = 256, chunk_overlap: int = 32, count_tokens: TokenCounter | None = None
    ) -> None:
        if not isinstance(chunk_tokens, int) or not 16 <= chunk_tokens <= 4096:
            raise InvalidInputError(
                f"The 'chunk_tokens' parameter of Chunker must be an int in [16, 4096]. Got {chunk_tokens!r} instead."
            )
        if not isinstance(chunk_overlap, int) or not 0 <= chunk_overlap <= chunk_tokens // 2:
            raise InvalidInputError(
                f"The 'chunk_overlap' parameter of Chunker must be an int in [0, {chunk_tokens // 2}] "
                f"(half of chunk_tokens). Got {chunk_overlap!r} instead."
            )
        self.chunk_tokens = chunk_tokens
        self.chunk_overlap = chunk_overlap
        self._count = count_tokens

    def count(self, texts: Sequence[str]) -> list[int]:
        """Token counts of ``texts`` with the configured counter."""
        if self._count is None:
            from aiw.providers.embeddings import count_tokens

            self._count = count_tokens
        return list(self._count(list(texts)))

    def split(self, document: Document, *, max_tokens: int | None = None) -> list[Chunk]:
        """The chunks of ``document``, in order, with ids tied to its content hash.

        Args:
            document: A loaded document.
            max_tokens: A tighter size limit for this call (e.g. what the model's window leaves
                after the title); never above ``chunk_tokens``.
        """
        limit = min(self.chunk_tokens, max_tokens) if max_tokens else self.chunk_tokens
        limit = max(limit, 16)
        overlap = min(self.chunk_overlap, limit // 2)
        secs = sections(document.text)
        whole = self.count([s.text for s in secs])
        pieces: list[tuple[tuple[str, ...], str]] = []
        for sec, tokens in zip(secs, whole, strict=True):
            if tokens <= limit:
                pieces.append((sec.path, sec.text))
            else:
                pieces.extend((sec.path, text) for text in self._pack(self._units(sec.text, limit), limit, overlap))
        if not pieces:  # only headings: the headings themselves are the content
            pieces = [((), text) for text in self._pack(self._units(document.text, limit), limit, overlap)]
        n = len(pieces)
        version = document.content_hash[:12] or "0"
        return [
            Chunk(
                id=f"{document.id}-{version}-{i:05d}",
                doc_id=document.id,
                text=text,
                index=i,
                n_chunks=n,
                heading_path=path,
                source=document.source,
                title=document.title,
                content_hash=document.content_hash,
                access_tags=document.access_tags,
                metadata=dict(document.metadata),
            )
            for i, (path, text) in enumerate(pieces)
        ]

    def _units(self, text: str, limit: int) -> list[_Unit]:
        raw: list[tuple[str, bool]] = []
        for para in re.split(r"\n\s*\n", text):
            para = para.strip()
            if para:
                raw.extend((s, i == 0) for i, s in enumerate(split_sentences(para)))
        counts = self.count([t for t, _ in raw])
        units: list[_Unit] = []
        for (sentence, starts), tokens in zip(raw, counts, strict=True):
            if tokens <= limit:
                units.append(_Unit(sentence, tokens, starts))
            else:
                units.extend(self._words(sentence, limit, starts))
        return units

    def _words(self, sentence: str, limit: int, starts: bool) -> list[_Unit]:
        words = sentence.split()
        counts = self.count(words)
        out: list[_Unit] = []
        current: list[str] = []
        size = 0
        for word, tokens in zip(words, counts, strict=True):
            if current and size + tokens > limit:
                out.append(_Unit(" ".join(current), size, starts and not out))
                current, size = [], 0
            if tokens > limit:  # one "word" longer than a chunk (a URL, a hash): cut its characters
                step = max(1, len(word) * limit // tokens)
                out.extend(_Unit(word[i : i + step], limit, False) for i in range(0, len(word), step))
                continue
            current.append(word)
            size += tokens
        if current:
            out.append(_Unit(" ".join(current), size, starts and not out))
        return out

    @staticmethod
    def _pack(units: list[_Unit], limit: int, overlap: int) -> list[str]:
        chunks: list[list[_Unit]] = []
        current: list[_Unit] = []
        size = 0
        fresh = 0  # units in ``current`` that are not overlap from the previous chunk
        for unit in units:
            full = size + unit.tokens > limit
            early = unit.new_paragraph and fresh and size >= limit // 2 and size + unit.tokens > limit * 3 // 4
            if current and fresh and (full or early):
                chunks.append(current)
                carried: list[_Unit] = []
                kept = 0
                for prev in reversed(current):
                    if kept + prev.tokens > overlap or kept + prev.tokens + unit.tokens > limit:
                        break
                    carried.insert(0, prev)
                    kept += prev.tokens
                current, size, fresh = carried, kept, 0
            current.append(unit)
            size += unit.tokens
            fresh += 1
        if current and fresh:
            chunks.append(current)
        return [_join(chunk) for chunk in chunks]


def _join(units: list[_Unit]) -> str:
    text = ""
    for i, unit in enumerate(units):
        text += unit.text if i == 0 else ("\n\n" if unit.new_paragraph else " ") + unit.text
    return text
