"""The REST API over the core library (FastAPI)."""

from aiw.api.app import create_app

__all__ = ["create_app"]
