"""Fixtures of the dashboard tests: apps on a temp runs directory (web extra imported lazily)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``make_client(runs_dir=None, **create_app_kwargs)`` -> a started TestClient."""
    pytest.importorskip("fastapi", reason="the web extra (fastapi) is not installed")
    pytest.importorskip("multipart", reason="the web extra (python-multipart) is not installed")
    from fastapi.testclient import TestClient
    from web_helpers import GatedRunner

    from kvsim.web import create_app

    clients: list[TestClient] = []

    def factory(runs_dir: Path | None = None, **kwargs: Any) -> TestClient:
        client = TestClient(create_app(runs_dir or tmp_path / "runs", **kwargs))
        client.__enter__()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        runner = client.app.state.runs.runner  # type: ignore[attr-defined]
        if isinstance(runner, GatedRunner):
            runner.release()
        client.__exit__(None, None, None)
