"""Least loaded: the lowest (active + queued) / decode tokens/s; first listed on ties."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kvsim.serving.routing.base import RoutedInstance, Router, register_router, speed_load
from kvsim.serving.seq import Seq


@register_router("least_loaded")
class LeastLoadedRouter(Router):
    """O(n) scan; with identical instances this is the plain fewest-sequences choice."""

    def choose(self, seq: Seq, candidates: Sequence[RoutedInstance], now: float) -> Any:
        return min(candidates, key=speed_load)
