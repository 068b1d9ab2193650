"""BM25 (analysis, formula, weights) and the chunker (structure, sizes in model tokens, overlap)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from aiw.errors import InvalidInputError
from aiw.rag.bm25 import BM25, analyze
from aiw.rag.chunking import Chunker, sections, split_sentences
from aiw.rag.documents import Document, content_hash

pytestmark = pytest.mark.unit


def test_analyze_lowercases_drops_stopwords_and_stems() -> None:
    assert analyze("The Flows were RUNNING over swept wings!") == ["flow", "run", "swept", "wing"]
    assert analyze("") == [] and analyze("the of and") == []
    assert analyze("Zürich's café") == ["zürich", "café"]


def test_bm25_matches_the_formula_by_hand() -> None:
    texts = ["flood flood damage", "fire damage", "car accident", "flood"]
    bm = BM25(k1=1.2, b=0.75).fit(texts)
    scores = bm.scores("flood")
    # doc 0: tf=2, len=3; avgdl = (3+2+2+1)/4 = 2; df(flood)=2 of N=4
    idf = math.log(1 + (4 - 2 + 0.5) / (2 + 0.5))
    norm = 1.2 * (1 - 0.75 + 0.75 * 3 / 2)
    assert scores[0] == pytest.approx(idf * 2 * 2.2 / (2 + norm))
    assert scores[1] == 0 and scores[2] == 0
    assert bm.search("flood", 10) == [(3, pytest.approx(scores[3])), (0, pytest.approx(scores[0]))]
    weighted = bm.scores({"flood": 2.0, "damag": 0.5})
    assert weighted[1] == pytest.approx(0.5 * bm.scores("damage")[1])
    assert weighted[0] == pytest.approx(2 * scores[0] + 0.5 * bm.scores("damage")[0])
    mask = np.array([True, True, True, False])
    assert [i for i, _ in bm.search("flood", 10, mask=mask)] == [0]


def test_bm25_parameters_and_state_are_checked() -> None:
    with pytest.raises(InvalidInputError, match="'b' parameter"):
        BM25(b=2)
    with pytest.raises(InvalidInputError, match="not fitted"):
        BM25().scores("x")
    with pytest.raises(InvalidInputError):
        BM25().fit(["a"]).search("a", 0)


def test_sections_follow_heading_levels_and_skip_code_fences() -> None:
    text = "intro line\n# Policy\n## Cover\ncover text\n```\n# not a heading\n```\n## Exclusions\nnone\n# Annex\nend"
    got = [(s.path, s.text.splitlines()[0]) for s in sections(text)]
    assert got == [
        ((), "intro line"),
        (("Policy", "Cover"), "cover text"),
        (("Policy", "Exclusions"), "none"),
        (("Annex",), "end"),
    ]


def test_split_sentences() -> None:
    assert split_sentences('One. Two? Three! "Four." five') == ["One.", "Two?", "Three!", '"Four."', "five"]


def _words(texts):  # type: ignore[no-untyped-def]
    return [len(t.split()) for t in texts]


def _doc(text: str) -> Document:
    return Document(id="d1", source="/x/d1.md", title="Doc", text=text, content_hash=content_hash(text))


def test_chunker_respects_size_overlap_and_keeps_heading_paths() -> None:
    sentences = " ".join(f"Sentence number {i} talks about cover." for i in range(60))  # 6 words each
    text = f"# Home\n## Cover\n{sentences}\n\n## Claims\nShort section."
    chunker = Chunker(chunk_tokens=40, chunk_overlap=12, count_tokens=_words)
    chunks = chunker.split(_doc(text))
    cover = [c for c in chunks if c.heading_path == ("Home", "Cover")]
    assert len(cover) >= 9 and all(len(c.text.split()) <= 40 for c in cover)
    # consecutive chunks share whole sentences, up to the overlap
    for a, b in itertools.pairwise(cover):
        first_of_b = b.text.split(". ")[0]
        assert first_of_b in a.text
    assert chunks[-1].heading_path == ("Home", "Claims") and chunks[-1].text == "Short section."
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert {c.n_chunks for c in chunks} == {len(chunks)}
    assert chunks[0].id == f"d1-{_doc(text).content_hash[:12]}-00000"
    assert chunker.split(_doc(text)) == chunks  # deterministic
    every = " ".join(c.text for c in cover)
    assert all(f"number {i} " in every for i in range(60))


def test_chunker_cuts_overlong_sentences_by_words_with_the_model_tokenizer() -> None:
    from aiw.providers.embeddings import count_tokens

    long_sentence = " ".join(["aeroelastic"] * 300)
    chunker = Chunker(chunk_tokens=64, chunk_overlap=8)
    chunks = chunker.split(_doc(f"# T\n{long_sentence}"))
    assert len(chunks) > 1
    assert all(n <= 64 for n in count_tokens([c.text for c in chunks]))
    assert sum(c.text.count("aeroelastic") for c in chunks) >= 300


def test_chunker_headings_only_document_is_one_chunk() -> None:
    chunks = Chunker(count_tokens=_words).split(_doc("# Only a title"))
    assert len(chunks) == 1 and "Only a title" in chunks[0].text


def test_chunker_parameters_are_checked() -> None:
    with pytest.raises(InvalidInputError, match="chunk_tokens"):
        Chunker(chunk_tokens=8)
    with pytest.raises(InvalidInputError, match="chunk_overlap"):
        Chunker(chunk_tokens=64, chunk_overlap=40)
