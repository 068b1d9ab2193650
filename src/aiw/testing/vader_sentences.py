"""Generated sentences that exercise every rule of VADER, for checking re-implementations.

``tricky_sentences(n, seed)`` mixes lexicon words with boosters and dampeners, negations ("not",
"n't", "never so", "without doubt", "no ... or"), "least", "kind of", the special-case idioms,
"but", ALL-CAPS emphasis, emoticons, emojis, repeated "!" and "?", stray punctuation and
non-ASCII letters, in random orders, so that a faithful re-implementation of
``polarity_scores`` must agree on all of them.
"""

from __future__ import annotations

import random

__all__ = ["tricky_sentences"]

_FILLERS = (
    "the",
    "a",
    "service",
    "claim",
    "policy",
    "agent",
    "was",
    "is",
    "it",
    "this",
    "that",
    "my",
    "car",
    "house",
    "at",
    "of",
    "or",
    "nor",
    "so",
    "doubt",
    "very",
    "least",
    "kind",
    "sort",
    "just",
    "enough",
    "never",
    "without",
    "no",
    "but",
    "BUT",
    "and",
    "to",
    "for",
    "die",
    "kiss",
    "death",
    "bus",
    "stop",
    "yeah",
    "right",
    "beating",
    "heart",
    "bomb",
    "shit",
    "bad",
    "ass",
    "cut",
    "mustard",
    "upper",
    "hand",
    "café",
    "naïve",
    "straße",
    "İstanbul",
    "ÉNORME",
    "x",
    "I",
    "OK",
    "ok",
)
_NEGATIONS = (
    "not",
    "isn't",
    "don't",
    "never",
    "without",
    "nothing",
    "cannot",
    "won't",
    "ain't",
    "nope",
    "uh-uh",
    "seldom",
    "despite",
    "wasn't",
    "doesnt",
    "can't",
    "nor",
    "none",
)
_SPECIAL = (
    "the shit",
    "the bomb",
    "bad ass",
    "badass",
    "bus stop",
    "yeah right",
    "kiss of death",
    "to die for",
    "beating heart",
    "kind of",
    "sort of",
    "just enough",
    "at least",
    "very least",
    "never so",
    "never this",
    "without a doubt",
    "without doubt",
    "no good or bad",
    "not so",
)
_EMOTICONS = (":)", ":(", ":D", ":-)", ";)", ":P", "<3", ":/", "xD", ":'(", "(:", "^_^")
_EMOJIS = ("😀", "😡", "💘", "👍", "👎", "😁", "☹️", "🙂", "😢", "🎉", "🧒🏻", "💩")
_PUNCT = ("!", "!!", "!!!!!", "?", "??", "???", "????", "?!", ".", "...", ",", ";", "-", "'", '"', "(", ")")


def tricky_sentences(n: int, seed: int = 0) -> list[str]:
    """``n`` random sentences built to hit VADER's rules (deterministic for a seed)."""
    from vaderSentiment.vaderSentiment import BOOSTER_DICT, SentimentIntensityAnalyzer

    rng = random.Random(seed)
    lexicon = sorted(SentimentIntensityAnalyzer().lexicon)
    boosters = sorted(BOOSTER_DICT)
    out: list[str] = []
    for _ in range(n):
        words: list[str] = []
        for _ in range(rng.randint(0, 22)):
            roll = rng.random()
            if roll < 0.30:
                word = rng.choice(lexicon)
            elif roll < 0.42:
                word = rng.choice(boosters)
            elif roll < 0.52:
                word = rng.choice(_NEGATIONS)
            elif roll < 0.60:
                word = rng.choice(_SPECIAL)
            elif roll < 0.64:
                word = rng.choice(_EMOTICONS)
            elif roll < 0.67:
                word = rng.choice(_EMOJIS)
            else:
                word = rng.choice(_FILLERS)
            shape = rng.random()
            if shape < 0.12:
                word = word.upper()
            elif shape < 0.18:
                word = word.capitalize()
            if rng.random() < 0.15:
                word = word + rng.choice(_PUNCT)
            if rng.random() < 0.05:
                word = rng.choice(_PUNCT) + word
            if rng.random() < 0.03 and words:
                words[-1] = words[-1] + rng.choice(_EMOJIS)  # an emoji glued to a word
                continue
            words.append(word)
        sentence = " ".join(words)
        if rng.random() < 0.3:
            sentence += rng.choice(_PUNCT)
        if rng.random() < 0.05:
            sentence = rng.choice(("  ", "\t", "\n")) + sentence + rng.choice(("  ", "\n"))
        out.append(sentence)
    return out
