"""The Streamlit dashboard (``aiw ui``): a home page and one page per capability."""

__all__: list[str] = []
