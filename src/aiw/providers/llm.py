"""Large language models: the :class:`LLM` port, the result cache and :func:`get_llm`.

Adapters live in :mod:`aiw.providers.adapters` and are named in ``aiw._registry.BUILTIN["llm"]``:
``extractive`` (no model, the default), ``openai`` (any OpenAI-compatible chat endpoint) and
``transformers`` (a local causal LM folder). Each adapter's constructor takes the
:class:`~aiw.settings.LLMSettings` section.

:class:`CachedLLM` keeps every answer in a SQLite file keyed by the SHA-256 of (model, system,
prompt or messages, temperature, max_tokens), so asking the same thing twice costs one lookup,
in any process sharing the cache folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from aiw.errors import ConfigError, InvalidInputError
from aiw.settings import LLMSettings

__all__ = ["LLM", "CachedLLM", "Message", "check_messages", "check_prompts", "get_llm"]

Message = dict[str, str]
"""One chat message: ``{"role": "system" | "user" | "assistant", "content": "..."}``."""

_ROLES = frozenset({"system", "user", "assistant", "tool", "developer"})


@runtime_checkable
class LLM(Protocol):
    """A text generator. The docstring is the behavioural spec every adapter follows.

    Attributes:
        model_id: Stable name of the model behind the adapter; part of every cache key.

    - ``complete(prompts, system=..., temperature=..., max_tokens=...)`` returns exactly one
      answer per prompt, in the order of ``prompts``; adapters batch or run requests
      concurrently inside. ``None`` for ``temperature``/``max_tokens`` means the adapter's
      configured default (temperature 0 unless configured: deterministic answers). If any
      prompt fails after the adapter's retries, the call raises and returns nothing.
    - ``chat(messages, ...)`` answers a conversation (OpenAI-style ``role``/``content`` dicts)
      with the assistant's next message.
    - ``stream_chat(messages, ...)`` yields that answer in chunks (tokens or segments) whose
      concatenation equals what ``chat`` would return.
    - ``generative`` is ``False`` for the extractive fallback, whose answers are sentences taken
      from the input rather than new text; callers that need real generation (translation,
      free completion) refuse to run on it and say how to configure a model.

    Errors: :class:`~aiw.errors.InvalidInputError` for malformed prompts or messages,
    :class:`~aiw.errors.TransientBackendError` when the backend is unavailable after retries
    (timeouts, 429, 5xx), :class:`~aiw.errors.PermanentBackendError` when retrying cannot help
    (bad key, unknown model).
    """

    model_id: str

    def complete(
        self,
        prompts: Sequence[str],
        *,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> list[str]:
        """One answer per prompt, in order."""
        ...

    def chat(self, messages: list[Message], *, temperature: float | None = None, max_tokens: int | None = None) -> str:
        """The assistant's answer to ``messages``."""
        ...

    def stream_chat(
        self, messages: list[Message], *, temperature: float | None = None, max_tokens: int | None = None
    ) -> Iterator[str]:
        """The assistant's answer to ``messages``, in chunks."""
        ...

    @property
    def generative(self) -> bool:
        """Whether the adapter writes new text (``False`` for the extractive fallback)."""
        ...


def check_prompts(prompts: Sequence[str], owner: str) -> list[str]:
    """``prompts`` as a list, or InvalidInputError naming the first bad item."""
    if isinstance(prompts, str):
        raise InvalidInputError(f"{owner}.complete expects a sequence of prompts, not one string; wrap it in a list.")
    items = list(prompts)
    for i, prompt in enumerate(items):
        if not isinstance(prompt, str):
            raise InvalidInputError(f"{owner}.complete expects strings; prompt {i} is {type(prompt).__name__}.")
    return items


def check_messages(messages: Sequence[Message], owner: str) -> list[Message]:
    """``messages`` as a list of role/content dicts, or InvalidInputError saying what is wrong."""
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence) or not messages:
        raise InvalidInputError(
            f'{owner} expects a non-empty list of messages like [{{"role": "user", "content": "..."}}].'
        )
    out: list[Message] = []
    for i, message in enumerate(messages):
        if (
            not isinstance(message, dict)
            or not isinstance(message.get("content"), str)
            or message.get("role") not in _ROLES
        ):
            raise InvalidInputError(
                f"{owner}: message {i} must be a dict with 'role' in "
                f"{sorted(_ROLES)} and a string 'content'. Got {message!r:.120}."
            )
        out.append({"role": message["role"], "content": message["content"]})
    return out


class CachedLLM:
    """An :class:`LLM` that answers repeated requests from a SQLite cache, across processes.

    The key is the SHA-256 of ``(model_id, kind, system, prompt or messages, temperature,
    max_tokens)`` with ``None`` parameters replaced by this wrapper's defaults first, so that
    "default" and "explicitly the default" share an entry while a different temperature gets
    its own. The file uses WAL journaling and one ``INSERT OR REPLACE`` per answer, so several
    processes may share it.

    Args:
        inner: The model that answers cache misses.
        cache_dir: Folder of the cache file ``llm.sqlite`` (created when missing).
        temperature: Temperature used when a call passes ``None`` (default 0: deterministic).
        max_tokens: Most tokens used when a call passes ``None``.
    """

    FILENAME = "llm.sqlite"

    def __init__(self, inner: LLM, cache_dir: Path | str, *, temperature: float = 0.0, max_tokens: int = 512) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.cache_dir = Path(cache_dir)
        self.path = self.cache_dir / self.FILENAME
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self.hits = 0
        """Answers served from the cache since this object was made."""
        self.misses = 0
        """Answers asked of the inner model since this object was made."""

    @property
    def generative(self) -> bool:
        """Whether the inner model writes new text."""
        return bool(self.inner.generative)

    def __getattr__(self, name: str) -> Any:
        # Adapter-specific helpers (e.g. ExtractiveLLM.summarize) stay reachable through the cache.
        if name.startswith("_") or name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    # -- storage ---------------------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():  # never reuse a connection across fork
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, model_id TEXT NOT NULL, "
                "answer TEXT NOT NULL, created_at REAL NOT NULL) "
                "WITHOUT ROWID"
            )
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def _get(self, keys: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        with self._lock:
            conn = self._connection()
            for start in range(0, len(keys), 900):
                chunk = list(keys[start : start + 900])
                marks = ",".join("?" * len(chunk))
                found.update(conn.execute(f"SELECT key, answer FROM answers WHERE key IN ({marks})", chunk))
        return found

    def _put(self, key: str, answer: str) -> None:
        with self._lock:
            self._connection().execute(
                "INSERT OR REPLACE INTO answers (key, model_id, answer, created_at) VALUES (?, ?, ?, ?)",
                (key, self.model_id, answer, time.time()),
            )

    def _params(self, temperature: float | None, max_tokens: int | None) -> tuple[float, int]:
        return (
            self.temperature if temperature is None else float(temperature),
            self.max_tokens if max_tokens is None else int(max_tokens),
        )

    def key(self, kind: str, payload: Any, temperature: float, max_tokens: int, system: str | None = None) -> str:
        """The cache key of one request (hex SHA-256)."""
        blob = json.dumps(
            [self.model_id, kind, system, payload, temperature, max_tokens], ensure_ascii=False, separators=(",", ":")
        )
        return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()

    # -- the port ----------------------------------------------------------------------------------
    def complete(
        self,
        prompts: Sequence[str],
        *,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> list[str]:
        """One answer per prompt, in order; only uncached distinct prompts reach the model."""
        items = check_prompts(prompts, type(self).__name__)
        temp, tokens = self._params(temperature, max_tokens)
        keys = [self.key("complete", p, temp, tokens, system) for p in items]
        found = self._get(sorted(set(keys)))
        todo: dict[str, str] = {}
        for key, prompt in zip(keys, items, strict=True):
            if key not in found:
                todo.setdefault(key, prompt)
        self.hits += sum(1 for key in keys if key in found)
        if todo:
            answers = self.inner.complete(list(todo.values()), system=system, temperature=temp, max_tokens=tokens)
            if len(answers) != len(todo):
                raise InvalidInputError(f"{self.inner!r} returned {len(answers)} answers for {len(todo)} prompts")
            self.misses += len(todo)
            for key, answer in zip(todo, answers, strict=True):
                self._put(key, answer)
                found[key] = answer
        return [found[key] for key in keys]

    def chat(self, messages: list[Message], *, temperature: float | None = None, max_tokens: int | None = None) -> str:
        """The answer to ``messages``, from the cache when this conversation was answered before."""
        msgs = check_messages(messages, f"{type(self).__name__}.chat")
        temp, tokens = self._params(temperature, max_tokens)
        key = self.key("chat", msgs, temp, tokens)
        cached = self._get([key]).get(key)
        if cached is not None:
            self.hits += 1
            return cached
        answer = self.inner.chat(msgs, temperature=temp, max_tokens=tokens)
        self.misses += 1
        self._put(key, answer)
        return answer

    def stream_chat(
        self, messages: list[Message], *, temperature: float | None = None, max_tokens: int | None = None
    ) -> Iterator[str]:
        """Stream the answer; a cached answer comes as one chunk, a new one is stored once complete."""
        msgs = check_messages(messages, f"{type(self).__name__}.stream_chat")
        temp, tokens = self._params(temperature, max_tokens)
        key = self.key("chat", msgs, temp, tokens)  # same entry as chat(): same answer either way
        cached = self._get([key]).get(key)
        if cached is not None:
            self.hits += 1
            yield cached
            return
        parts: list[str] = []
        for chunk in self.inner.stream_chat(msgs, temperature=temp, max_tokens=tokens):
            parts.append(chunk)
            yield chunk
        # Only a stream read to its end is stored: an abandoned one would cache a truncated answer.
        self.misses += 1
        self._put(key, "".join(parts))

    def __len__(self) -> int:
        """Answers stored in the cache file (all models)."""
        with self._lock:
            return int(self._connection().execute("SELECT count(*) FROM answers").fetchone()[0])

    def close(self) -> None:
        """Close this process's cache connection and the inner model's resources, if any."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
        inner_close = getattr(self.inner, "close", None)
        if callable(inner_close):
            inner_close()

    def __repr__(self) -> str:
        return f"CachedLLM({self.inner!r}, cache_dir={str(self.cache_dir)!r})"


def get_llm(settings: LLMSettings | None = None, cache_dir: Path | str | None = None) -> LLM:
    """The configured LLM: ``settings.adapter`` resolved by name, behind the cache when enabled.

    The extractive fallback is never wrapped: computing its answer is cheaper than a cache lookup.

    Args:
        settings: The llm section; defaults to the extractive fallback.
        cache_dir: Folder for the answer cache (usually ``Workspace.path("cache")``).

    Raises:
        ConfigError: the adapter name is unknown, or the adapter's settings are incomplete.
    """
    from aiw._registry import resolve

    settings = settings or LLMSettings()  # type: ignore[call-arg]
    cls = resolve("llm", settings.adapter)
    if not callable(cls):
        raise ConfigError(
            f"The llm adapter {settings.adapter!r} does not name a class",
            hint="set AIW_LLM__ADAPTER to extractive, openai, transformers or module:Class",
        )
    llm: LLM = cls(settings)
    if settings.cache and cache_dir is not None and llm.generative:
        llm = CachedLLM(llm, cache_dir, temperature=settings.temperature, max_tokens=settings.max_tokens)
    return llm
