"""A small, exact BM25 (Okapi, Lucene's idf) with English analysis: words, stopwords, Snowball stems.

Used by :class:`~aiw.rag.adapters.memory_index.InMemoryIndex` and as the full-text search of the
adapters whose backend has no BM25 of its own (Chroma, Qdrant), so every adapter ranks text the
same way. The term weights are precomputed into a sparse document-term matrix; a query is the sum
of the columns of its terms, so scoring 10,000 chunks takes well under a millisecond.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from aiw.errors import InvalidInputError

if TYPE_CHECKING:
    from scipy.sparse import csc_matrix

__all__ = ["BM25", "ENGLISH_STOPWORDS", "analyze"]

# The Snowball project's English stop list (https://snowballstem.org/algorithms/english/stop.txt),
# plus a few one-letter tokens that tokenisation leaves behind.
_STOP_LIST = """
i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she
her hers herself it its itself they them their theirs themselves what which who whom this that
these those am is are was were be been being have has had having do does did doing would should
could ought i'm you're he's she's it's we're they're i've you've we've they've i'd you'd he'd
she'd we'd they'd i'll you'll he'll she'll we'll they'll isn't aren't wasn't weren't hasn't
haven't hadn't doesn't don't didn't won't wouldn't shan't shouldn't can't cannot couldn't mustn't
let's that's who's what's here's there's when's where's why's how's a an the and but if or because
as until while of at by for with about against between into through during before after above
below to from up down in out on off over under again further then once here there when where why
how all any both each few more most other some such no nor not only own same so than too very s t
can will just don should now d ll m o re ve y
"""
ENGLISH_STOPWORDS: frozenset[str] = frozenset(_STOP_LIST.split())

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


@lru_cache(maxsize=1)
def _stemmer() -> Callable[[str], str]:
    """The English Snowball stemmer (PyStemmer, else snowballstemmer, else no stemming)."""
    try:
        import Stemmer

        stem = Stemmer.Stemmer("english")
        stem.maxCacheSize = 100_000
        return stem.stemWord  # type: ignore[no-any-return, unused-ignore]
    except ImportError:  # PyStemmer is a dependency; the pure-Python package is a fallback
        pass
    try:
        import snowballstemmer

        pure = snowballstemmer.stemmer("english")
        return pure.stemWord  # type: ignore[no-any-return, unused-ignore]
    except ImportError:
        return lambda word: word


def analyze(text: str) -> list[str]:
    """Terms of ``text``: NFKC-normalised, lower-cased words, English stopwords removed, stemmed.

    Example:
        >>> analyze("The flows were running over swept wings")
        ['flow', 'run', 'swept', 'wing']
    """
    stem = _stemmer()
    words = _WORD.findall(unicodedata.normalize("NFKC", text).lower())
    return [stem(w) for w in words if w not in ENGLISH_STOPWORDS]


class BM25:
    """Okapi BM25 over a fixed list of texts.

    Args:
        k1: Term-frequency saturation (1.2 is the usual default).
        b: Length normalisation (0.75 is the usual default).

    Attributes:
        n_docs_: Number of texts indexed, after :meth:`fit`.
    """

    def __init__(self, *, k1: float = 1.2, b: float = 0.75) -> None:
        if not isinstance(k1, int | float) or k1 < 0:
            raise InvalidInputError(f"The 'k1' parameter of BM25 must be a float >= 0. Got {k1!r} instead.")
        if not isinstance(b, int | float) or not 0 <= b <= 1:
            raise InvalidInputError(f"The 'b' parameter of BM25 must be a float in [0, 1]. Got {b!r} instead.")
        self.k1 = float(k1)
        self.b = float(b)
        self.n_docs_: int | None = None
        self._vocab: dict[str, int] = {}
        self._weights: csc_matrix | None = None

    def fit(self, texts: Sequence[str], *, analyzed: Sequence[Sequence[str]] | None = None) -> BM25:
        """Index ``texts`` (or their already analysed terms); returns ``self``."""
        from scipy.sparse import csr_matrix

        docs = [list(t) for t in analyzed] if analyzed is not None else [analyze(t) for t in texts]
        vocab: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        lengths = np.fromiter((len(d) for d in docs), dtype=np.float64, count=len(docs))
        avgdl = float(lengths.mean()) if len(docs) and lengths.sum() else 1.0
        for row, terms in enumerate(docs):
            counts: dict[int, int] = {}
            for term in terms:
                col = vocab.setdefault(term, len(vocab))
                counts[col] = counts.get(col, 0) + 1
            rows.extend([row] * len(counts))
            cols.extend(counts)
            vals.extend(counts.values())
        tf = csr_matrix((np.asarray(vals, dtype=np.float64), (rows, cols)), shape=(len(docs), len(vocab)))
        df = np.bincount(tf.indices, minlength=len(vocab)).astype(np.float64)
        idf = np.log(1.0 + (len(docs) - df + 0.5) / (df + 0.5))
        norm = self.k1 * (1.0 - self.b + self.b * lengths / avgdl)
        data = tf.data
        row_of = np.repeat(np.arange(len(docs)), np.diff(tf.indptr))
        tf.data = data * (self.k1 + 1.0) / (data + norm[row_of]) * idf[tf.indices]
        self._weights = tf.tocsc()
        self._vocab = vocab
        self.n_docs_ = len(docs)
        return self

    def scores(self, query: str | Mapping[str, float]) -> np.ndarray:
        """The BM25 score of every indexed text for ``query`` (0 where no term matches).

        Args:
            query: Free text (each distinct term counts once), or analysed terms mapped to
                weights: the score is then the weighted sum of the terms' BM25 scores.
        """
        if self._weights is None or self.n_docs_ is None:
            raise InvalidInputError("This BM25 is not fitted yet; call fit(texts) first.")
        weights = dict.fromkeys(analyze(query), 1.0) if isinstance(query, str) else dict(query)
        found = [(self._vocab[t], float(w)) for t, w in weights.items() if t in self._vocab and w > 0]
        if not found:
            return np.zeros(self.n_docs_, dtype=np.float64)
        cols = [c for c, _ in found]
        return np.asarray(self._weights[:, cols] @ np.array([w for _, w in found])).ravel()

    def search(
        self, query: str | Mapping[str, float], k: int, *, mask: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """The ``k`` best (row, score) pairs with a positive score, best first.

        Args:
            query: Free text.
            k: How many to return at most.
            mask: Optional boolean array; rows where it is False are never returned.
        """
        if k < 1:
            raise InvalidInputError(f"The 'k' parameter of BM25.search must be an int >= 1. Got {k!r} instead.")
        scores = self.scores(query)
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        positive = np.flatnonzero(scores > 0)
        if positive.size == 0:
            return []
        if positive.size > k:
            part = np.argpartition(-scores[positive], k - 1)[:k]
            positive = positive[part]
        order = positive[np.lexsort((positive, -scores[positive]))]
        return [(int(i), float(scores[i])) for i in order]
