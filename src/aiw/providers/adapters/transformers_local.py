"""A local Hugging Face causal language model, loaded from a folder on disk (never downloaded).

The folder is what ``save_pretrained`` writes (config, weights, tokenizer). Generation is greedy
(deterministic) at temperature 0 and sampled above it. When the tokenizer has a chat template the
conversation is rendered with it; otherwise a plain prompt is built (the prompt itself for a
single user turn, a ``Role: text`` transcript for a conversation).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from aiw.errors import ConfigError, InvalidInputError, PermanentBackendError
from aiw.providers.llm import Message, check_messages, check_prompts
from aiw.settings import LLMSettings

__all__ = ["TransformersLLM"]

_LOADED: dict[str, tuple[Any, Any]] = {}
_LOADED_LOCK = threading.Lock()


def _load(path: Path) -> tuple[Any, Any]:
    """(model, tokenizer) from ``path``, loaded once per process."""
    key = str(path)
    with _LOADED_LOCK:
        if key not in _LOADED:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            try:
                tokenizer = AutoTokenizer.from_pretrained(key, local_files_only=True)
                model = AutoModelForCausalLM.from_pretrained(key, local_files_only=True, dtype=torch.float32)
            except Exception as exc:
                raise ConfigError(
                    f"Cannot load a causal language model from {key!r}: {exc}",
                    hint="AIW_LLM__MODEL_PATH must be a folder written by save_pretrained "
                    "(config, weights and tokenizer)",
                ) from exc
            model.eval()
            _LOADED[key] = (model, tokenizer)
        return _LOADED[key]


class TransformersLLM:
    """The :class:`~aiw.providers.llm.LLM` over a local transformers causal LM, on the CPU.

    Args:
        settings: The llm section: ``model_path`` (required), ``temperature``, ``max_tokens``.

    Raises:
        ConfigError: ``model_path`` is empty, missing, or holds no loadable model.
    """

    def __init__(self, settings: LLMSettings) -> None:
        if not settings.model_path.strip():
            raise ConfigError(
                "The transformers LLM adapter needs a model folder: AIW_LLM__MODEL_PATH is empty",
                hint="set AIW_LLM__MODEL_PATH to a folder written by save_pretrained",
            )
        path = Path(settings.model_path).expanduser()
        if not path.is_dir():
            raise ConfigError(
                f"AIW_LLM__MODEL_PATH={str(path)!r} is not a folder",
                hint="point it at a folder written by save_pretrained",
            )
        self.settings = settings
        self.path = path.resolve()
        self.model_id = f"transformers:{self.path.name}"
        self._model, self._tokenizer = _load(self.path)
        # One generation at a time: CPU inference already uses every core.
        self._lock = threading.Lock()

    @property
    def generative(self) -> bool:
        """Always ``True``."""
        return True

    # -- prompt rendering and generation -----------------------------------------------------------
    def _render(self, messages: list[Message]) -> tuple[str, bool]:
        """(prompt text, whether the text already carries the special tokens)."""
        tokenizer = self._tokenizer
        if getattr(tokenizer, "chat_template", None):
            text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            return str(text), True
        if len(messages) == 1 and messages[0]["role"] == "user":
            return messages[0]["content"], False
        if len(messages) == 2 and messages[0]["role"] == "system" and messages[1]["role"] == "user":
            return f"{messages[0]['content']}\n\n{messages[1]['content']}", False
        lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
        return "\n".join([*lines, "Assistant:"]), False

    def _inputs(self, messages: list[Message], max_new: int) -> dict[str, Any]:
        import torch

        text, templated = self._render(messages)
        ids = self._tokenizer(text, add_special_tokens=not templated, return_tensors="pt")["input_ids"]
        if ids.shape[1] == 0:
            start = self._tokenizer.bos_token_id
            if start is None:
                start = self._tokenizer.eos_token_id
            if start is None:
                raise InvalidInputError(
                    "TransformersLLM cannot generate from an empty prompt with a tokenizer "
                    "that has neither a BOS nor an EOS token; give it some text."
                )
            ids = torch.tensor([[start]])
        limit = getattr(self._model.config, "max_position_embeddings", None) or getattr(
            self._model.config, "n_positions", None
        )
        if limit:
            if max_new >= limit:
                raise InvalidInputError(
                    f"max_tokens={max_new} leaves no room for the prompt in "
                    f"{self.model_id}'s context of {limit} tokens; lower AIW_LLM__MAX_TOKENS."
                )
            ids = ids[:, -(limit - max_new) :]  # keep the end of an over-long prompt: it holds the question
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    def _generate_kwargs(self, temperature: float | None, max_tokens: int | None) -> dict[str, Any]:
        temp = self.settings.temperature if temperature is None else temperature
        tokens = self.settings.max_tokens if max_tokens is None else max_tokens
        if not isinstance(temp, int | float) or isinstance(temp, bool) or not 0 <= temp <= 2:
            raise InvalidInputError(
                f"The 'temperature' parameter of TransformersLLM must be a number in [0, 2]. Got {temp!r} instead."
            )
        if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 1:
            raise InvalidInputError(
                f"The 'max_tokens' parameter of TransformersLLM must be an int >= 1. Got {tokens!r} instead."
            )
        pad = self._tokenizer.pad_token_id
        if pad is None:
            pad = self._tokenizer.eos_token_id
        kwargs: dict[str, Any] = {"max_new_tokens": tokens, "pad_token_id": pad}
        if temp > 0:
            kwargs.update(do_sample=True, temperature=float(temp), top_k=0, top_p=1.0)
        else:
            kwargs.update(do_sample=False, temperature=None, top_k=None, top_p=None)
        return kwargs

    def _generate(self, messages: list[Message], temperature: float | None, max_tokens: int | None) -> str:
        import torch

        kwargs = self._generate_kwargs(temperature, max_tokens)
        inputs = self._inputs(messages, kwargs["max_new_tokens"])
        with self._lock, torch.inference_mode():
            try:
                output = self._model.generate(**inputs, **kwargs)
            except (RuntimeError, ValueError) as exc:
                raise PermanentBackendError(f"{self.model_id} failed to generate: {exc}") from exc
        new_tokens = output[0, inputs["input_ids"].shape[1] :]
        return str(self._tokenizer.decode(new_tokens, skip_special_tokens=True))

    # -- the LLM port ------------------------------------------------------------------------------
    def complete(
        self,
        prompts: Sequence[str],
        *,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> list[str]:
        """One answer per prompt, in order (generated one after the other)."""
        items = check_prompts(prompts, type(self).__name__)
        head: list[Message] = [{"role": "system", "content": system}] if system else []
        return [self._generate([*head, {"role": "user", "content": p}], temperature, max_tokens) for p in items]

    def chat(self, messages: list[Message], *, temperature: float | None = None, max_tokens: int | None = None) -> str:
        """The model's next message after ``messages``."""
        msgs = check_messages(messages, f"{type(self).__name__}.chat")
        return self._generate(msgs, temperature, max_tokens)

    def stream_chat(
        self, messages: list[Message], *, temperature: float | None = None, max_tokens: int | None = None
    ) -> Iterator[str]:
        """The model's next message, in decoded text segments as they are generated."""
        import torch
        from transformers import TextIteratorStreamer

        msgs = check_messages(messages, f"{type(self).__name__}.stream_chat")
        kwargs = self._generate_kwargs(temperature, max_tokens)
        inputs = self._inputs(msgs, kwargs["max_new_tokens"])
        streamer = TextIteratorStreamer(
            self._tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=max(60.0, self.settings.timeout_s)
        )
        failure: list[BaseException] = []

        def run() -> None:
            with self._lock, torch.inference_mode():
                try:
                    self._model.generate(**inputs, **kwargs, streamer=streamer)
                except BaseException as exc:  # re-raised in the caller's thread below
                    failure.append(exc)
                    streamer.end()

        worker = threading.Thread(target=run, name="aiw-llm-stream", daemon=True)
        worker.start()
        for piece in streamer:
            if piece:
                yield piece
        worker.join()
        if failure:
            raise PermanentBackendError(f"{self.model_id} failed to generate: {failure[0]}") from failure[0]

    def __repr__(self) -> str:
        return f"TransformersLLM(model_path={str(self.path)!r})"
