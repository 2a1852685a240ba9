"""Prefix-aware routing: the worker with the longest cached prefix, within a load bound."""

from __future__ import annotations

from collections.abc import Sequence

from kvsim.cache.routers.base import CacheRouter, Worker, register_router
from kvsim.errors import ConfigError
from kvsim.workload.request import Request

__all__ = ["PrefixAwareRouter"]


@register_router("prefix_aware")
class PrefixAwareRouter(CacheRouter):
    """Longest cached prefix wins, load-balanced.

    A worker is *eligible* if it has served at most ``(1 + max_imbalance) * mean + 1``
    requests (``mean`` = requests routed so far / workers), so no worker runs away with a
    popular prefix. Among eligible workers the one whose top ``num_tiers`` tiers (all if
    ``None``) hold the longest leading run of the request's blocks wins; ties go to the
    fewest requests, then the least recently used, then the lowest index.

    Cost per request: at most ``workers * (matched blocks + 1) * num_tiers`` membership tests.
    """

    def __init__(self, max_imbalance: float = 0.25, num_tiers: int | None = None) -> None:
        if max_imbalance < 0:
            raise ConfigError("router_params.max_imbalance", f"must be >= 0, got {max_imbalance}")
        if num_tiers is not None and num_tiers < 1:
            raise ConfigError("router_params.num_tiers", f"must be >= 1, got {num_tiers}")
        self.max_imbalance = max_imbalance
        self.num_tiers = num_tiers
        self._routed = 0

    def route(self, req: Request, hashes: Sequence[int], workers: Sequence[Worker]) -> int:
        bound = (1.0 + self.max_imbalance) * self._routed / len(workers) + 1.0
        self._routed += 1
        best: tuple[int, int, int, int] | None = None
        for w in workers:
            if w.num_requests > bound:
                continue
            score = (-w.stack.peek_prefix(hashes, self.num_tiers), w.num_requests, w.last_used)
            key = (*score, w.index)
            if best is None or key < best:
                best = key
        assert best is not None  # the least-loaded worker is always within the bound
        return best[3]
