"""LLM adapters, each imported only when named (see ``aiw._registry.BUILTIN["llm"]``).

- ``extractive``: :class:`~aiw.providers.adapters.extractive.ExtractiveLLM`, no model.
- ``openai``: :class:`~aiw.providers.adapters.openai_compatible.OpenAICompatibleLLM`, any
  OpenAI-compatible ``/chat/completions`` endpoint over httpx.
- ``transformers``: :class:`~aiw.providers.adapters.transformers_local.TransformersLLM`, a causal
  LM folder on disk.
"""

__all__: list[str] = []
