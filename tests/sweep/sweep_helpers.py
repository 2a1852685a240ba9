"""Helpers for the sweep tests: write a spec file, run the CLI in a subprocess."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import yaml

import kvsim

#: The source tree of the kvsim under test (for subprocesses).
KVSIM_SRC = str(Path(kvsim.__file__).resolve().parents[1])


def write_spec(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = KVSIM_SRC + os.pathsep + env.get("PYTHONPATH", "")
    return env


def kvsim_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "kvsim.cli", *args]
