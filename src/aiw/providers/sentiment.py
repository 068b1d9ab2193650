"""Sentiment: VADER compound scores in [-1, 1], exactly as ``vaderSentiment`` computes them, faster.

:func:`sentiment_scores` is what the ``ai_sentiment`` SQL function and every other caller use. It
scores with :mod:`aiw.providers._vader_fast`, an exact re-implementation of vaderSentiment 3.3.2's
``polarity_scores(text)["compound"]`` (checked equal on the shared review data and on generated
sentences), keeps the score of each distinct text once per call, and spreads large inputs over
every core with a process pool.
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
from typing import Any

import numpy as np

from aiw.errors import InvalidInputError

__all__ = ["PARALLEL_MIN_TEXTS", "VaderSentiment", "sentiment_scores"]

PARALLEL_MIN_TEXTS = 20_000
"""Distinct texts from which :func:`sentiment_scores` uses a process pool (below it, one core)."""

log = logging.getLogger(__name__)

_CHUNK = 8_192  # texts per task: large enough to amortise pickling, small enough to balance cores


class VaderSentiment:
    """VADER sentiment scorer: the adapter behind :func:`sentiment_scores`.

    Args:
        exact_reference: Score with vaderSentiment's own ``SentimentIntensityAnalyzer`` instead of
            the fast re-implementation (slower; identical scores; useful for checking).
        workers: Processes for large inputs; ``None`` uses every core, 1 never starts a pool.
        parallel_min: Distinct texts from which the process pool is used.
    """

    def __init__(self, *, exact_reference: bool = False, workers: int | None = None,
                 parallel_min: int = PARALLEL_MIN_TEXTS) -> None:
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise InvalidInputError(f"The 'workers' parameter of VaderSentiment must be an int >= 1 or None. "
                                    f"Got {workers!r} instead.")
        if not isinstance(parallel_min, int) or parallel_min < 1:
            raise InvalidInputError(f"The 'parallel_min' parameter of VaderSentiment must be an int >= 1. "
                                    f"Got {parallel_min!r} instead.")
        self.exact_reference = exact_reference
        self.workers = workers
        self.parallel_min = parallel_min
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
            raise InvalidInputError("VaderSentiment.scores expects a sequence of texts, not one string; "
                                    "wrap it in a list.")
        index: dict[str, int] = {}
        code_of = index.setdefault
        try:
            # Each distinct text gets the next code the first time it is seen.
            codes = np.fromiter((-1 if t is None else code_of(t, len(index)) for t in texts), dtype=np.int64,
                                count=len(texts))
        except TypeError as exc:  # an unhashable item
            raise InvalidInputError(f"VaderSentiment.scores expects strings or None; got {exc}.") from exc
        uniques = list(index)
        for i, text in enumerate(uniques):
            if not isinstance(text, str):
                raise InvalidInputError(f"VaderSentiment.scores expects strings or None; item "
                                        f"{int(np.argmax(codes == i))} is {type(text).__name__}.")
        unique_scores = self._score_unique(uniques)
        out = np.full(len(codes), math.nan, dtype=np.float64)
        mask = codes >= 0
        out[mask] = unique_scores[codes[mask]]
        return out

    def _score_unique(self, texts: list[str]) -> np.ndarray:
        workers = self.workers or os.cpu_count() or 1
        if workers > 1 and len(texts) >= self.parallel_min and os.getpid() not in _POOL_FAILED:
            chunks = [texts[i:i + _CHUNK] for i in range(0, len(texts), _CHUNK)]
            task = _score_chunk_reference if self.exact_reference else _score_chunk
            try:
                parts = list(_pool(workers).map(task, chunks))
                return np.concatenate(parts) if parts else np.zeros(0)
            except (BrokenProcessPool, OSError) as exc:
                # Scores do not depend on where they are computed: fall back to this process, and
                # say so (a worker died, or processes cannot be started here). Do not try again in
                # this process: a pool that cannot start would cost its start-up time on every call.
                _drop_pool(workers)
                _POOL_FAILED.add(os.getpid())
                log.warning("sentiment process pool failed (%s: %s); scoring %d texts in this process",
                            type(exc).__name__, exc, len(texts))
        score = self._scorer()
        return np.fromiter((score(t) for t in texts), dtype=np.float64, count=len(texts))


def _score_chunk(texts: list[str]) -> np.ndarray:
    from aiw.providers._vader_fast import compound

    return np.fromiter((compound(t) for t in texts), dtype=np.float64, count=len(texts))


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


def _drop_pool(workers: int) -> None:
    with _POOLS_LOCK:
        pool = _POOLS.pop((os.getpid(), workers), None)
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


_DEFAULT: VaderSentiment | None = None


def sentiment_scores(texts: Sequence[str | None], *, workers: int | None = None) -> np.ndarray:
    """VADER compound scores of ``texts``: float64 in [-1, 1], ``NaN`` for ``None``, in order.

    Scores are identical to ``vaderSentiment``'s ``polarity_scores(text)["compound"]``. Each
    distinct text is scored once; from :data:`PARALLEL_MIN_TEXTS` distinct texts the work is
    spread over ``workers`` processes (default: every core), so pass large batches to use every
    core. One core already scores 3 to 4.5 times as many texts per second as vaderSentiment.

    Raises:
        InvalidInputError: an item is neither a string nor ``None``.
    """
    global _DEFAULT
    if workers is not None:
        return VaderSentiment(workers=workers).scores(texts)
    if _DEFAULT is None:
        _DEFAULT = VaderSentiment()
    return _DEFAULT.scores(texts)
