"""`kvsim serve`: loopback by default, a warning when bound elsewhere, options passed through."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kvsim.cli import app
from kvsim.commands.serve import is_loopback

uvicorn = pytest.importorskip("uvicorn", reason="the web extra (uvicorn) is not installed")
pytest.importorskip("fastapi", reason="the web extra (fastapi) is not installed")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def _serve(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *args: str) -> tuple[Any, dict]:
    seen: dict[str, Any] = {}

    def fake_run(web: Any, **kwargs: Any) -> None:
        seen["app"] = web
        seen.update(kwargs)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    result = CliRunner().invoke(app, ["serve", "--runs-dir", str(tmp_path / "runs"), *args])
    return result, seen


def test_serve_defaults_to_loopback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    result, seen = _serve(monkeypatch, tmp_path, "--workers", "2", "--max-queued", "3")
    assert result.exit_code == 0, result.output
    assert (seen["host"], seen["port"]) == ("127.0.0.1", 8000)
    assert "warning" not in result.output
    runs = seen["app"].state.runs
    assert (runs.max_workers, runs.max_queued) == (2, 3)
    assert (tmp_path / "runs").is_dir()
    runs.shutdown()


def test_serve_warns_off_loopback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    result, seen = _serve(monkeypatch, tmp_path, "--host", "0.0.0.0", "--port", "9001")
    assert result.exit_code == 0, result.output
    assert (seen["host"], seen["port"]) == ("0.0.0.0", 9001)
    assert "warning: binding 0.0.0.0" in " ".join(result.output.split())
    seen["app"].state.runs.shutdown()


def test_serve_refuses_wildcard_cors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    result, seen = _serve(monkeypatch, tmp_path, "--cors-origin", "*")
    assert result.exit_code == 2
    assert "wildcard origin is not allowed" in result.output
    assert seen == {}


def test_serve_port_in_use_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result, seen = _serve(monkeypatch, tmp_path, "--port", str(port))
    assert result.exit_code == 2
    assert f"cannot serve on 127.0.0.1:{port}" in result.output
    assert seen == {}
