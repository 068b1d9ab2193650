"""The extractive fallback LLM: answers with the input's own most salient sentences.

No model and no network: sentences are scored with simple term statistics. ``summarize`` ranks
sentences TextRank-style (PageRank over the TF-IDF cosine graph of the text's sentences, blended
with similarity to the text's centroid); ``best_sentences`` ranks them by BM25 overlap with a
query. It is what the platform uses until an OpenAI-compatible endpoint or a local model is
configured, and it never invents text.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator, Sequence

import numpy as np

from aiw.errors import InvalidInputError
from aiw.providers.llm import Message, check_messages, check_prompts
from aiw.settings import LLMSettings

__all__ = ["ExtractiveLLM", "split_sentences", "terms"]


def _words(text: str) -> list[str]:
    return text.split()


_ABBREVIATIONS = frozenset(
    _words("""
mr mrs ms dr prof sr jr st vs etc e.g i.e no fig approx dept est inc ltd co corp jan feb mar apr jun jul aug
sep sept oct nov dec u.s a.m p.m""")
)

# Within a block of text, a sentence ends at . ! ? (optionally followed by quotes/brackets)
# before whitespace.
_BOUNDARY = re.compile(r"""(?<=[.!?])["')\]]*\s+""")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s")
_HEADING = re.compile(r"^\s*#+\s")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_MARKUP = re.compile(r"^\s*(?:#+|[-*+•]|\d+[.)])\s+")
_QUESTION = re.compile(r"^\s*(?:question|query|q)\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_CONTEXT_LABEL = re.compile(
    r"^\s*(?:context|text|document|documents|passage|answer)\s*:\s*$", re.IGNORECASE | re.MULTILINE
)

_STOPWORDS = frozenset(
    _words("""
a about above after again against all am an and any are aren't as at be because been before being below
between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each
few for from further had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers herself
him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself let's me more most
mustn't my myself no nor not of off on once only or other ought our ours ourselves out over own same shan't
she she'd she'll she's should shouldn't so some such than that that's the their theirs them themselves then
there there's these they they'd they'll they're they've this those through to too under until up very was
wasn't we we'd we'll we're we've were weren't what what's when when's where where's which while who who's whom
why why's with won't would wouldn't you you'd you'll you're you've your yours yourself yourselves also may
might must shall will per via upon within without""")
)


def _stem(word: str) -> str:
    """A light suffix stripper, so that 'claims', 'claimed' and 'claiming' share a term."""
    if len(word) <= 3 or word.isdigit():
        return word
    for suffix, keep in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            word = word[: len(word) - len(suffix)] + keep
            break
    # "estimate"/"estimated", "house"/"houses": drop a final e so both forms meet
    return word[:-1] if word.endswith("e") and len(word) > 4 else word


def terms(text: str) -> list[str]:
    """Lower-cased, stemmed content words of ``text`` (stop words dropped)."""
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``, trimmed, in order; list markers and headings stay with their line.

    A period after a common abbreviation ("Dr.", "e.g.") or a single letter does not end a
    sentence.
    """
    pieces: list[str] = []
    for block in _blocks(text):
        start = 0
        for match in _BOUNDARY.finditer(block):
            candidate = block[start : match.start()]
            last = candidate.rstrip("\"')]").rsplit(None, 1)[-1].lower().rstrip(".") if candidate.strip() else ""
            if last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha()):
                continue  # "Dr. Smith", "J. Doe": not a boundary
            pieces.append(candidate)
            start = match.end()
        pieces.append(block[start:])
    return [" ".join(p.split()) for p in pieces if p.strip()]


def _blocks(text: str) -> list[str]:
    """Paragraphs, list items and headings: a sentence never spans two of them."""
    blocks: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if not line.strip() or _LIST_ITEM.match(line) or _HEADING.match(line):
            if current:
                blocks.append("\n".join(current))
            current = []
            if _HEADING.match(line):
                blocks.append(line)  # a heading is a block of its own
                continue
        if line.strip():
            current.append(line)
    if current:
        blocks.append("\n".join(current))
    return blocks


class ExtractiveLLM:
    """The no-model :class:`~aiw.providers.llm.LLM`: every answer is sentences of its input.

    For a prompt holding a question (a line ``Question: ...``, or a final line ending in "?") it
    returns the sentences of the rest of the prompt that best answer it; otherwise it returns an
    extractive summary of the prompt. ``generative`` is ``False``, so callers that need new text
    (translation, free completion) can refuse it and tell the user how to configure a model.

    Args:
        settings: The llm section (only ``max_tokens`` is used, to bound answers by words).
        max_sentences: Sentences in a summary or an answer.
    """

    model_id = "extractive"

    def __init__(self, settings: LLMSettings | None = None, *, max_sentences: int = 3) -> None:
        if not isinstance(max_sentences, int) or max_sentences < 1:
            raise InvalidInputError(
                f"The 'max_sentences' parameter of ExtractiveLLM must be an int >= 1. Got {max_sentences!r} instead."
            )
        self.settings = settings or LLMSettings()  # type: ignore[call-arg]
        self.max_sentences = max_sentences

    @property
    def generative(self) -> bool:
        """Always ``False``: the answers are sentences of the input."""
        return False

    # -- the extractive primitives -------------------------------------------------------------------
    def summarize(self, text: str, max_sentences: int = 3) -> str:
        """The ``max_sentences`` most central sentences of ``text``, in their original order.

        Centrality is PageRank over the cosine-similarity graph of the sentences' TF-IDF vectors
        (TextRank), averaged with each sentence's similarity to the text's centroid so that
        short texts with few links still rank sensibly. A text of no more sentences than asked
        comes back whole (whitespace normalised).
        """
        _check_text(text, "summarize", "text")
        _check_k(max_sentences, "summarize", "max_sentences")
        sentences = split_sentences(text)
        if len(sentences) <= max_sentences:
            return " ".join(sentences)
        scores = self._centrality([terms(s) for s in sentences])
        chosen = sorted(np.argsort(-scores, kind="stable")[:max_sentences])
        return " ".join(_clean(sentences[i]) for i in chosen)

    def best_sentences(self, text: str, query: str, k: int = 3) -> list[str]:
        """The ``k`` sentences of ``text`` that best match ``query``, best first.

        Sentences are ranked by BM25 of the query's terms, with the sentence's centrality as a
        tie-breaker; sentences sharing no term with the query come last, in central-first
        order. Fewer than ``k`` sentences in the text gives them all.
        """
        _check_text(text, "best_sentences", "text")
        _check_text(query, "best_sentences", "query")
        _check_k(k, "best_sentences", "k")
        return [sentence for sentence, _ in self._ranked(text, query)[:k]]

    def _ranked(self, text: str, query: str) -> list[tuple[str, float]]:
        """Every sentence of ``text`` with its BM25 relevance to ``query``, best first."""
        sentences = split_sentences(text)
        if not sentences:
            return []
        sent_terms = [terms(s) for s in sentences]
        relevance = _bm25(sent_terms, terms(query))
        central = self._centrality(sent_terms)
        order = sorted(range(len(sentences)), key=lambda i: (-relevance[i], -central[i], i))
        return [(_clean(sentences[i]), relevance[i]) for i in order]

    @staticmethod
    def _centrality(sent_terms: list[list[str]]) -> np.ndarray:
        n = len(sent_terms)
        if n == 0:
            return np.zeros(0)
        vocab: dict[str, int] = {}
        for ts in sent_terms:
            for t in ts:
                vocab.setdefault(t, len(vocab))
        if not vocab:
            return np.linspace(1.0, 0.5, n)  # no content words: prefer earlier sentences
        tf = np.zeros((n, len(vocab)))
        for i, ts in enumerate(sent_terms):
            for t, c in Counter(ts).items():
                tf[i, vocab[t]] = 1.0 + math.log(c)
        df = (tf > 0).sum(axis=0)
        vectors = tf * (np.log((1.0 + n) / (1.0 + df)) + 1.0)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
        sim = vectors @ vectors.T
        np.fill_diagonal(sim, 0.0)
        # PageRank by power iteration; a sentence with no links spreads its rank uniformly.
        out_weight = sim.sum(axis=1, keepdims=True)
        transition = np.divide(sim, out_weight, out=np.full_like(sim, 1.0 / n), where=out_weight > 0)
        rank = np.full(n, 1.0 / n)
        for _ in range(100):
            new = 0.15 / n + 0.85 * (transition.T @ rank)
            if np.abs(new - rank).sum() < 1e-9:
                rank = new
                break
            rank = new
        centroid = vectors.mean(axis=0)
        c_norm = np.linalg.norm(centroid)
        to_centroid = vectors @ (centroid / c_norm) if c_norm > 0 else np.zeros(n)
        score = rank / rank.max() + to_centroid / max(float(to_centroid.max()), 1e-12)
        # A tiny position prior breaks ties towards the opening, where key facts usually sit.
        return score + 1e-6 * np.linspace(1.0, 0.0, n)

    # -- the LLM port -----------------------------------------------------------------------------
    def _answer(self, prompt: str, max_tokens: int | None) -> str:
        question, context = _split_question(prompt)
        if question is not None:
            ranked = self._ranked(context, question)[: self.max_sentences]
            # Sentences sharing no term with the question are noise, unless nothing matches at all.
            answer = " ".join([s for s, score in ranked if score > 0] or [s for s, _ in ranked[:1]])
        else:
            answer = self.summarize(prompt, max_sentences=self.max_sentences)
        limit = self.settings.max_tokens if max_tokens is None else max_tokens
        words = answer.split()
        return " ".join(words[:limit]) if len(words) > limit else answer

    def complete(
        self,
        prompts: Sequence[str],
        *,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> list[str]:
        """The extractive answer to each prompt, in order (``system`` and ``temperature`` are ignored)."""
        items = check_prompts(prompts, type(self).__name__)
        return [self._answer(p, max_tokens) for p in items]

    def chat(self, messages: list[Message], *, temperature: float | None = None, max_tokens: int | None = None) -> str:
        """The extractive answer to the last user message."""
        msgs = check_messages(messages, f"{type(self).__name__}.chat")
        users = [m["content"] for m in msgs if m["role"] == "user"]
        return self._answer(users[-1] if users else msgs[-1]["content"], max_tokens)

    def stream_chat(
        self, messages: list[Message], *, temperature: float | None = None, max_tokens: int | None = None
    ) -> Iterator[str]:
        """The chat answer in word-sized chunks (their concatenation equals ``chat``'s answer)."""
        answer = self.chat(messages, temperature=temperature, max_tokens=max_tokens)
        yield from re.findall(r"\S+\s*|\s+", answer)

    def __repr__(self) -> str:
        return f"ExtractiveLLM(max_sentences={self.max_sentences})"


def _bm25(sent_terms: list[list[str]], query_terms: list[str], k1: float = 1.2, b: float = 0.75) -> list[float]:
    n = len(sent_terms)
    if not query_terms or n == 0:
        return [0.0] * n
    avg_len = max(sum(len(ts) for ts in sent_terms) / n, 1.0)
    df: Counter[str] = Counter()
    for ts in sent_terms:
        df.update(set(ts))
    wanted = set(query_terms)
    scores = []
    for ts in sent_terms:
        counts = Counter(ts)
        score = 0.0
        for q in wanted:
            f = counts.get(q, 0)
            if f:
                idf = math.log(1.0 + (n - df[q] + 0.5) / (df[q] + 0.5))
                score += idf * f * (k1 + 1) / (f + k1 * (1 - b + b * len(ts) / avg_len))
        scores.append(score)
    return scores


def _split_question(prompt: str) -> tuple[str | None, str]:
    """(question, context) when the prompt asks something about a text, else (None, prompt)."""
    # The last "Question:" line wins: earlier ones may be few-shot examples.
    match = None
    for found in _QUESTION.finditer(prompt):
        match = found
    if match is not None:
        context = prompt[: match.start()] + prompt[match.end() :]
        return match.group(1), _CONTEXT_LABEL.sub("", context).strip()
    lines = [line for line in prompt.strip().splitlines() if line.strip()]
    if len(lines) > 1 and lines[-1].rstrip().endswith("?"):
        return lines[-1].strip(), "\n".join(lines[:-1])
    return None, prompt


def _clean(sentence: str) -> str:
    return _MARKUP.sub("", sentence).strip()


def _check_text(value: object, method: str, name: str) -> None:
    if not isinstance(value, str):
        raise InvalidInputError(
            f"The {name!r} parameter of ExtractiveLLM.{method} must be a string. Got {type(value).__name__} instead."
        )


def _check_k(value: object, method: str, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidInputError(
            f"The {name!r} parameter of ExtractiveLLM.{method} must be an int >= 1. Got {value!r} instead."
        )
