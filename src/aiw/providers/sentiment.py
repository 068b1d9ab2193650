"""Sentiment: VADER compound scores in [-1, 1], exactly as ``vaderSentiment`` computes them, faster.

:func:`sentiment_scores` is what the ``ai_sentiment`` SQL function and every other caller use. It
scores with :mod:`aiw.providers._vader_fast`, an exact re-implementation of vaderSentiment 3.3.2's
``polarity_scores(text)["compound"]`` (checked equal on the shared review data and on generated
sentences), keeps the score of each distinct text once per call, and spreads large inputs over
every core with a process pool.

Callers that score many small batches, possibly from several threads at once (DuckDB calls the
``ai_sentiment`` UDF from each of its threads, 2,048 rows at a time), pass ``threaded=True``: each
batch is then split into one part per worker process of the same pool, so that even a single
DuckDB thread keeps every core busy, and the calling thread waits for them without holding the
GIL, so that other threads' batches are sent meanwhile. The pool starts in the background on the
first such batch; until it is up, batches are scored in the calling thread, so no query waits
for it.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, cast

import numpy as np

from aiw.errors import InvalidInputError

__all__ = ["OFFLOAD_MIN_TEXTS", "PARALLEL_MIN_TEXTS", "VaderSentiment", "sentiment_scores"]

PARALLEL_MIN_TEXTS = 20_000
"""Distinct texts from which :func:`sentiment_scores` uses a process pool (below it, one core)."""

OFFLOAD_MIN_TEXTS = 256
"""Fewest distinct texts a ``threaded=True`` batch sends to a worker process (a smaller batch is scored in place)."""

log = logging.getLogger(__name__)

_CHUNK = 8_192  # texts per task: large enough to amortise pickling, small enough to balance cores


class VaderSentiment:
    """VADER sentiment scorer: the adapter behind :func:`sentiment_scores`.

    Args:
        exact_reference: Score with vaderSentiment's own ``SentimentIntensityAnalyzer`` instead of
            the fast re-implementation (slower; identical scores; useful for checking).
        workers: Processes for large inputs; ``None`` uses every core, 1 never starts a pool.
        parallel_min: Distinct texts from which a batch is split over the process pool.
        offload_min: For a batch below ``parallel_min``: the fewest distinct texts in each part
            sent to one of the pool's workers, while the calling thread waits without the GIL
            (the pool starts in the background; until it is up, the batch is scored in the
            calling thread), so that small batches, from one thread or several at once, use every
            core; ``None`` scores them in the calling thread.
    """

    def __init__(
        self,
        *,
        exact_reference: bool = False,
        workers: int | None = None,
        parallel_min: int = PARALLEL_MIN_TEXTS,
        offload_min: int | None = None,
    ) -> None:
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise InvalidInputError(
                f"The 'workers' parameter of VaderSentiment must be an int >= 1 or None. Got {workers!r} instead."
            )
        if not isinstance(parallel_min, int) or parallel_min < 1:
            raise InvalidInputError(
                f"The 'parallel_min' parameter of VaderSentiment must be an int >= 1. Got {parallel_min!r} instead."
            )
        if offload_min is not None and (not isinstance(offload_min, int) or offload_min < 1):
            raise InvalidInputError(
                f"The 'offload_min' parameter of VaderSentiment must be an int >= 1 or None. "
                f"Got {offload_min!r} instead."
            )
        self.exact_reference = exact_reference
        self.workers = workers
        self.parallel_min = parallel_min
        self.offload_min = offload_min
        self._score_one: Any = None

    def _scorer(self) -> Any:
        if self._score_one is None:
            if self.exact_reference:
                from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

                analyzer = SentimentIntensityAnalyzer()
                self._score_one = lambda text: analyzer.polarity_scores(text)["compound"]
            else:
                from aiw.providers._vader_fast import compound

                self._score_one = compound
        return self._score_one

    def score(self, text: str) -> float:
        """The VADER compound score of one text."""
        if not isinstance(text, str):
            raise InvalidInputError(f"VaderSentiment.score expects a string. Got {type(text).__name__} instead.")
        return float(self._scorer()(text))

    def scores(self, texts: Sequence[str | None]) -> np.ndarray:
        """Compound scores of ``texts`` as float64, ``NaN`` where the text is ``None``.

        Each distinct text is scored once; large inputs are split over a process pool.
        """
        if isinstance(texts, str):
            raise InvalidInputError(
                "VaderSentiment.scores expects a sequence of texts, not one string; wrap it in a list."
            )
        try:
            distinct = dict.fromkeys(texts)  # in first-seen order
        except TypeError as exc:  # an unhashable item
            raise InvalidInputError(f"VaderSentiment.scores expects strings or None; got {exc}.") from exc
        distinct.pop(None, None)
        uniques = cast("list[str]", list(distinct))  # checked just below
        if not set(map(type, uniques)) <= {str}:
            for i, text in enumerate(texts):
                if text is not None and not isinstance(text, str):
                    raise InvalidInputError(
                        f"VaderSentiment.scores expects strings or None; item {i} is {type(text).__name__}."
                    )
        unique_scores = self._score_unique(uniques)
        if len(uniques) == len(texts):
            return unique_scores  # every text distinct and none None: already in order
        code_of: dict[str | None, int] = {text: i for i, text in enumerate(uniques)}
        code_of[None] = -1
        codes = np.fromiter(map(code_of.__getitem__, texts), dtype=np.int64, count=len(texts))
        out = np.full(len(codes), math.nan, dtype=np.float64)
        mask = codes >= 0
        out[mask] = unique_scores[codes[mask]]
        return out

    def _score_unique(self, texts: list[str]) -> np.ndarray:
        workers = self.workers or os.cpu_count() or 1
        if workers > 1 and os.getpid() not in _POOL_FAILED:
            task = _score_chunk_reference if self.exact_reference else _score_chunk
            try:
                if len(texts) >= self.parallel_min:
                    chunks = [texts[i : i + _CHUNK] for i in range(0, len(texts), _CHUNK)]
                    scored = list(_pool(workers).map(task, chunks))
                    return np.concatenate(scored) if scored else np.zeros(0)
                parts = min(workers, len(texts) // self.offload_min) if self.offload_min is not None else 0
                pool = _ready_pool(workers) if parts >= 1 else None
                if pool is not None:
                    # One part per worker: a small table is scanned by a single DuckDB thread.
                    # Waiting on the parts releases the GIL, so that other threads' batches are
                    # sent meanwhile. (Scoring a part in this thread too measured slower: it
                    # holds the GIL that the pool's feeder and result threads need.)
                    size = -(-len(texts) // parts)
                    chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
                    return np.concatenate(list(pool.map(task, chunks)))
            except (BrokenProcessPool, OSError) as exc:
                # Scores do not depend on where they are computed: fall back to this process, and
                # say so (a worker died, or processes cannot be started here). Do not try again in
                # this process: a pool that cannot start would cost its start-up time on every call.
                _pool_failed(workers, exc)
        return self._score_here(texts)

    def _score_here(self, texts: list[str]) -> np.ndarray:
        return np.fromiter(map(self._scorer(), texts), dtype=np.float64, count=len(texts))


def _score_chunk(texts: list[str]) -> np.ndarray:
    from aiw.providers._vader_fast import compound

    return np.fromiter(map(compound, texts), dtype=np.float64, count=len(texts))


_REFERENCE: Any = None


def _score_chunk_reference(texts: list[str]) -> np.ndarray:
    global _REFERENCE
    if _REFERENCE is None:  # once per worker process: loading the lexicon takes a while
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        _REFERENCE = SentimentIntensityAnalyzer()
    analyzer = _REFERENCE
    return np.fromiter((analyzer.polarity_scores(t)["compound"] for t in texts), dtype=np.float64, count=len(texts))


_POOLS: dict[tuple[int, int], Executor] = {}
_POOL_FAILED: set[int] = set()  # pids in which a pool failed: they score in-process from then on
_POOLS_LOCK = threading.Lock()
_STARTING: set[tuple[int, int]] = set()  # pools being started in the background
_STARTING_LOCK = threading.Lock()


def _warm(_: int) -> int:
    from aiw.providers import _vader_fast

    _vader_fast.compound("warm up")
    return os.getpid()


def _pool(workers: int) -> Executor:
    """A process pool kept for the life of this process (per pid: a forked child makes its own).

    The 'forkserver' start method gives workers a clean, single-threaded parent, which is safe
    even when the caller runs inside DuckDB's or torch's threads (plain 'fork' is not); the
    workers load the lexicon once and are reused by every later call. Like every
    multiprocessing start method but 'fork', workers import the caller's ``__main__`` module: a
    script must keep its work under ``if __name__ == "__main__":`` (if it does not, the pool
    fails and the texts are scored in the calling process instead).
    """
    key = (os.getpid(), workers)
    pool = _POOLS.get(key)
    if pool is None:
        with _POOLS_LOCK:
            pool = _POOLS.get(key)
            if pool is None:
                methods = multiprocessing.get_all_start_methods()
                context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
                pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
                try:
                    list(pool.map(_warm, range(workers)))
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
                _POOLS[key] = pool
    return pool


def _ready_pool(workers: int) -> Executor | None:
    """The pool if it is up; else ``None``, having started it in the background (once)."""
    key = (os.getpid(), workers)
    pool = _POOLS.get(key)
    if pool is not None or key[0] in _POOL_FAILED:
        return pool
    with _STARTING_LOCK:
        if key in _STARTING:
            return None
        _STARTING.add(key)
    threading.Thread(target=_start_pool, args=(workers,), name="aiw-sentiment-pool-start", daemon=True).start()
    return None


def _start_pool(workers: int) -> None:
    try:
        _pool(workers)
    except (BrokenProcessPool, OSError, RuntimeError) as exc:  # RuntimeError: the interpreter is exiting
        _pool_failed(workers, exc)
    finally:
        with _STARTING_LOCK:
            _STARTING.discard((os.getpid(), workers))


def _pool_failed(workers: int, exc: BaseException) -> None:
    _drop_pool(workers)
    _POOL_FAILED.add(os.getpid())
    log.warning(
        "sentiment process pool failed (%s: %s); scoring texts in this process from now on",
        type(exc).__name__,
        exc,
    )


def _drop_pool(workers: int) -> None:
    with _POOLS_LOCK:
        pool = _POOLS.pop((os.getpid(), workers), None)
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


_DEFAULT: VaderSentiment | None = None
_THREADED: VaderSentiment | None = None


def sentiment_scores(texts: Sequence[str | None], *, workers: int | None = None, threaded: bool = False) -> np.ndarray:
    """VADER compound scores of ``texts``: float64 in [-1, 1], ``NaN`` for ``None``, in order.

    Scores are identical to ``vaderSentiment``'s ``polarity_scores(text)["compound"]``. Each
    distinct text is scored once; from :data:`PARALLEL_MIN_TEXTS` distinct texts the work is
    spread over ``workers`` processes (default: every core), so pass large batches to use every
    core. One core already scores about 7 times as many texts per CPU second as vaderSentiment.

    Args:
        texts: Strings or ``None``.
        workers: Worker processes (default: one per core).
        threaded: The caller scores many small batches, possibly from several threads at once (a
            DuckDB UDF): a batch of :data:`OFFLOAD_MIN_TEXTS` distinct texts or more is split
            between the worker processes, and the wait for them releases the GIL.

    Raises:
        InvalidInputError: an item is neither a string nor ``None``.
    """
    global _DEFAULT, _THREADED
    if workers is not None:
        return VaderSentiment(workers=workers, offload_min=OFFLOAD_MIN_TEXTS if threaded else None).scores(texts)
    if threaded:
        if _THREADED is None:
            _THREADED = VaderSentiment(offload_min=OFFLOAD_MIN_TEXTS)
        return _THREADED.scores(texts)
    if _DEFAULT is None:
        _DEFAULT = VaderSentiment()
    return _DEFAULT.scores(texts)
