"""An exact, faster re-implementation of vaderSentiment 3.3.2's compound score.

``compound(text)`` returns exactly ``SentimentIntensityAnalyzer().polarity_scores(text)["compound"]``
(the same floating-point operations in the same order, on the same lexicon and constants, which
are read from the installed ``vaderSentiment`` package). It is faster because it:

- skips the character-by-character emoji rewrite unless the text holds an emoji character;
- lower-cases, punctuation-strips and classifies each distinct token once per process (a
  bounded dictionary), instead of re-lower-casing the whole sentence for every word, as
  vaderSentiment's negation, idiom and "but" checks do (quadratic in the sentence length);
- returns 0.0 at once for a text with no lexicon word (its score is 0.0 by the algorithm);
- computes only the compound score (not pos/neu/neg).

Every rule of vaderSentiment is kept, including its quirks: the "but" rule locates each score
with ``list.index`` (so equal scores are found at their first position), "no" negates up to three
words ahead, and idiom checks only run where vaderSentiment runs them. The tests compare both on
the shared review data and on generated rule-exercising sentences
(:mod:`aiw.testing.vader_sentences`); ``benchmarks/bench_sentiment.py`` on 100,000 more and on
every benchmark row.
"""

from __future__ import annotations

import string
import threading
from itertools import compress
from operator import itemgetter
from typing import Any

__all__ = ["compound"]

_PUNCT = string.punctuation
_TOKEN_CACHE_MAX = 500_000


class _Tables:
    """The lexicon and rule tables, loaded once from the installed vaderSentiment."""

    def __init__(self) -> None:
        from vaderSentiment import vaderSentiment as vs

        analyzer = vs.SentimentIntensityAnalyzer()
        self.lexicon: dict[str, float] = analyzer.lexicon
        self.emojis: dict[str, str] = analyzer.emojis
        self.emoji_chars = frozenset(k for k in analyzer.emojis if len(k) == 1)
        self.booster: dict[str, float] = vs.BOOSTER_DICT
        self.special: dict[str, float] = vs.SPECIAL_CASES
        self.negate = frozenset(vs.NEGATE)
        self.n_scalar: float = vs.N_SCALAR
        self.c_incr: float = vs.C_INCR
        self.normalize = vs.normalize
        # Words that occur in a multi-word special case or booster: idiom checks need one of them.
        self.special_words = frozenset(w for k in self.special for w in k.split())
        self.booster_ngram_words = frozenset(w for k in self.booster if " " in k for w in k.split())


_TABLES: _Tables | None = None
_LOCK = threading.Lock()
# raw token -> (lower-cased word, is the word all caps, does it negate, lexicon valence or None,
#               is it a booster word, does it get a score of its own: in the lexicon, not a booster,
#               is it part of a special-case idiom, is it part of a multi-word booster)
_Info = tuple[str, bool, bool, float | None, bool, bool, bool, bool]
_TOKENS: dict[str, _Info] = {}
_LOWER = itemgetter(0)
_UPPER = itemgetter(1)
_SCORED = itemgetter(5)


def _tables() -> _Tables:
    global _TABLES
    if _TABLES is None:
        with _LOCK:
            if _TABLES is None:
                _TABLES = _Tables()
    return _TABLES


def _token(raw: str, t: _Tables) -> _Info:
    stripped = raw.strip(_PUNCT)
    word = raw if len(stripped) <= 2 else stripped  # vaderSentiment keeps short tokens: emoticons
    lower = word.lower()
    lower2 = lower.lower()  # vaderSentiment's negated() lower-cases the lower-cased word again
    value = t.lexicon.get(lower)
    booster = lower in t.booster
    info = (lower, word.isupper(), lower2 in t.negate or "n't" in lower2, value, booster,
            value is not None and not booster, lower in t.special_words, lower in t.booster_ngram_words)
    if len(_TOKENS) >= _TOKEN_CACHE_MAX:
        _TOKENS.clear()
    _TOKENS[raw] = info
    return info


def _replace_emojis(text: str, emojis: dict[str, str]) -> str:
    """vaderSentiment's emoji rewrite, character by character."""
    parts: list[str] = []
    prev_space = True
    for ch in text:
        description = emojis.get(ch)
        if description is not None:
            if not prev_space:
                parts.append(" ")
            parts.append(description)
            prev_space = False
        else:
            parts.append(ch)
            prev_space = ch == " "
    return "".join(parts)


def compound(text: str) -> float:
    """The VADER compound score of ``text``, identical to vaderSentiment's."""
    t = _TABLES or _tables()
    if not text.isascii() and not t.emoji_chars.isdisjoint(text):
        text = _replace_emojis(text, t.emojis)
    # vaderSentiment strips the text here; split() and the '!'/'?' counts ignore that whitespace.
    raws = text.split()
    if not raws:
        return 0.0
    infos: list[Any] = list(map(_TOKENS.get, raws))
    if None in infos:
        infos = [info or _token(raw, t) for raw, info in zip(raws, infos, strict=True)]
    scored = list(compress(range(len(infos)), map(_SCORED, infos)))
    if not scored:
        return 0.0  # no word with a valence of its own: every word scores 0, and so does the text
    return _score(text, infos, scored, t)


def _score(text: str, infos: list[_Info], scored: list[int], t: _Tables) -> float:
    """vaderSentiment's scoring of the words, given their infos and the indices of the scored ones."""
    n = len(infos)
    lower = list(map(_LOWER, infos))
    allcaps = sum(map(_UPPER, infos))
    is_cap_diff = 0 < allcaps < n
    lexicon = t.lexicon
    booster = t.booster
    n_scalar = t.n_scalar
    c_incr = t.c_incr
    # Words without a valence of their own (not in the lexicon, or boosters) score 0: only the
    # others go through the rules, in order. The three look-backs of vaderSentiment's
    # sentiment_valence (start_i = 0, 1, 2) are unrolled below, each with scalar_inc_dec and
    # _negation_check inlined; the operations and their order are unchanged.
    sentiments: list[Any] = [0] * n
    for i in scored:
        info = infos[i]
        lw = info[0]
        lex_value: float = info[3]  # type: ignore[assignment]  # not None: the word is scored
        if lw == "kind" and i < n - 1 and lower[i + 1] == "of":
            continue  # "kind of" is a dampener, not the lexicon word "kind"
        valence: Any = lex_value
        if lw == "no" and i != n - 1 and lower[i + 1] in lexicon:
            valence = 0.0
        if (i > 0 and lower[i - 1] == "no") or (i > 1 and lower[i - 2] == "no") \
                or (i > 2 and lower[i - 3] == "no" and lower[i - 1] in ("or", "nor")):
            valence = lex_value * n_scalar
        if info[1] and is_cap_diff:
            if valence > 0:
                valence += c_incr
            else:
                valence -= c_incr
        if i > 0:
            prev = infos[i - 1]
            if prev[3] is None:  # start_i = 0
                s = 0.0
                if prev[4]:
                    s = booster[prev[0]]
                    if valence < 0:
                        s *= -1
                    if prev[1] and is_cap_diff:
                        if valence > 0:
                            s += c_incr
                        else:
                            s -= c_incr
                valence = valence + s
                if prev[2]:
                    valence = valence * n_scalar
            if i > 1:
                prev = infos[i - 2]
                if prev[3] is None:  # start_i = 1
                    s = 0.0
                    if prev[4]:
                        s = booster[prev[0]]
                        if valence < 0:
                            s *= -1
                        if prev[1] and is_cap_diff:
                            if valence > 0:
                                s += c_incr
                            else:
                                s -= c_incr
                    if s != 0:
                        s = s * 0.95
                    valence = valence + s
                    w2, w1 = prev[0], lower[i - 1]
                    if w2 == "never" and (w1 == "so" or w1 == "this"):
                        valence = valence * 1.25
                    elif w2 == "without" and w1 == "doubt":
                        pass  # vaderSentiment leaves the valence as it is
                    elif prev[2]:
                        valence = valence * n_scalar
                if i > 2:
                    prev = infos[i - 3]
                    if prev[3] is None:  # start_i = 2
                        s = 0.0
                        if prev[4]:
                            s = booster[prev[0]]
                            if valence < 0:
                                s *= -1
                            if prev[1] and is_cap_diff:
                                if valence > 0:
                                    s += c_incr
                                else:
                                    s -= c_incr
                        if s != 0:
                            s = s * 0.9
                        valence = valence + s
                        w3, w2, w1 = prev[0], lower[i - 2], lower[i - 1]
                        if (w3 == "never" and (w2 == "so" or w2 == "this")) or (w1 == "so" or w1 == "this"):
                            valence = valence * 1.25
                        elif w3 == "without" and (w2 == "doubt" or w1 == "doubt"):
                            pass  # vaderSentiment leaves the valence as it is
                        elif prev[2]:
                            valence = valence * n_scalar
                        # _special_idioms_check can only change anything when one of these words
                        # belongs to an idiom or a multi-word booster.
                        before1, before2 = infos[i - 1], infos[i - 2]
                        if before1[6] or before2[6] or info[6] or before2[7]:
                            valence = _special_idioms(valence, lower, i, n, t)
        # _least_check(valence, words, i); "least" is not a lexicon word, so its lexicon test is moot
        if i > 1 and lower[i - 1] == "least" and lower[i - 1] not in lexicon:
            if lower[i - 2] != "at" and lower[i - 2] != "very":
                valence = valence * n_scalar
        elif i > 0 and lower[i - 1] == "least" and lower[i - 1] not in lexicon:
            valence = valence * n_scalar
        sentiments[i] = valence

    if "but" in lower:
        # vaderSentiment's _but_check, verbatim: list.index finds the first equal score.
        bi = lower.index("but")
        for sentiment in sentiments:
            si = sentiments.index(sentiment)
            if si < bi:
                sentiments.pop(si)
                sentiments.insert(si, sentiment * 0.5)
            elif si > bi:
                sentiments.pop(si)
                sentiments.insert(si, sentiment * 1.5)

    sum_s = float(sum(sentiments))
    if sum_s != 0:
        ep_count = text.count("!")
        if ep_count > 4:
            ep_count = 4
        ep_amplifier = ep_count * 0.292
        qm_count = text.count("?")
        qm_amplifier: float = 0
        if qm_count > 1:
            qm_amplifier = qm_count * 0.18 if qm_count <= 3 else 0.96
        punct = ep_amplifier + qm_amplifier
        if sum_s > 0:
            sum_s += punct
        elif sum_s < 0:
            sum_s -= punct
    return round(t.normalize(sum_s), 4)


def _special_idioms(valence: Any, lower: list[str], i: int, n: int, t: _Tables) -> Any:
    """vaderSentiment's _special_idioms_check (only reached for i > 2)."""
    w3, w2, w1, w0 = lower[i - 3], lower[i - 2], lower[i - 1], lower[i]
    special = t.special
    sw = t.special_words
    # Every n-gram below holds w1 or w2 (or w0 for the forward ones): skip the string building
    # when none of them can be part of a special case.
    if w1 in sw or w2 in sw:
        for seq in (f"{w1} {w0}", f"{w2} {w1} {w0}", f"{w2} {w1}", f"{w3} {w2} {w1}", f"{w3} {w2}"):
            if seq in special:
                valence = special[seq]
                break
    if w0 in sw:
        if n - 1 > i:
            zeroone = f"{w0} {lower[i + 1]}"
            if zeroone in special:
                valence = special[zeroone]
        if n - 1 > i + 1:
            zeroonetwo = f"{w0} {lower[i + 1]} {lower[i + 2]}"
            if zeroonetwo in special:
                valence = special[zeroonetwo]
    if w2 in t.booster_ngram_words:
        booster = t.booster
        for ngram in (f"{w3} {w2} {w1}", f"{w3} {w2}", f"{w2} {w1}"):
            if ngram in booster:
                valence = valence + booster[ngram]
    return valence
