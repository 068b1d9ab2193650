"""What every warehouse connection gets when the platform opens it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiw.workspace import Workspace

__all__ = ["configure_connection"]


def configure_connection(conn: Any, workspace: Workspace, *, ai_functions: bool = True) -> None:
    """Bind the ``ai_*`` functions (when asked) and attach a server warehouse when configured."""
    # The rapid-insights capability registers its functions here.
    return None
