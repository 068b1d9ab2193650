"""One router module per capability."""

__all__: list[str] = []
