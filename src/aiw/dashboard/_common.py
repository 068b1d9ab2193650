"""What every dashboard page shares: the workspace, opened once per server process."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiw.workspace import Workspace

__all__ = ["get_workspace", "page_header"]


def get_workspace() -> Workspace:
    """The workspace of the current settings, cached across reruns and sessions."""
    import streamlit as st

    @st.cache_resource(show_spinner=False)
    def _open(home: str) -> Workspace:
        from aiw.settings import build_settings
        from aiw.workspace import Workspace

        return Workspace(build_settings(home=home)).ensure()

    from aiw.settings import load_settings

    return _open(str(load_settings().home))


def page_header(title: str, caption: str) -> None:
    """The title and one-line caption every page starts with."""
    import streamlit as st

    st.set_page_config(page_title=f"aiw · {title}", layout="wide")
    st.title(title)
    st.caption(caption)
