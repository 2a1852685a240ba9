"""The web dashboard (``kvsim serve``): FastAPI JSON API plus a static page with Plotly.

Needs the ``web`` extra (fastapi, uvicorn, plotly, python-multipart). Importing
``kvsim.web`` imports FastAPI; ``kvsim`` itself never imports this package.
"""

from __future__ import annotations

from kvsim.web.app import create_app

__all__ = ["create_app"]
