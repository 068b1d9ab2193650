"""Index adapters: memory (reference), lancedb (embedded default), chroma and qdrant (servers)."""

__all__: list[str] = []
