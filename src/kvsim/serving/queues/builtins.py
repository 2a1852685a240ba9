"""Imports every built-in queue policy module so that each registers itself."""

from __future__ import annotations

from kvsim.serving.queues import fair, fifo, priority, shortest_remaining  # noqa: F401
