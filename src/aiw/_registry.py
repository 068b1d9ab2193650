"""Adapter short name -> class, for every pluggable role (index, llm, ...).

Built-in adapters are listed here as dotted paths, so that naming one imports only it. A user can
name any class by dotted path (``mypkg.indexes:MyIndex``) or publish one under the entry point
group ``aiw.<role>`` (``aiw.index``, ``aiw.llm`` ...).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from aiw.errors import ConfigError

__all__ = ["BUILTIN", "known", "resolve"]

BUILTIN: dict[str, dict[str, str]] = {
    "llm": {
        "extractive": "aiw.providers.adapters.extractive:ExtractiveLLM",
        "openai": "aiw.providers.adapters.openai_compatible:OpenAICompatibleLLM",
        "transformers": "aiw.providers.adapters.transformers_local:TransformersLLM",
    },
    "index": {
        "lancedb": "aiw.rag.adapters.lancedb_index:LanceDBIndex",
        "chroma": "aiw.rag.adapters.chroma_index:ChromaIndex",
        "qdrant": "aiw.rag.adapters.qdrant_index:QdrantIndex",
        "memory": "aiw.rag.adapters.memory_index:InMemoryIndex",
    },
    "engine": {
        "local": "aiw.mlops.serving.batch:LocalEngine",
        "ray": "aiw.mlops.serving.batch:RayEngine",
    },
}
"""Built-in adapters per role: short name -> ``module:Class``."""


def known(role: str) -> list[str]:
    """Short names available for ``role``: built-ins and installed entry points."""
    names = set(BUILTIN.get(role, {}))
    names.update(ep.name for ep in entry_points(group=f"aiw.{role}"))
    return sorted(names)


def _import(path: str) -> Any:
    module_name, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
    module = importlib.import_module(module_name)
    return getattr(module, attr)


def resolve(role: str, name: str) -> Any:
    """The class registered as ``name`` for ``role``.

    Args:
        role: The pluggable role (``llm``, ``index``, ``engine``).
        name: A short name, a dotted path ``package.module:Class`` or an entry point name.

    Raises:
        ConfigError: the name is unknown or its module cannot be imported.
    """
    name = name.strip()
    path = BUILTIN.get(role, {}).get(name)
    if path is None:
        found = [ep for ep in entry_points(group=f"aiw.{role}") if ep.name == name]
        if found:
            try:
                return found[0].load()
            except Exception as exc:
                raise ConfigError(f"The {role} adapter {name!r} failed to load: {exc}") from exc
        if "." in name or ":" in name:
            path = name
    if path is None:
        raise ConfigError(
            f"Unknown {role} adapter {name!r}",
            hint=f"use one of {', '.join(known(role)) or '(none)'} or a dotted path module:Class",
        )
    try:
        return _import(path)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(
            f"Cannot load the {role} adapter {name!r} from {path!r}: {exc}",
            hint="check the name and that its package is installed",
        ) from exc
