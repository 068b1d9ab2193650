"""An exact, faster re-implementation of vaderSentiment 3.3.2's compound score.

``compound(text)`` returns exactly ``SentimentIntensityAnalyzer().polarity_scores(text)["compound"]``
(the same floating-point operations in the same order, on the same lexicon and constants, which
are read from the installed ``vaderSentiment`` package). It is faster because it:

- skips the character-by-character emoji rewrite unless the text holds an emoji character;
- lower-cases, punctuation-strips and classifies each distinct token once per process (a
  bounded dictionary), instead of re-lower-casing the whole sentence for every word, as
  vaderSentiment's negation, idiom and "but" checks do (quadratic in the sentence length);
- returns 0.0 at once for a text with no lexicon word (its score is 0.0 by the algorithm);
- runs the rules only where they can apply: a lexicon word none of whose three predecessors is a
  rule word (booster, negation, "so", "this", "least", "no", "kind", "but") keeps its lexicon
  valence (plus the ALL-CAPS emphasis and the idioms, checked as vaderSentiment does), which is
  what vaderSentiment's rules compute for it; only the other words go through them;
- builds idiom n-grams only where one can match (a word there ends or starts a multi-word special
  case or booster), and the list of per-word scores only for a text with "but" in it;
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
        # The idiom checks compare n-grams ending at the scored word or one or two places before
        # it, and n-grams starting at it, with the multi-word special cases and boosters: an
        # n-gram can only match where its last (or first) word is one of these.
        special_ngrams = [k.split() for k in self.special if " " in k]
        booster_ngrams = [k.split() for k in self.booster if " " in k]
        self.special_last = frozenset(words[-1] for words in special_ngrams)
        self.special_first = frozenset(words[0] for words in special_ngrams)
        self.booster_last = frozenset(words[-1] for words in booster_ngrams)
        # Every word that plays any part in the scoring; the others share one kind of info.
        self.roles = frozenset(self.lexicon).union(
            self.booster, self.negate, _RULE_WORDS, self.special_last, self.special_first, self.booster_last
        )


_TABLES: _Tables | None = None
_LOCK = threading.Lock()
# raw token -> (lower-cased word, is the word all caps, does it negate, lexicon valence or None,
#               is it a booster word, does it get a score of its own: in the lexicon, not a booster,
#               can it end a multi-word special case or booster, can it start a multi-word special case,
#               is it a rule word: one that changes the valence of a lexicon word up to three places
#               after it (a booster, a negation, "so", "this", "least", "no") or whose own valence
#               depends on the next word ("kind", "no"), or "but",
#               does it matter to the scoring at all: scored or a rule word)
_Info = tuple[str, bool, bool, float | None, bool, bool, bool, bool, bool, bool]
_RULE_WORDS = frozenset({"so", "this", "least", "no", "kind", "but"})
_UPPER = itemgetter(1)
_MARKED = itemgetter(9)


class _TokenCache(dict[str, _Info]):
    """raw token -> its info; a missing token is classified (and kept) on first sight."""

    def __missing__(self, raw: str) -> _Info:
        return _token(raw, _TABLES or _tables())


_TOKENS = _TokenCache()
_INFO = _TOKENS.__getitem__


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
    # vaderSentiment's negated() lower-cases the lower-cased word again (a no-op for ASCII)
    lower2 = lower if lower.isascii() else lower.lower()
    info: _Info
    if lower not in t.roles and lower2 not in t.negate and "n't" not in lower2:
        info = (lower, word.isupper(), False, None, False, False, False, False, False, False)
    else:
        value = t.lexicon.get(lower)
        booster = lower in t.booster
        negate = lower2 in t.negate or "n't" in lower2
        scored = value is not None and not booster
        rule = booster or negate or lower in _RULE_WORDS
        info = (
            lower,
            word.isupper(),
            negate,
            value,
            booster,
            scored,
            lower in t.special_last or lower in t.booster_last,
            lower in t.special_first,
            rule,
            scored or rule,
        )
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
    infos: list[Any] = list(map(_INFO, raws))
    marked = list(compress(range(len(infos)), map(_MARKED, infos)))
    if not marked:
        return 0.0  # no word with a valence of its own: every word scores 0, and so does the text
    return _score(text, infos, marked, t)


def _score(text: str, infos: list[_Info], marked: list[int], t: _Tables) -> float:
    """vaderSentiment's scoring of the words, given their infos and the positions of the marked ones.

    Every word without a valence of its own (not in the lexicon, or a booster) scores 0; only the
    others get a valence, in order. Where no rule word stands in the three places before a word
    (and the word is no rule word itself), vaderSentiment's rules leave its lexicon valence as it
    is, but for the ALL-CAPS emphasis and the idioms: that is the fast path below. The other words
    go through :func:`_ruled_valence`, vaderSentiment's rules verbatim.
    """
    n = len(infos)
    last_rule = -4  # position of the latest rule word seen
    but_at = -1  # position of the first "but"
    valences: list[Any] = []
    positions: list[int] = []
    for i in marked:
        info = infos[i]
        if info[8]:  # a rule word
            last_rule = i
            if but_at < 0 and info[0] == "but":
                but_at = i
            if not info[5]:
                continue
            valence: Any = _ruled_valence(infos, i, n, t)
            if valence is None:
                continue  # "kind of": a dampener, not the lexicon word "kind"
        elif i - last_rule > 3:
            valence = info[3]
            if info[1] and _cap_diff(infos):
                valence = valence + t.c_incr if valence > 0 else valence - t.c_incr
            # vaderSentiment adds 0.0 for each non-lexicon word before it here: no change.
            if i > 2 and infos[i - 3][3] is None and (info[6] or info[7] or infos[i - 1][6] or infos[i - 2][6]):
                valence = _special_idioms(valence, infos, i, n, t)
        else:
            valence = _ruled_valence(infos, i, n, t)
        valences.append(valence)
        positions.append(i)
    if not valences:
        return 0.0

    if but_at >= 0:
        # vaderSentiment's _but_check, verbatim, on the whole list of scores: list.index finds
        # the first equal score, zeros of unscored words included.
        sentiments: list[Any] = [0] * n
        for i, valence in zip(positions, valences, strict=True):
            sentiments[i] = valence
        bi = but_at
        for sentiment in sentiments:
            si = sentiments.index(sentiment)
            if si < bi:
                sentiments.pop(si)
                sentiments.insert(si, sentiment * 0.5)
            elif si > bi:
                sentiments.pop(si)
                sentiments.insert(si, sentiment * 1.5)
        sum_s = float(sum(sentiments))
    else:
        # The unscored words' zeros change no partial sum: sum() starts from the int 0, so the
        # first partial sum is never -0.0, and x + 0 == x for every other float x.
        sum_s = float(sum(valences))
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


def _cap_diff(infos: list[_Info]) -> bool:
    """vaderSentiment's is_cap_diff: some but not all words are in ALL CAPS (asked only for such a word)."""
    return 0 < sum(map(_UPPER, infos)) < len(infos)


def _ruled_valence(infos: list[_Info], i: int, n: int, t: _Tables) -> Any:
    """vaderSentiment's sentiment_valence for the scored word at ``i``; ``None`` for "kind of".

    The three look-backs (start_i = 0, 1, 2) are unrolled, each with scalar_inc_dec and
    _negation_check inlined; the operations and their order are unchanged. ``is_cap_diff`` is
    only worked out where vaderSentiment uses it: for a word in ALL CAPS.
    """
    info = infos[i]
    lw = info[0]
    lex_value: float = info[3]  # type: ignore[assignment]  # not None: the word is scored
    if lw == "kind" and i < n - 1 and infos[i + 1][0] == "of":
        return None
    lexicon = t.lexicon
    booster = t.booster
    n_scalar = t.n_scalar
    c_incr = t.c_incr
    valence: Any = lex_value
    if lw == "no" and i != n - 1 and infos[i + 1][0] in lexicon:
        valence = 0.0
    if (
        (i > 0 and infos[i - 1][0] == "no")
        or (i > 1 and infos[i - 2][0] == "no")
        or (i > 2 and infos[i - 3][0] == "no" and infos[i - 1][0] in ("or", "nor"))
    ):
        valence = lex_value * n_scalar
    if info[1] and _cap_diff(infos):
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
                if prev[1] and _cap_diff(infos):
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
                    if prev[1] and _cap_diff(infos):
                        if valence > 0:
                            s += c_incr
                        else:
                            s -= c_incr
                if s != 0:
                    s = s * 0.95
                valence = valence + s
                w2, w1 = prev[0], infos[i - 1][0]
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
                        if prev[1] and _cap_diff(infos):
                            if valence > 0:
                                s += c_incr
                            else:
                                s -= c_incr
                    if s != 0:
                        s = s * 0.9
                    valence = valence + s
                    w3, w2, w1 = prev[0], infos[i - 2][0], infos[i - 1][0]
                    if (w3 == "never" and (w2 == "so" or w2 == "this")) or (w1 == "so" or w1 == "this"):
                        valence = valence * 1.25
                    elif w3 == "without" and (w2 == "doubt" or w1 == "doubt"):
                        pass  # vaderSentiment leaves the valence as it is
                    elif prev[2]:
                        valence = valence * n_scalar
                    # _special_idioms_check can only change anything where one of these words
                    # can end or start a multi-word special case or booster.
                    if info[6] or info[7] or infos[i - 1][6] or infos[i - 2][6]:
                        valence = _special_idioms(valence, infos, i, n, t)
    # _least_check(valence, words, i); "least" is not a lexicon word, so its lexicon test is moot
    if i > 1 and infos[i - 1][0] == "least" and "least" not in lexicon:
        if infos[i - 2][0] != "at" and infos[i - 2][0] != "very":
            valence = valence * n_scalar
    elif i > 0 and infos[i - 1][0] == "least" and "least" not in lexicon:
        valence = valence * n_scalar
    return valence


def _special_idioms(valence: Any, infos: list[_Info], i: int, n: int, t: _Tables) -> Any:
    """vaderSentiment's _special_idioms_check (only reached for i > 2).

    Each group of n-grams is looked up only where one of them can match: an n-gram ending at
    ``w0``, ``w1`` or ``w2`` needs that word to end a multi-word special case; one starting at ``w0``
    needs it to start one; and likewise for the multi-word boosters.
    """
    w3, w2, w1, w0 = infos[i - 3][0], infos[i - 2][0], infos[i - 1][0], infos[i][0]
    special = t.special
    ends = t.special_last
    if w0 in ends or w1 in ends or w2 in ends:
        for seq in (f"{w1} {w0}", f"{w2} {w1} {w0}", f"{w2} {w1}", f"{w3} {w2} {w1}", f"{w3} {w2}"):
            if seq in special:
                valence = special[seq]
                break
    if w0 in t.special_first:
        if n - 1 > i:
            zeroone = f"{w0} {infos[i + 1][0]}"
            if zeroone in special:
                valence = special[zeroone]
        if n - 1 > i + 1:
            zeroonetwo = f"{w0} {infos[i + 1][0]} {infos[i + 2][0]}"
            if zeroonetwo in special:
                valence = special[zeroonetwo]
    ends = t.booster_last
    if w1 in ends or w2 in ends:
        booster = t.booster
        for ngram in (f"{w3} {w2} {w1}", f"{w3} {w2}", f"{w2} {w1}"):
            if ngram in booster:
                valence = valence + booster[ngram]
    return valence
