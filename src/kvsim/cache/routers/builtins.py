"""Imports every built-in router module so that each registers itself."""

from __future__ import annotations

from kvsim.cache.routers import prefix_aware, round_robin, session_affinity  # noqa: F401
