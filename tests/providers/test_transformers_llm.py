"""The local transformers adapter on a tiny GPT-2 built from a config in the test (no downloads)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiw.errors import ConfigError, InvalidInputError
from aiw.providers.llm import CachedLLM, get_llm
from aiw.settings import LLMSettings

pytestmark = pytest.mark.unit

CORPUS = """the claim was approved after the adjuster visited the house
the policy covers water damage and storm damage to the roof
a customer reported a stolen car and the claim is under review
payments are made within ten days of approval
the adjuster found no evidence of fraud in the claim""".splitlines()

# Made of corpus words, so that the tiny model's answer is made of known words too.
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['content'] }} {% endfor %}{% if add_generation_prompt %}the adjuster{% endif %}"
)


def build_tiny_gpt2(folder: Path, *, chat_template: str | None = None) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    special = ["[UNK]", "[PAD]", "[BOS]", "[EOS]"]
    raw = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.train_from_iterator(CORPUS, trainers.WordLevelTrainer(special_tokens=special))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, unk_token="[UNK]", pad_token="[PAD]", bos_token="[BOS]", eos_token="[EOS]"
    )
    if chat_template:
        tokenizer.chat_template = chat_template
    torch.manual_seed(0)
    config = GPT2Config(
        n_layer=2,
        n_head=2,
        n_embd=32,
        n_positions=64,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_gpt2(tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.fixture(scope="module")
def tiny_chat_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_gpt2(tmp_path_factory.mktemp("tiny-gpt2-chat"), chat_template=CHAT_TEMPLATE)


def settings_for(path: Path, **overrides: object) -> LLMSettings:
    return LLMSettings(adapter="transformers", model_path=str(path), max_tokens=6, **overrides)


def test_greedy_generation_is_deterministic_and_bounded(tiny_model: Path) -> None:
    llm = get_llm(settings_for(tiny_model, cache=False))
    prompts = ["the claim was", "the policy covers", ""]
    first = llm.complete(prompts)
    second = llm.complete(list(reversed(prompts)))
    assert first == list(reversed(second))  # same prompt, same answer, whatever the batch order
    assert len(first) == 3
    vocabulary = set(" ".join(CORPUS).split())
    for answer in first[:2]:
        assert 1 <= len(answer.split()) <= 6  # the WordLevel vocabulary: one word per token
        assert set(answer.split()) <= vocabulary
    assert len(first[2].split()) <= 6  # an empty prompt starts from the BOS token
    assert llm.complete(["the claim was"], max_tokens=2)[0].split() == first[0].split()[:2]
    assert llm.generative
    assert llm.model_id == f"transformers:{tiny_model.name}"


def test_chat_and_stream_agree(tiny_model: Path) -> None:
    llm = get_llm(settings_for(tiny_model, cache=False))
    messages = [{"role": "system", "content": "answer briefly"}, {"role": "user", "content": "the adjuster"}]
    answer = llm.chat(messages)
    assert answer
    assert "".join(llm.stream_chat(messages)).split() == answer.split()


def test_sampling_above_zero_temperature_stays_bounded(tiny_model: Path) -> None:
    llm = get_llm(settings_for(tiny_model, cache=False))
    for answer in llm.complete(["the claim"] * 3, temperature=1.5, max_tokens=4):
        assert len(answer.split()) <= 4


def test_the_chat_template_is_used_when_present(tiny_chat_model: Path) -> None:
    from aiw.providers.adapters.transformers_local import TransformersLLM

    llm = TransformersLLM(settings_for(tiny_chat_model))
    text, templated = llm._render([{"role": "user", "content": "the claim"}])
    assert templated and text == "the claim the adjuster"
    assert llm.chat([{"role": "user", "content": "the claim"}])


def test_cached_transformers_answers_once(tiny_model: Path, tmp_path: Path) -> None:
    llm = get_llm(settings_for(tiny_model), tmp_path)
    assert isinstance(llm, CachedLLM)
    first = llm.complete(["the house", "the house"])
    assert llm.misses == 1
    assert llm.complete(["the house"]) == first[:1]
    assert llm.hits == 1


def test_config_errors_name_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="AIW_LLM__MODEL_PATH is empty"):
        get_llm(LLMSettings(adapter="transformers"))
    with pytest.raises(ConfigError, match="is not a folder"):
        get_llm(LLMSettings(adapter="transformers", model_path=str(tmp_path / "missing")))
    with pytest.raises(ConfigError, match="Cannot load a causal language model"):
        get_llm(LLMSettings(adapter="transformers", model_path=str(tmp_path)))


def test_max_tokens_beyond_the_context_is_refused(tiny_model: Path) -> None:
    llm = get_llm(settings_for(tiny_model, cache=False))
    with pytest.raises(InvalidInputError, match="context of 64 tokens"):
        llm.complete(["the claim"], max_tokens=64)
