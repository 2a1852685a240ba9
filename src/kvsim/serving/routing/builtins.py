"""Imports every built-in router module so that each registers itself."""

from __future__ import annotations

from kvsim.serving.routing import (  # noqa: F401
    cluster_p2c,
    least_kv,
    least_loaded,
    p2c,
    prefix_aware,
    random_router,
    round_robin,
    session_affinity,
)
