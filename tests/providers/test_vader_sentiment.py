"""The fast VADER scorer must give exactly vaderSentiment's compound scores, serially and in parallel."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import numpy as np
import pytest

from aiw.errors import InvalidInputError
from aiw.providers import _vader_fast
from aiw.providers.sentiment import VaderSentiment, sentiment_scores
from aiw.testing.vader_sentences import tricky_sentences

pytestmark = pytest.mark.unit

SENTIMENT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "sentiment"


@pytest.fixture(scope="module")
def reference():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    return lambda text: analyzer.polarity_scores(text)["compound"]


@pytest.fixture(scope="module")
def reviews() -> list[str]:
    files = sorted(SENTIMENT_DATA.glob("*.tsv"))
    assert files, f"no sentiment data in {SENTIMENT_DATA}"
    texts: list[str] = []
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines()[1:]:
            if line.strip():
                texts.append(line.rsplit("\t", 1)[0])
    return texts


def test_identical_to_vader_on_the_shared_reviews(reference, reviews: list[str]) -> None:
    expected = np.array([reference(t) for t in reviews])
    got = sentiment_scores(reviews)
    assert got.dtype == np.float64
    assert len(reviews) == 2000
    np.testing.assert_array_equal(got, expected)
    assert (expected != 0).sum() > 1000  # the data really exercises the scorer


def test_identical_to_vader_on_generated_tricky_sentences(reference) -> None:
    texts = tricky_sentences(8_000, seed=7)  # the benchmark checks 100,000 more
    mismatches = [(t, reference(t), _vader_fast.compound(t)) for t in texts if _vader_fast.compound(t) != reference(t)]
    assert mismatches == []


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "!!!",
        "GOOD",
        "good",
        "not good",
        "Not bad at all",
        "The book was only kind of good.",
        "VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!",
        "At least it isn't a horrible book.",
        "Today only kinda sux! But I'll get by, lol",
        "Catch utf-8 emoji such as 💘 and 💋 and 😁",
        "no good or bad",
        "this is the shit",
        "the movie was to die for",
        "yeah right, great service",
        "It was good but the ending was bad but fine",
        "good good good but bad bad",
        "never so happy",
        "without a doubt excellent",
        "Roger Dodger is one of the least compelling variations on this theme.",
        "kiss of death for a great idea",
        "love???",
        "love??????",
        "hate!!!!!!!!",
    ],
)
def test_identical_on_vader_examples(reference, text: str) -> None:
    assert _vader_fast.compound(text) == reference(text)


def test_none_gives_nan_and_order_and_duplicates_are_kept() -> None:
    texts = ["I love it", None, "I hate it", "I love it", ""]
    scores = sentiment_scores(texts)
    assert scores.shape == (5,)
    assert math.isnan(scores[1])
    assert scores[0] > 0.5 and scores[2] < -0.5
    assert scores[0] == scores[3]
    assert scores[4] == 0.0
    assert sentiment_scores([]).shape == (0,)


def test_parallel_path_equals_serial_path(reference) -> None:
    texts = tricky_sentences(3_000, seed=11) + [None, "great"] * 5
    serial = VaderSentiment(workers=1).scores(texts)
    parallel = VaderSentiment(workers=2, parallel_min=100).scores(texts)
    np.testing.assert_array_equal(serial, parallel)  # NaN positions included
    assert not np.isnan(serial[:3_000]).any()
    assert serial[5] == reference(texts[5])


def test_exact_reference_mode_agrees() -> None:
    texts = tricky_sentences(500, seed=3)
    np.testing.assert_array_equal(VaderSentiment(exact_reference=True).scores(texts), sentiment_scores(texts))


def test_bad_inputs_are_refused_clearly() -> None:
    with pytest.raises(InvalidInputError, match="item 1 is int"):
        sentiment_scores(["fine", 3])
    with pytest.raises(InvalidInputError, match="not one string"):
        sentiment_scores("a whole string")
    with pytest.raises(InvalidInputError, match="'workers'"):
        VaderSentiment(workers=0)


class _BrokenPool:
    """A process pool whose worker died."""

    def map(self, *args: object) -> None:
        from concurrent.futures.process import BrokenProcessPool

        raise BrokenProcessPool("a worker died")


@pytest.mark.parametrize(
    ("replaced", "options", "n", "seed"),
    [
        ("_pool", {"parallel_min": 10}, 300, 5),  # the large-table path: waits for its pool
        ("_ready_pool", {"offload_min": 100}, 600, 17),  # the threaded path of DuckDB's batches
    ],
)
def test_a_broken_pool_falls_back_to_this_process(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    replaced: str,
    options: dict[str, int],
    n: int,
    seed: int,
) -> None:
    from aiw.providers import sentiment

    monkeypatch.setattr(sentiment, replaced, lambda workers: _BrokenPool())
    texts = tricky_sentences(n, seed=seed)
    # an earlier test of this process may have marked its pool failed already: start clean
    failed_before = os.getpid() in sentiment._POOL_FAILED
    sentiment._POOL_FAILED.discard(os.getpid())
    try:
        with caplog.at_level(logging.WARNING, logger=sentiment.log.name):
            got = VaderSentiment(workers=2, **options).scores(texts)
        assert "texts in this process" in caplog.text
        np.testing.assert_array_equal(got, VaderSentiment(workers=1).scores(texts))
        assert os.getpid() in sentiment._POOL_FAILED  # not retried on every call
    finally:
        if not failed_before:
            sentiment._POOL_FAILED.discard(os.getpid())


def test_threaded_batches_from_several_threads_equal_serial(reference, sentiment_pool_parts) -> None:
    import os
    from concurrent.futures import ThreadPoolExecutor

    from aiw.providers import sentiment

    texts = tricky_sentences(4_000, seed=13)
    batches = [[*texts[i : i + 500], None] for i in range(0, len(texts), 500)]
    serial = [VaderSentiment(workers=1).scores(b) for b in batches]
    scorer = VaderSentiment(workers=2, offload_min=100)
    first = [scorer.scores(b) for b in batches[:2]]  # may start the pool in the background; scored here meanwhile
    parts = sentiment_pool_parts(2)
    assert (os.getpid(), 2) in sentiment._POOLS
    with ThreadPoolExecutor(max_workers=4) as threads:  # as DuckDB does: several threads at once
        threaded = list(threads.map(scorer.scores, batches))
    assert parts == [2] * len(batches)  # every batch went to the two workers
    for got, expected in zip(first + threaded, serial[:2] + serial, strict=True):
        np.testing.assert_array_equal(got, expected)  # NaN for the None at the end included
    assert threaded[3][7] == reference(batches[3][7])


def test_threaded_entry_point_keeps_order_duplicates_and_none(reference, sentiment_pool_parts) -> None:
    distinct = tricky_sentences(600, seed=29)  # enough distinct texts for the pool to take them
    texts = [*distinct, None, "I hate it", *distinct[:50], ""]
    parts = sentiment_pool_parts(os.cpu_count() or 1)
    expected = [math.nan if t is None else reference(t) for t in texts]
    np.testing.assert_array_equal(sentiment_scores(texts, threaded=True), sentiment_scores(texts))
    np.testing.assert_array_equal(sentiment_scores(texts, threaded=True), expected)
    assert parts if (os.cpu_count() or 1) > 1 else not parts  # the scoring left this process
    assert sentiment_scores([], threaded=True).shape == (0,)


def test_offload_min_is_checked() -> None:
    with pytest.raises(InvalidInputError, match="'offload_min'"):
        VaderSentiment(offload_min=0)
