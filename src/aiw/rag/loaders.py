"""Load Markdown, plain text, HTML and PDF files into :class:`~aiw.rag.documents.Document` s.

Every loader normalises the body to Markdown-like lines so that the chunker sees headings the same
way whatever the format (``# Title``, ``## Section``). Metadata comes from, in increasing priority:
the file itself (``<title>``, PDF info, first heading), a YAML front-matter block at the top of a
Markdown or text file::

    ---
    title: Home insurance policy
    access: [internal, finance]     # or "internal, finance"; "access_tags" works too
    doc_type: policy
    ---

and a sidecar file ``<name>.meta.json`` beside it (``{"access_tags": ["internal"], ...}``), which
is how access tags are given to HTML and PDF files, and how the embedding-refresh pipeline mirrors
the warehouse catalogue's tags. The front matter is never part of the text that is chunked; every
key besides the title and the access tags is kept as metadata (a ``tags`` key too: in front
matter it conventionally names topics, not who may read). Malformed front matter (not closed,
not YAML, not a mapping, bad access tags) fails the file with a message naming it, and ingestion
reports it and goes on. A document that names no access tags gets the default (``public``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from aiw.errors import InvalidInputError
from aiw.rag.documents import DEFAULT_ACCESS_TAGS, Document, content_hash, document_id

__all__ = ["SUFFIXES", "LoadFailure", "discover", "load_document", "parse_front_matter"]

_MAX_BYTES = 50 * 1024 * 1024  # larger files are refused rather than read into memory
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_ACCESS_KEYS = ("access_tags", "access", "tags_access")


@dataclass(frozen=True)
class LoadFailure:
    """A file that could not be loaded, and why (reported by ingestion, which goes on)."""

    path: str
    reason: str


# -- discovery ---------------------------------------------------------------------------------
def discover(paths: Iterable[str | os.PathLike[str]], *, root: Path | None = None) -> tuple[list[Path], list[Path]]:
    """Expand ``paths`` (files or folders, searched recursively) into supported files.

    Args:
        paths: Files and folders.
        root: When given, every path must lie inside it (paths from API callers).

    Returns:
        (files, roots): the supported files found, sorted and unique; and the resolved inputs,
        which bound what ingestion may delete as "removed".

    Raises:
        InvalidInputError: no path given, a path that does not exist, escapes ``root``, or is a
            file of an unsupported type.
    """
    from aiw.workspace import safe_join

    items = list(paths)
    if not items:
        raise InvalidInputError("Give at least one file or folder to ingest.")
    files: set[Path] = set()
    roots: list[Path] = []
    for item in items:
        path = safe_join(root, item) if root is not None else Path(item).expanduser().resolve()
        if not path.exists():
            raise InvalidInputError(f"The path {str(item)!r} does not exist.", hint="check the spelling")
        roots.append(path)
        if path.is_dir():
            for found in path.rglob("*"):
                if (
                    found.is_file()
                    and found.suffix.lower() in SUFFIXES
                    and not any(part.startswith(".") for part in found.relative_to(path).parts)
                ):
                    files.add(found.resolve())
        elif path.suffix.lower() in SUFFIXES:
            files.add(path)
        else:
            raise InvalidInputError(f"{str(item)!r} is not a supported document ({', '.join(sorted(SUFFIXES))}).")
    if root is not None:  # a symlink inside root may point outside it
        base = root.resolve()
        files = {f for f in files if f == base or base in f.parents}
    return sorted(files), roots


# -- front matter and sidecars -----------------------------------------------------------------
_FRONT_MATTER_MAX_LINES = 500  # a '---' block must close within this many lines


def parse_front_matter(text: str) -> tuple[dict[str, str], str]:
    """Split a leading YAML front-matter block (between ``---`` lines) from ``text``.

    The block must open on the first line and close with ``---`` (or ``...``). Keys are
    lower-cased; values become strings: lists are joined by ``", "``, booleans are ``true`` /
    ``false``, dates ISO 8601, nested mappings JSON, an empty value ``""`` (so an empty
    ``access:`` is refused by the access-tag check rather than read as "no restriction named").

    Returns:
        (fields, body). Without a block, ``({}, text)``; the body never holds the block.

    Raises:
        InvalidInputError: the block is not closed, is not valid YAML, or is not a mapping of
            keys to values.
    """
    import yaml  # type: ignore[import-untyped,unused-ignore]

    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].rstrip() != "---":
        return {}, text
    end = next(
        (i for i in range(1, min(len(lines), _FRONT_MATTER_MAX_LINES + 1)) if lines[i].rstrip() in ("---", "...")), None
    )
    if end is None:
        raise InvalidInputError(
            "the front matter opened by '---' on line 1 is not closed: end it with a "
            f"'---' line (within the first {_FRONT_MATTER_MAX_LINES} lines), or remove the opening '---'"
        )
    try:
        data = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" on line {mark.line + 2}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InvalidInputError(f"the front matter is not valid YAML{where}: {problem}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidInputError(
            f"the front matter must be 'key: value' lines (a YAML mapping); it is a {type(data).__name__}"
        )
    fields = {str(key).strip().lower(): _front_matter_value(value) for key, value in data.items()}
    return fields, "\n".join(lines[end + 1 :])


def _front_matter_value(value: Any) -> str:
    """One front-matter value as the string metadata keeps (see :func:`parse_front_matter`)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple | set):
        return ", ".join(s for s in (_front_matter_value(v) for v in value) if s)
    if isinstance(value, dict):
        return json.dumps(value, default=str, sort_keys=True, ensure_ascii=False)
    return str(value).strip()


def _sidecar(path: Path) -> dict[str, str]:
    side = path.with_name(path.name + ".meta.json")
    if not side.exists():
        return {}
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"The sidecar {side.name} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInputError(f"The sidecar {side.name} must hold a JSON object.")
    return {str(k).lower(): ", ".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in data.items()}


def _access_tags(fields: dict[str, str], default: Sequence[str]) -> tuple[str, ...]:
    given = [(k, fields.pop(k)) for k in _ACCESS_KEYS if k in fields]
    if not given:
        return tuple(default)
    key, raw = given[0]  # the first of _ACCESS_KEYS wins; the others are not kept as metadata
    tags = tuple(dict.fromkeys(t.strip().lower() for t in re.split(r"[,\s]+", raw) if t.strip()))
    if not tags:
        raise InvalidInputError(
            f"'{key}' names no access tags: give at least one (for example 'public') "
            f"or remove the key to get the default."
        )
    bad = [t for t in tags if not _TAG.match(t)]
    if bad:
        raise InvalidInputError(f"Invalid access tags {raw!r}: use words of letters, digits, '_', '.', ':' or '-'.")
    return tags


# -- formats -----------------------------------------------------------------------------------
def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _load_markdown(path: Path) -> tuple[str, str, dict[str, str]]:
    fields, body = parse_front_matter(_read_text(path))
    return body, fields.pop("title", ""), fields


def _load_text(path: Path) -> tuple[str, str, dict[str, str]]:
    fields, body = parse_front_matter(_read_text(path))
    title = fields.pop("title", "")
    if not title:
        first = next((ln.strip() for ln in body.splitlines() if ln.strip()), "")
        title = first if 0 < len(first) <= 120 else ""
    return body, title, fields


class _HTMLText(HTMLParser):
    """Visible text of an HTML page with headings as ``#`` lines and blocks as paragraphs."""

    _BLOCKS = frozenset(
        {
            "p",
            "div",
            "section",
            "article",
            "li",
            "ul",
            "ol",
            "table",
            "tr",
            "br",
            "blockquote",
            "pre",
            "header",
            "footer",
            "main",
            "dd",
            "dt",
            "hr",
        }
    )
    _SKIP = frozenset({"script", "style", "noscript", "template", "svg", "head"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self.meta: dict[str, str] = {}
        self._skip = 0
        self._in_title = False
        self._heading: int | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag == "meta":
            values = dict(attrs)
            name = (values.get("name") or "").lower()
            if name and values.get("content"):
                self.meta[name.removeprefix("aiw:")] = values["content"] or ""
        if tag in self._SKIP:
            self._skip += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self._heading = int(tag[1])
            self.parts.append("\n\n" + "#" * self._heading + " ")
        elif tag in self._BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif re.fullmatch(r"h[1-6]", tag):
            self._heading = None
            self.parts.append("\n\n")
        elif tag in self._BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skip:
            text = re.sub(r"\s+", " ", data)
            if self._heading is not None:
                text = text.replace("\n", " ")
            self.parts.append(text)


def _load_html(path: Path) -> tuple[str, str, dict[str, str]]:
    parser = _HTMLText()
    parser.feed(_read_text(path))
    parser.close()
    lines = [ln.strip() for ln in "".join(parser.parts).splitlines()]
    body = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    meta = {k: v for k, v in parser.meta.items() if k in (*_ACCESS_KEYS, "doc_type", "author", "description")}
    return body, re.sub(r"\s+", " ", parser.title).strip(), meta


def _load_pdf(path: Path) -> tuple[str, str, dict[str, str]]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            raise InvalidInputError("the PDF is encrypted")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
        info: Any = reader.metadata or {}
        title = str(info.get("/Title") or "").strip()
    except PdfReadError as exc:
        raise InvalidInputError(f"not a readable PDF ({exc})") from exc
    # A page break is a paragraph break; lines inside a paragraph are re-joined.
    body = "\n\n".join(p for p in pages if p)
    return body, title, {"pages": str(len(pages))}


SUFFIXES: dict[str, Callable[[Path], tuple[str, str, dict[str, str]]]] = {
    ".md": _load_markdown,
    ".markdown": _load_markdown,
    ".txt": _load_text,
    ".text": _load_text,
    ".html": _load_html,
    ".htm": _load_html,
    ".pdf": _load_pdf,
}
"""Supported file suffixes and their loaders."""


def load_document(
    path: str | os.PathLike[str], *, default_access_tags: Sequence[str] = DEFAULT_ACCESS_TAGS
) -> Document:
    """Load one file.

    Args:
        path: A supported file.
        default_access_tags: Tags for a document whose front matter and sidecar name none.

    Raises:
        InvalidInputError: unsupported type, unreadable, too large, or no text in it. The message
            names the file.
    """
    file = Path(path).expanduser().resolve()
    loader = SUFFIXES.get(file.suffix.lower())
    if loader is None:
        raise InvalidInputError(f"{file.name}: unsupported type {file.suffix or '(none)'}")
    try:
        stat = file.stat()
        if stat.st_size > _MAX_BYTES:
            raise InvalidInputError(f"{file.name}: larger than {_MAX_BYTES // 2**20} MiB")
        body, title, fields = loader(file)
        fields.update(_sidecar(file))
    except InvalidInputError as exc:
        raise InvalidInputError(f"{file}: {exc.message}") from exc
    except (OSError, ValueError, RuntimeError) as exc:  # pypdf raises assorted errors on damaged files
        raise InvalidInputError(f"{file}: cannot be read ({type(exc).__name__}: {exc})") from exc
    body = body.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not body:
        raise InvalidInputError(f"{file}: no text in it (empty, or a scanned PDF without a text layer)")
    headings = tuple(m.group(2).strip() for m in map(_HEADING.match, body.splitlines()) if m)
    title = fields.pop("title", "") or title or (headings[0] if headings else "") or file.stem
    try:
        tags = _access_tags(fields, default_access_tags)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{file}: {exc.message}") from exc
    source = str(file)
    modified = datetime.fromtimestamp(stat.st_mtime, UTC).isoformat(timespec="seconds")
    digest = content_hash("\x00".join([title, ",".join(tags), json.dumps(fields, sort_keys=True), body]))
    return Document(
        id=document_id(source),
        source=source,
        title=title,
        text=body,
        headings=headings,
        modified=modified,
        content_hash=digest,
        access_tags=tags,
        metadata=fields,
    )
