"""Embeddings: shape and normalisation, semantic sense, and the persistent cache (across processes)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from aiw.errors import ConfigError, InvalidInputError
from aiw.providers.embeddings import (
    CachedEmbedder,
    Embedder,
    SentenceEmbedder,
    count_tokens,
    get_embedder,
    get_tokenizer,
)
from aiw.settings import EmbeddingSettings

pytestmark = pytest.mark.unit


class CountingEmbedder:
    """Wraps an embedder and records every text it is asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.dimension = inner.dimension
        self.model_id = inner.model_id
        self.calls: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return self.inner.embed(texts)

    @property
    def embedded(self) -> int:
        return sum(len(c) for c in self.calls)


def test_shape_dtype_and_unit_norm(embedder: SentenceEmbedder) -> None:
    texts = ["The roof leaked after the storm.", "", "Claim approved", "x" * 3000]
    vectors = embedder.embed(texts)
    assert isinstance(embedder, Embedder)
    assert (embedder.dimension, embedder.model_id) == (384, "all-MiniLM-L6-v2")
    assert vectors.shape == (4, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, 384)
    # order is kept: embedding one text alone gives its row
    np.testing.assert_allclose(embedder.embed([texts[2]])[0], vectors[2], atol=1e-5)


def test_similar_sentences_are_closer_than_unrelated(embedder: SentenceEmbedder) -> None:
    a, b, c = embedder.embed(
        [
            "Water damage in the kitchen after a pipe burst.",
            "A burst pipe flooded the kitchen.",
            "The quarterly revenue grew by ten percent.",
        ]
    )
    assert float(a @ b) > float(a @ c) + 0.3


def test_bad_inputs_are_refused(embedder: SentenceEmbedder) -> None:
    with pytest.raises(InvalidInputError, match="not one string"):
        embedder.embed("one string")
    with pytest.raises(InvalidInputError, match="item 1 is NoneType"):
        embedder.embed(["fine", None])


def test_cache_embeds_each_text_once_and_serves_a_new_instance(embedder: SentenceEmbedder, tmp_path: Path) -> None:
    counting = CountingEmbedder(embedder)
    cached = CachedEmbedder(counting, tmp_path)
    texts = ["alpha claim", "beta policy", "alpha claim", "gamma payment"]
    first = cached.embed(texts)
    assert counting.calls == [["alpha claim", "beta policy", "gamma payment"]]  # the repeat embedded once
    np.testing.assert_array_equal(first[0], first[2])
    np.testing.assert_allclose(first, embedder.embed(texts), atol=1e-5)

    again = CachedEmbedder(counting, tmp_path)  # a fresh object over the same folder
    second = again.embed(["gamma payment", "alpha claim", "delta new"])
    assert counting.calls[-1] == ["delta new"]
    assert counting.embedded == 4
    np.testing.assert_array_equal(second[0], first[3])
    np.testing.assert_array_equal(second[1], first[0])
    assert len(again) == 4
    assert (again.hits, again.misses) == (2, 1)


def test_cache_is_shared_with_another_process(embedder: SentenceEmbedder, tmp_path: Path) -> None:
    texts = [f"note {i}: the adjuster visited the house" for i in range(50)]
    expected = CachedEmbedder(embedder, tmp_path).embed(texts)
    out = tmp_path / "vectors.npy"
    script = textwrap.dedent(f"""
        import numpy as np
        from aiw.providers.embeddings import CachedEmbedder

        class Forbidden:
            dimension = 384
            model_id = "all-MiniLM-L6-v2"
            def embed(self, texts):
                raise AssertionError(f"embedded {{len(texts)}} texts: the cache missed")

        texts = [f"note {{i}}: the adjuster visited the house" for i in range(50)]
        np.save({str(out)!r}, CachedEmbedder(Forbidden(), {str(tmp_path)!r}).embed(texts))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(np.load(out), expected)


def test_cache_keys_depend_on_the_model(embedder: SentenceEmbedder, tmp_path: Path) -> None:
    CachedEmbedder(embedder, tmp_path).embed(["shared text"])

    other = CountingEmbedder(embedder)
    other.model_id = "another-model"  # same vectors, another name: must not share cache entries
    CachedEmbedder(other, tmp_path).embed(["shared text"])
    assert other.embedded == 1


def test_get_embedder_wraps_in_the_cache_only_when_asked(embedder: SentenceEmbedder, tmp_path: Path) -> None:
    assert isinstance(get_embedder(EmbeddingSettings(), tmp_path), CachedEmbedder)
    assert isinstance(get_embedder(EmbeddingSettings(cache=False), tmp_path), SentenceEmbedder)
    plain = get_embedder(EmbeddingSettings(), None)
    assert isinstance(plain, SentenceEmbedder)
    assert plain.model is embedder.model  # the weights are loaded once per process


def test_missing_model_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        SentenceEmbedder(EmbeddingSettings(model_path=str(tmp_path / "nope")))


def test_count_tokens_uses_the_model_tokenizer() -> None:
    counts = count_tokens(["hello world", "", "The adjuster's estimate: 4,000 EUR for water damage."])
    assert counts[0] == 2
    assert counts[1] == 0
    assert counts[2] > 8
    tokenizer = get_tokenizer()
    assert counts[2] == len(tokenizer.tokenize("The adjuster's estimate: 4,000 EUR for water damage."))
