"""The ``ai_*`` SQL functions: vectorised (Arrow) DuckDB UDFs over the shared model providers.

===========================================  ==============================================
SQL                                          what it returns
===========================================  ==============================================
``ai_sentiment(text)``                       DOUBLE in [-1, 1] (VADER compound)
``ai_classify(text, labels)``                the best label (VARCHAR) by embedding similarity;
                                             a label may read ``'label: description'``
``ai_classify(text, labels, descriptions)``  the same with one description per label
``ai_embed(text)``                           FLOAT[384], L2-normalised
``ai_similarity(a, b)``                      DOUBLE, cosine of the two texts' embeddings
``ai_summarize(text)``                       VARCHAR: extractive, or the LLM when configured
``ai_extract_answer(text, question)``        VARCHAR: the passage (or LLM answer) that answers
``ai_redact(text)``                          VARCHAR with [EMAIL] [PHONE] [CARD] [NATIONAL_ID] [IBAN]
``ai_complete(prompt)``                      VARCHAR (needs a generative LLM)
``ai_filter(text, condition)``               BOOLEAN (needs a generative LLM)
``ai_translate(text, to_lang)``              VARCHAR (needs a generative LLM)
===========================================  ==============================================

Every function takes NULL to NULL, models each distinct input of a batch once, and never loses the
rest of a query to one bad row: a row whose model call fails becomes NULL and a warning is
recorded in :class:`AIContext` (and logged). Configuration errors (no generative LLM for
``ai_complete``) fail the query with a message that says how to fix them.

Models load lazily: registering the functions costs milliseconds; the embedding model or the LLM
is created on the first call that needs it.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from aiw.errors import AiwError, ConfigError, PolicyViolation

if TYPE_CHECKING:
    import numpy as np

    from aiw.settings import EmbeddingSettings, LLMSettings

__all__ = [
    "FUNCTION_NAMES",
    "LLM_HELP",
    "AIContext",
    "RowWarning",
    "bind_udf",
    "classify",
    "complete",
    "embed",
    "embedding_dimension",
    "extract_answer",
    "filter_rows",
    "register_ai_functions",
    "sentiment",
    "similarity",
    "summarize",
    "translate",
]

log = logging.getLogger("aiw.sql.functions")

T = TypeVar("T")

LLM_HELP = (
    "set AIW_LLM__ADAPTER=openai with AIW_LLM__BASE_URL and AIW_LLM__MODEL (any OpenAI-compatible "
    "endpoint), or AIW_LLM__ADAPTER=transformers with AIW_LLM__MODEL_PATH (a local causal LM)"
)
"""How to configure a generative LLM, quoted by every error that needs one."""

FUNCTION_NAMES = (
    "ai_sentiment",
    "ai_classify",
    "ai_embed",
    "ai_similarity",
    "ai_summarize",
    "ai_extract_answer",
    "ai_redact",
    "ai_complete",
    "ai_filter",
    "ai_translate",
)
"""The scalar functions bound into every warehouse connection."""

EMBEDDING_FUNCTION_NAMES = ("ai_classify", "ai_embed", "ai_similarity")
"""The functions that run the embedding model (which keeps every core busy on its own)."""

_FATAL = (ConfigError, PolicyViolation)
"""Errors that are about the setup, not a row: they fail the query instead of nulling a row."""

_MAX_FAILED_ROWS_IN_A_ROW = 5
"""After this many consecutive failed rows (and none succeeded) the backend is down, not a row bad."""


@dataclass(frozen=True)
class RowWarning:
    """A row that became NULL because its model call failed."""

    seq: int
    function: str
    message: str


class AIContext:
    """The lazily created model providers behind the ``ai_*`` functions, and their warnings.

    One context serves every connection to one warehouse (DuckDB shares registered functions
    across the connections of a database), so it is thread-safe.

    Args:
        embeddings: The embedding settings section.
        llm: The LLM settings section.
        cache_dir: Where providers keep their persistent caches.
        dimension: The embedding width ``ai_embed`` declares; read from the model folder when
            ``None`` (384 for the bundled all-MiniLM-L6-v2).
    """

    def __init__(
        self, embeddings: EmbeddingSettings, llm: LLMSettings, cache_dir: Path, dimension: int | None = None
    ) -> None:
        self._lock = threading.RLock()
        self._embedder: Any = None
        self._llm: Any = None
        self._warnings: deque[RowWarning] = deque(maxlen=1000)
        self._seq = 0
        self.last_error: AiwError | None = None
        self.embeddings = embeddings
        self.llm_settings = llm
        self.cache_dir = Path(cache_dir)
        self.dimension = dimension or embedding_dimension(embeddings)

    def update(self, embeddings: EmbeddingSettings, llm: LLMSettings, cache_dir: Path) -> None:
        """Point the context at new settings; providers whose settings changed are re-created."""
        with self._lock:
            if embeddings != self.embeddings or Path(cache_dir) != self.cache_dir:
                self._embedder = None
            if llm != self.llm_settings or Path(cache_dir) != self.cache_dir:
                self._llm = None
            self.embeddings, self.llm_settings, self.cache_dir = embeddings, llm, Path(cache_dir)

    # -- providers -------------------------------------------------------------------------
    @property
    def embedder(self) -> Any:
        """The embedding provider, created on first use."""
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    from aiw.providers.embeddings import get_embedder

                    try:
                        emb = get_embedder(self.embeddings, self.cache_dir)
                    except _FATAL as exc:
                        raise self.fatal(exc) from None
                    if int(emb.dimension) != self.dimension:
                        raise self.fatal(
                            ConfigError(
                                f"The embedding model {emb.model_id} makes {emb.dimension}-wide vectors but "
                                f"ai_embed was declared FLOAT[{self.dimension}]",
                                hint="reopen the warehouse connection after changing AIW_EMBEDDINGS__MODEL_PATH",
                            )
                        )
                    self._embedder = emb
        return self._embedder

    @property
    def llm(self) -> Any:
        """The LLM provider (the extractive fallback unless one is configured), created on first use."""
        if self._llm is None:
            with self._lock:
                if self._llm is None:
                    from aiw.providers.llm import get_llm

                    try:
                        self._llm = get_llm(self.llm_settings, self.cache_dir)
                    except _FATAL as exc:
                        raise self.fatal(exc) from None
        return self._llm

    def generative_llm(self, function: str) -> Any:
        """The LLM, or a :class:`ConfigError` that says how to configure one."""
        llm = self.llm
        if not getattr(llm, "generative", False):
            raise self.fatal(
                ConfigError(
                    f"{function} needs a generative LLM, but the configured LLM adapter "
                    f"({self.llm_settings.adapter!r}) only extracts sentences",
                    hint=LLM_HELP,
                )
            )
        return llm

    # -- warnings --------------------------------------------------------------------------
    @property
    def seq(self) -> int:
        """The sequence number of the latest warning (0 when none yet)."""
        return self._seq

    def warn(self, function: str, message: str) -> None:
        """Record (and log) that a row of ``function`` became NULL because of ``message``."""
        with self._lock:
            self._seq += 1
            self._warnings.append(RowWarning(self._seq, function, message))
        log.info("%s: a row became NULL: %s", function, message)

    def warnings_since(self, seq: int) -> list[RowWarning]:
        """The warnings recorded after ``seq`` (the last 1,000 are kept)."""
        with self._lock:
            return [w for w in self._warnings if w.seq > seq]

    def fatal(self, exc: AiwError) -> AiwError:
        """Remember ``exc`` as the error that failed the latest query, and return it.

        DuckDB turns a UDF's exception into its own error type; the query runner re-raises this
        one, so callers see a :class:`ConfigError` rather than a DuckDB error.
        """
        self.last_error = exc
        return exc


def embedding_dimension(settings: EmbeddingSettings) -> int:
    """The width of the configured embedding model, read from its folder without loading it."""
    import json

    if not settings.model_path:
        return 384  # the bundled all-MiniLM-L6-v2
    root = Path(settings.model_path)
    for name, key in (("1_Pooling/config.json", "word_embedding_dimension"), ("config.json", "hidden_size")):
        try:
            value = json.loads((root / name).read_text()).get(key)
        except (OSError, ValueError):
            continue
        if isinstance(value, int) and value > 0:
            return value
    return 384


# -- the functions over Python lists (used by the UDFs, callable directly) ----------------------
def _guarded(ctx: AIContext, function: str, items: Sequence[T], batch: Callable[[list[T]], Sequence[Any]]) -> list[Any]:
    """``batch(items)``; when it fails, item by item so that only the bad items become None."""
    if not items:
        return []
    try:
        out = list(batch(list(items)))
        if len(out) != len(items):
            raise RuntimeError(f"{function} returned {len(out)} results for {len(items)} inputs")
        return out
    except _FATAL as exc:
        raise ctx.fatal(exc) from None
    except Exception as exc:
        if len(items) == 1:
            ctx.warn(function, f"{type(exc).__name__}: {exc}")
            return [None]
        log.info("%s: batch of %d failed (%s); retrying row by row", function, len(items), exc)
    results: list[Any] = []
    failed_run, succeeded = 0, False
    for item in items:
        try:
            results.append(next(iter(batch([item]))))
            failed_run, succeeded = 0, True
        except _FATAL as exc:
            raise ctx.fatal(exc) from None
        except Exception as exc:
            failed_run += 1
            if failed_run >= _MAX_FAILED_ROWS_IN_A_ROW and not succeeded:
                # every row fails: the backend is down, not one row bad
                if isinstance(exc, AiwError):
                    raise ctx.fatal(exc) from None
                raise
            ctx.warn(function, f"{type(exc).__name__}: {exc}")
            results.append(None)
    return results


def _unique(values: Sequence[T | None]) -> tuple[list[T], list[int]]:
    """Distinct non-null values and, per input, the index of its value (-1 for None)."""
    index: dict[Any, int] = {}
    uniques: list[T] = []
    codes: list[int] = []
    for v in values:
        if v is None:
            codes.append(-1)
            continue
        i = index.get(v)
        if i is None:
            i = index[v] = len(uniques)
            uniques.append(v)
        codes.append(i)
    return uniques, codes


def _spread(results: Sequence[Any], codes: Sequence[int]) -> list[Any]:
    return [None if c < 0 else results[c] for c in codes]


def sentiment(ctx: AIContext, texts: Sequence[str | None]) -> list[float | None]:
    """VADER compound scores in [-1, 1] (identical to vaderSentiment's); ``None`` for ``None``.

    Safe to call from several threads at once, as DuckDB does with its 2,048-row chunks: each
    batch is split between the provider's worker processes, and the wait for them releases the
    GIL, so that every core scores (see :func:`aiw.providers.sentiment.sentiment_scores` with
    ``threaded=True``).
    """
    uniques, codes = _unique(texts)
    return _spread(_sentiment_distinct(ctx, uniques), codes)


def _sentiment_distinct(ctx: AIContext, texts: list[str]) -> list[float | None]:
    from aiw.providers.sentiment import sentiment_scores

    return _guarded(ctx, "ai_sentiment", texts, lambda batch: sentiment_scores(batch, threaded=True).tolist())


def _embed_unique(ctx: AIContext, function: str, texts: list[str]) -> dict[str, np.ndarray]:
    """Embeddings of distinct texts by text; texts whose embedding failed are missing."""
    vectors = _guarded(ctx, function, texts, lambda batch: list(ctx.embedder.embed(batch)))
    return {t: v for t, v in zip(texts, vectors, strict=True) if v is not None}


def embed(ctx: AIContext, texts: Sequence[str | None]) -> list[np.ndarray | None]:
    """L2-normalised float32 embeddings; ``None`` for ``None`` or a failed row."""
    uniques, codes = _unique(texts)
    by_text = _embed_unique(ctx, "ai_embed", uniques)
    return _spread([by_text.get(t) for t in uniques], codes)


def similarity(ctx: AIContext, a: Sequence[str | None], b: Sequence[str | None]) -> list[float | None]:
    """Cosine similarity of the embeddings of ``a[i]`` and ``b[i]``."""
    import numpy as np

    uniques, _ = _unique([*a, *b])
    by_text = _embed_unique(ctx, "ai_similarity", uniques)
    out: list[float | None] = []
    for x, y in zip(a, b, strict=True):
        ex = by_text.get(x) if x is not None else None
        ey = by_text.get(y) if y is not None else None
        out.append(None if ex is None or ey is None else float(np.clip(np.dot(ex, ey), -1.0, 1.0)))
    return out


_LABEL_DESC = re.compile(r"^\s*([^:]+?)\s*:\s*(.+?)\s*$", re.DOTALL)


def _label_phrases(labels: Sequence[str | None], descriptions: Sequence[str | None] | None) -> list[tuple[str, str]]:
    """(label returned, phrase embedded) for each usable label of one row."""
    out: list[tuple[str, str]] = []
    for i, label in enumerate(labels):
        if label is None or not label.strip():
            continue
        desc = descriptions[i] if descriptions is not None and i < len(descriptions) else None
        if desc:
            out.append((label.strip(), f"{label.strip()}: {desc.strip()}"))
            continue
        m = _LABEL_DESC.match(label)
        if m:
            out.append((m.group(1), f"{m.group(1)}: {m.group(2)}"))
        else:
            out.append((label.strip(), label.strip()))
    return out


def classify(
    ctx: AIContext,
    texts: Sequence[str | None],
    labels: Sequence[Sequence[str | None] | None],
    descriptions: Sequence[Sequence[str | None] | None] | None = None,
) -> list[str | None]:
    """Zero-shot classification: per row, the label whose phrase is nearest the text's embedding.

    A label may read ``'label: description'`` (the description is embedded, the label returned),
    or ``descriptions`` gives one description per label. A row with no usable label is NULL (and
    warned about); a row with one label gets that label.
    """
    import numpy as np

    per_row: list[list[tuple[str, str]] | None] = []
    for i, (text, row_labels) in enumerate(zip(texts, labels, strict=True)):
        if text is None or row_labels is None:
            per_row.append(None)
            continue
        row_desc = descriptions[i] if descriptions is not None else None
        if descriptions is not None and row_desc is not None and len(row_desc) != len(row_labels):
            ctx.warn("ai_classify", f"{len(row_labels)} labels but {len(row_desc)} descriptions")
            per_row.append(None)
            continue
        phrases = _label_phrases(row_labels, row_desc)
        if not phrases:
            ctx.warn("ai_classify", "the labels list is empty")
        per_row.append(phrases or None)
    wanted = [t for t, p in zip(texts, per_row, strict=True) if p is not None and t is not None]
    wanted += [phrase for p in per_row if p for _, phrase in p]
    uniques, _ = _unique(wanted)
    by_text = _embed_unique(ctx, "ai_classify", uniques)
    out: list[str | None] = []
    for text, row_phrases in zip(texts, per_row, strict=True):
        if row_phrases is None or text is None or text not in by_text:
            out.append(None)
            continue
        usable = [(label, by_text[p]) for label, p in row_phrases if p in by_text]
        if not usable:
            out.append(None)
            continue
        scores = np.stack([v for _, v in usable]) @ by_text[text]
        out.append(usable[int(np.argmax(scores))][0])
    return out


def _llm_kwargs(ctx: AIContext) -> dict[str, Any]:
    return {"temperature": ctx.llm_settings.temperature, "max_tokens": ctx.llm_settings.max_tokens}


def _llm_rows(ctx: AIContext, function: str, prompts: Sequence[str | None], system: str | None) -> list[str | None]:
    llm = ctx.generative_llm(function)
    uniques, codes = _unique(prompts)
    if not uniques:
        return [None] * len(prompts)
    kwargs = _llm_kwargs(ctx)
    if system:
        kwargs["system"] = system
    answers = _guarded(ctx, function, uniques, lambda batch: llm.complete(batch, **kwargs))
    return _spread(answers, codes)


def complete(ctx: AIContext, prompts: Sequence[str | None]) -> list[str | None]:
    """The LLM's completion of each prompt (needs a generative LLM)."""
    if all(p is None for p in prompts):
        return [None] * len(prompts)
    return _llm_rows(ctx, "ai_complete", prompts, None)


_FILTER_SYSTEM = (
    "You judge whether a text satisfies a condition. Reply with exactly one word: "
    "TRUE if it does, FALSE if it does not."
)
_TRUE = re.compile(r"^\W*(true|yes|y)\b", re.IGNORECASE)
_FALSE = re.compile(r"^\W*(false|no|n)\b", re.IGNORECASE)


def filter_rows(ctx: AIContext, texts: Sequence[str | None], conditions: Sequence[str | None]) -> list[bool | None]:
    """Whether each text satisfies its condition, as judged by the LLM (needs a generative LLM).

    An answer that is neither true/yes nor false/no makes the row NULL (with a warning).
    """
    prompts = [
        None if t is None or c is None else f"Condition: {c}\n\nText:\n{t}\n\nDoes the text satisfy the condition?"
        for t, c in zip(texts, conditions, strict=True)
    ]
    if all(p is None for p in prompts):
        return [None] * len(prompts)
    answers = _llm_rows(ctx, "ai_filter", prompts, _FILTER_SYSTEM)
    out: list[bool | None] = []
    for a in answers:
        if a is None:
            out.append(None)
        elif _TRUE.match(a):
            out.append(True)
        elif _FALSE.match(a):
            out.append(False)
        else:
            ctx.warn("ai_filter", f"the LLM answered {a[:80]!r}, neither TRUE nor FALSE")
            out.append(None)
    return out


_TRANSLATE_SYSTEM = "You are a translator. Reply with the translation only, no notes or quotes."


def translate(ctx: AIContext, texts: Sequence[str | None], languages: Sequence[str | None]) -> list[str | None]:
    """Each text translated into its target language (needs a generative LLM)."""
    prompts = [
        None if t is None or lang is None else f"Translate the following text into {lang}.\n\n{t}"
        for t, lang in zip(texts, languages, strict=True)
    ]
    if all(p is None for p in prompts):
        return [None] * len(prompts)
    return [None if a is None else a.strip() for a in _llm_rows(ctx, "ai_translate", prompts, _TRANSLATE_SYSTEM)]


_SUMMARY_SYSTEM = "You write short, factual summaries. Reply with the summary only."


def summarize(ctx: AIContext, texts: Sequence[str | None], max_sentences: int = 3) -> list[str | None]:
    """A summary of each text: the LLM's when one is configured, else its key sentences."""
    if all(t is None for t in texts):
        return [None] * len(texts)
    llm = ctx.llm
    if getattr(llm, "generative", False):
        prompts = [
            None if t is None else f"Summarize the following text in at most {max_sentences} sentences.\n\n{t}"
            for t in texts
        ]
        return [None if a is None else a.strip() for a in _llm_rows(ctx, "ai_summarize", prompts, _SUMMARY_SYSTEM)]
    uniques, codes = _unique(texts)
    out = _guarded(
        ctx, "ai_summarize", uniques, lambda batch: [llm.summarize(t, max_sentences=max_sentences) for t in batch]
    )
    return _spread(out, codes)


_ANSWER_SYSTEM = (
    "Answer the question using only the given text, in as few words as possible. If the text "
    "does not contain the answer, reply with exactly NONE."
)


def _first_sentence(found: Any) -> str | None:
    if isinstance(found, str):
        return found
    if not found:
        return None
    top = found[0]
    if isinstance(top, str):
        return top
    if isinstance(top, tuple | list) and top:
        return next((x for x in top if isinstance(x, str)), None)
    text = getattr(top, "text", None)
    return text if isinstance(text, str) else None


def extract_answer(ctx: AIContext, texts: Sequence[str | None], questions: Sequence[str | None]) -> list[str | None]:
    """The answer to each question from its text: the LLM's, or the best-matching sentence."""
    pairs = [None if t is None or q is None else (t, q) for t, q in zip(texts, questions, strict=True)]
    if all(p is None for p in pairs):
        return [None] * len(pairs)
    llm = ctx.llm
    if getattr(llm, "generative", False):
        prompts = [None if p is None else f"Text:\n{p[0]}\n\nQuestion: {p[1]}" for p in pairs]
        answers = _llm_rows(ctx, "ai_extract_answer", prompts, _ANSWER_SYSTEM)
        return [None if a is None or a.strip().upper().rstrip(".") == "NONE" else a.strip() for a in answers]
    uniques, codes = _unique(pairs)
    out = _guarded(
        ctx,
        "ai_extract_answer",
        uniques,
        lambda batch: [_first_sentence(llm.best_sentences(t, q, k=1)) for t, q in batch],
    )
    return _spread(out, codes)


# -- Arrow UDFs ---------------------------------------------------------------------------------
def _texts(arr: Any) -> list[Any]:
    return list(arr.to_pylist())


def _as_array(arr: Any) -> Any:
    """One contiguous Arrow array (DuckDB may hand a UDF a chunked one)."""
    import pyarrow as pa

    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _arrow_udfs(ctx: AIContext) -> list[tuple[str, Callable[..., Any], list[str], str]]:
    import numpy as np
    import pyarrow as pa

    dim = ctx.dimension

    def udf_sentiment(texts: Any) -> Any:
        # Arrow's dictionary encoding finds the distinct texts in C, which matters at a million rows.
        if len(texts) == 0:
            return pa.array([], pa.float64())
        enc = _as_array(texts).dictionary_encode()
        scores = _sentiment_distinct(ctx, enc.dictionary.to_pylist())
        return pa.array(scores, pa.float64()).take(enc.indices)

    def udf_embed(texts: Any) -> Any:
        vectors = embed(ctx, _texts(texts))
        mask = np.array([v is None for v in vectors], dtype=bool)
        flat = np.zeros((len(vectors), dim), dtype=np.float32)
        for i, v in enumerate(vectors):
            if v is not None:
                flat[i] = v
        return pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), dim, mask=pa.array(mask))

    def udf_similarity(a: Any, b: Any) -> Any:
        return pa.array(similarity(ctx, _texts(a), _texts(b)), pa.float64())

    def udf_classify(texts: Any, labels: Any, descriptions: Any) -> Any:
        descs = _texts(descriptions)
        return pa.array(
            classify(ctx, _texts(texts), _texts(labels), None if all(d is None for d in descs) else descs), pa.string()
        )

    def udf_summarize(texts: Any) -> Any:
        return pa.array(summarize(ctx, _texts(texts)), pa.string())

    def udf_extract(texts: Any, questions: Any) -> Any:
        return pa.array(extract_answer(ctx, _texts(texts), _texts(questions)), pa.string())

    def udf_redact(texts: Any) -> Any:
        from aiw.sql.redact import redact_many

        return pa.array(redact_many(_texts(texts)), pa.string())

    def udf_complete(prompts: Any) -> Any:
        return pa.array(complete(ctx, _texts(prompts)), pa.string())

    def udf_filter(texts: Any, conditions: Any) -> Any:
        return pa.array(filter_rows(ctx, _texts(texts), _texts(conditions)), pa.bool_())

    def udf_translate(texts: Any, languages: Any) -> Any:
        return pa.array(translate(ctx, _texts(texts), _texts(languages)), pa.string())

    return [
        ("ai_sentiment", udf_sentiment, ["VARCHAR"], "DOUBLE"),
        ("ai_embed", udf_embed, ["VARCHAR"], f"FLOAT[{dim}]"),
        ("ai_similarity", udf_similarity, ["VARCHAR", "VARCHAR"], "DOUBLE"),
        ("_aiw_classify", udf_classify, ["VARCHAR", "VARCHAR[]", "VARCHAR[]"], "VARCHAR"),
        ("ai_summarize", udf_summarize, ["VARCHAR"], "VARCHAR"),
        ("ai_extract_answer", udf_extract, ["VARCHAR", "VARCHAR"], "VARCHAR"),
        ("ai_redact", udf_redact, ["VARCHAR"], "VARCHAR"),
        ("ai_complete", udf_complete, ["VARCHAR"], "VARCHAR"),
        ("ai_filter", udf_filter, ["VARCHAR", "VARCHAR"], "BOOLEAN"),
        ("ai_translate", udf_translate, ["VARCHAR", "VARCHAR"], "VARCHAR"),
    ]


_MACROS = [
    # Overloads by argument count: DuckDB allows one Python UDF per name, but macros overload.
    "CREATE OR REPLACE TEMP MACRO ai_classify(text, labels) AS _aiw_classify(text, labels, NULL::VARCHAR[]), "
    "(text, labels, descriptions) AS _aiw_classify(text, labels, descriptions)",
]


def register_ai_functions(conn: Any, ctx: AIContext) -> None:
    """Bind the ``ai_*`` functions into ``conn`` (cheap: no model is loaded here).

    DuckDB keeps Python functions per database, shared by its connections: a function already
    bound by another connection to the same database is kept (it already reads ``ctx``).
    """
    for name, fn, params, returns in _arrow_udfs(ctx):
        bind_udf(conn, name, fn, params, returns)
    for macro in _MACROS:
        conn.execute(macro)


def bind_udf(conn: Any, name: str, fn: Callable[..., Any], params: list[str], returns: str) -> bool:
    """Register ``fn`` as a vectorised (Arrow) function that sees NULLs; False if already bound.

    Exceptions raised by ``fn`` fail the query with their message (row errors are handled
    inside the functions themselves).
    """
    import duckdb

    try:
        conn.create_function(
            name,
            fn,
            params,
            duckdb.sqltype(returns),
            type="arrow",
            null_handling="special",
            exception_handling="default",
            side_effects=False,
        )
    except duckdb.CatalogException as exc:
        if "already exists" not in str(exc):
            raise
        return False
    except duckdb.NotImplementedException as exc:
        if "already created" not in str(exc):
            raise
        return False
    return True
