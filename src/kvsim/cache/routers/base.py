"""The cache-replay router interface and its registry.

A router picks the worker of each request, in arrival order, from the workers' state at that
moment (their tier stacks, request counts, last use). It is a tiny strategy behind one
interface; one module per router, registered with ``@register_router("name")``.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from kvsim.errors import ConfigError
from kvsim.kv.tiers.stack import TierStack
from kvsim.registry import Registry
from kvsim.workload.request import Request

__all__ = ["CacheRouter", "Worker", "create_router", "register_router", "router_names"]


@dataclass(slots=True)
class Worker:
    """One worker of the replay: its tier stack, requests routed to it so far, the
    sequence number of the last one (``-1``: never used) and its rack."""

    index: int
    stack: TierStack
    num_requests: int = 0
    last_used: int = -1
    rack: int = 0


def least_loaded(workers: Sequence[Worker]) -> int:
    """Index of the worker with the fewest requests; ties: least recently used, then index."""
    best = min(workers, key=lambda w: (w.num_requests, w.last_used, w.index))
    return best.index


class CacheRouter(ABC):
    """Chooses a worker per request. ``route`` must not change the workers (the driver
    records the assignment) and must be deterministic."""

    name: ClassVar[str] = ""

    @abstractmethod
    def route(self, req: Request, hashes: Sequence[int], workers: Sequence[Worker]) -> int:
        """Index of the worker that serves ``req`` (whose blocks are ``hashes``)."""


_REGISTRY: Registry[type[CacheRouter]] = Registry(
    "router", "router", "name", "kvsim.cache.routers.builtins"
)
#: Class decorator: make ``cls`` available as a cache router.
register_router = _REGISTRY.register


def router_names() -> list[str]:
    """Registered router names, sorted."""
    return _REGISTRY.names()


def create_router(name: str, **params: Any) -> CacheRouter:
    """A new router registered as ``name`` built with ``params``; bad names or parameters
    raise :class:`ConfigError` listing the allowed ones."""
    cls = _REGISTRY.get(name)
    sig = inspect.signature(cls)
    try:
        sig.bind(**params)
    except TypeError as exc:
        allowed = ", ".join(sig.parameters) or "none"
        raise ConfigError(
            "router_params", f"bad parameters for router {name!r} ({exc}); allowed: {allowed}"
        ) from None
    return cls(**params)
