"""Routers: one module per router, one registry (see :mod:`kvsim.serving.routing.base`).

==================== ======================================================================
name                 choice
==================== ======================================================================
``round_robin``      cycles through the instances in index order
``random``           uniform draw from the run's seeded Generator
``least_loaded``     lowest (active + queued) / decode tokens/s
``p2c``              two distinct random candidates, the less loaded wins (O(1))
``least_kv``         most free KV blocks
``prefix_aware``     most cached prefix blocks minus ``load_penalty`` x load
``session_affinity`` sticky per session_id; new sessions go least-loaded
``cluster_p2c``      d random draws + the session's instance; load - prefix score (O(d))
``power_of_d``       d random draws, the least loaded wins (O(d))
==================== ======================================================================
"""

from __future__ import annotations

from kvsim.serving.routing.base import (
    RoutedInstance,
    Router,
    create_router,
    register_router,
    router_class,
    router_names,
)

__all__ = [
    "RoutedInstance",
    "Router",
    "create_router",
    "register_router",
    "router_class",
    "router_names",
]
