"""Model providers shared by every capability: embeddings, sentiment and language models.

Ports (``typing.Protocol``) sit beside their role; adapters are in :mod:`aiw.providers.adapters`.
Nothing heavy is imported here: torch, sentence-transformers, transformers and vaderSentiment
load only when a provider is first used.

- :func:`get_embedder` -> :class:`Embedder` (all-MiniLM-L6-v2, cached by text SHA-256)
- :func:`sentiment_scores` -> VADER compound scores, identical to vaderSentiment's, on every core
- :func:`get_llm` -> :class:`LLM` (extractive fallback, OpenAI-compatible endpoint, local model)
"""

from aiw.providers.embeddings import (
    CachedEmbedder,
    Embedder,
    SentenceEmbedder,
    count_tokens,
    get_embedder,
    get_tokenizer,
)
from aiw.providers.llm import LLM, CachedLLM, get_llm
from aiw.providers.sentiment import VaderSentiment, sentiment_scores

__all__ = [
    "LLM",
    "CachedEmbedder",
    "CachedLLM",
    "Embedder",
    "SentenceEmbedder",
    "VaderSentiment",
    "count_tokens",
    "get_embedder",
    "get_llm",
    "get_tokenizer",
    "sentiment_scores",
]
