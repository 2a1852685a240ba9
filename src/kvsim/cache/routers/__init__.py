"""Routers of the cache-replay driver (one module each, one registry).

==================  =====================================================================
``prefix_aware``    longest cached prefix among workers within a load bound (default)
``round_robin``     request i -> worker i mod N
``session_affinity``  a session's turns stay on the worker of its first turn
==================  =====================================================================
"""

from kvsim.cache.routers.base import (
    CacheRouter,
    Worker,
    create_router,
    register_router,
    router_names,
)

__all__ = ["CacheRouter", "Worker", "create_router", "register_router", "router_names"]
