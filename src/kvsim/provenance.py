"""Where a result came from: the source tree's git commit (for run_meta.json files)."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

__all__ = ["git_commit"]


@functools.cache
def git_commit() -> str | None:
    """The git commit of the kvsim source tree, or None outside a checkout.

    Looked up once per process (sweeps write many run directories)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
