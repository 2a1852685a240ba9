"""Least KV: the instance with the most free KV blocks right now; first listed on ties."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kvsim.serving.routing.base import RoutedInstance, Router, register_router
from kvsim.serving.seq import Seq


@register_router("least_kv")
class LeastKVRouter(Router):
    """Reads ``free_blocks_at(now)`` (what exact stepping would show, mid-span included)."""

    def choose(self, seq: Seq, candidates: Sequence[RoutedInstance], now: float) -> Any:
        best = candidates[0]
        best_free = best.free_blocks_at(now)
        for inst in candidates[1:]:
            free = inst.free_blocks_at(now)
            if free > best_free:
                best, best_free = inst, free
        return best
