"""Helpers of the dashboard tests: a gate-controlled runner and a wait for a run to end."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from kvsim.config.schema import SimConfig


class GatedRunner:
    """A runner that blocks every run until :meth:`release`, then writes a tiny summary."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started: list[Path] = []

    def __call__(
        self, config: SimConfig, out: Path, on_progress: Callable[[int, int], None]
    ) -> None:
        self.started.append(out)
        while not self.gate.wait(0.01):
            on_progress(0, 10)  # lets a deleted run stop here
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps({"num_requests": 10}))

    def release(self) -> None:
        self.gate.set()


def wait_for(client: TestClient, run_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
    """Poll a run until it leaves queued/running; returns its info."""
    deadline = time.monotonic() + timeout_s
    while True:
        info = client.get(f"/api/runs/{run_id}").json()
        if info["status"] not in ("queued", "running") or time.monotonic() > deadline:
            return info
        time.sleep(0.02)
