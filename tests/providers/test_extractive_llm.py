"""The extractive fallback: summaries and answers made of the input's own sentences."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiw.errors import InvalidInputError
from aiw.providers.adapters.extractive import ExtractiveLLM, split_sentences
from aiw.providers.llm import LLM, get_llm
from aiw.settings import LLMSettings

pytestmark = pytest.mark.unit

NOTE = """Claim 4411 was reported by phone on 3 May. The adjuster, Dr. Smith, inspected the kitchen.
A burst pipe caused water damage to the kitchen floor and cabinets. The customer stayed with family for two nights.
Water damage to the kitchen was estimated at 4,000 EUR. The weather that week was sunny.
Payment of the kitchen water damage was approved on 10 May."""


def test_sentences_are_split_without_breaking_abbreviations() -> None:
    sentences = split_sentences(NOTE)
    assert len(sentences) == 7
    assert sentences[1] == "The adjuster, Dr. Smith, inspected the kitchen."
    assert split_sentences("- first item\n- second item\n\n# Title\nBody text.") == [
        "- first item",
        "- second item",
        "# Title",
        "Body text.",
    ]
    assert split_sentences("") == []


def test_summary_keeps_central_sentences_in_order() -> None:
    llm = ExtractiveLLM()
    summary = llm.summarize(NOTE, max_sentences=2)
    chosen = split_sentences(summary)
    assert len(chosen) == 2
    assert all(s in split_sentences(NOTE) for s in chosen)
    assert all("water damage" in s.lower() for s in chosen)  # the topic every sentence links to
    assert "sunny" not in summary
    positions = [split_sentences(NOTE).index(s) for s in chosen]
    assert positions == sorted(positions)
    assert llm.summarize("Just one sentence.", max_sentences=3) == "Just one sentence."


def test_best_sentences_rank_by_the_question() -> None:
    llm = ExtractiveLLM()
    assert llm.best_sentences(NOTE, "When was the payment approved?", k=1) == [
        "Payment of the kitchen water damage was approved on 10 May."
    ]
    assert llm.best_sentences(NOTE, "how much was the estimate?", k=1)[0].endswith("estimated at 4,000 EUR.")
    assert len(llm.best_sentences(NOTE, "payment", k=10)) == 7
    assert llm.best_sentences("", "anything", k=2) == []


def test_the_port_answers_questions_and_summarises() -> None:
    llm = get_llm(LLMSettings(), cache_dir=Path("/nonexistent"))  # extractive is never cached
    assert isinstance(llm, ExtractiveLLM)
    assert isinstance(llm, LLM)
    assert llm.generative is False
    prompt = f"Context:\n{NOTE}\n\nQuestion: who inspected the kitchen?"
    assert llm.complete([prompt])[0].startswith("The adjuster, Dr. Smith, inspected the kitchen.")
    assert "sunny" not in llm.complete([prompt])[0]
    summary = llm.complete([NOTE])[0]
    assert len(split_sentences(summary)) == 3
    messages = [{"role": "system", "content": "be helpful"}, {"role": "user", "content": prompt}]
    assert "".join(llm.stream_chat(messages)) == llm.chat(messages)
    assert len(llm.complete([NOTE], max_tokens=5)[0].split()) == 5


def test_bad_arguments_are_refused() -> None:
    llm = ExtractiveLLM()
    with pytest.raises(InvalidInputError, match="'max_sentences'"):
        llm.summarize(NOTE, max_sentences=0)
    with pytest.raises(InvalidInputError, match="'query'"):
        llm.best_sentences(NOTE, None, k=1)
    with pytest.raises(InvalidInputError, match="prompt 1 is int"):
        llm.complete(["ok", 1])
