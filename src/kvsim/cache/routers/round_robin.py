"""Round robin: request ``i`` goes to worker ``i mod N``."""

from __future__ import annotations

from collections.abc import Sequence

from kvsim.cache.routers.base import CacheRouter, Worker, register_router
from kvsim.workload.request import Request

__all__ = ["RoundRobinRouter"]


@register_router("round_robin")
class RoundRobinRouter(CacheRouter):
    """Cycles through the workers in index order, ignoring cache contents."""

    def __init__(self) -> None:
        self._next = 0

    def route(self, req: Request, hashes: Sequence[int], workers: Sequence[Worker]) -> int:
        idx = self._next % len(workers)
        self._next += 1
        return idx
