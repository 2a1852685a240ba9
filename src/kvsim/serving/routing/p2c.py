"""Power of two choices (Mitzenmacher): two distinct random candidates, the less loaded wins."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kvsim.serving.routing.base import RoutedInstance, Router, register_router, speed_load
from kvsim.serving.seq import Seq


@register_router("p2c")
class PowerOfTwoRouter(Router):
    """O(1): draws ``a`` uniformly in ``[0, n)`` then ``b`` uniformly among the other
    ``n - 1`` (:meth:`Router.draw_index`); the lower (active + queued) / decode tokens/s wins,
    ``a`` on a tie."""

    def choose(self, seq: Seq, candidates: Sequence[RoutedInstance], now: float) -> Any:
        n = len(candidates)
        if n == 1:
            return candidates[0]
        a = self.draw_index(n)
        b = self.draw_index(n - 1)
        if b >= a:
            b += 1
        x, y = candidates[a], candidates[b]
        return y if speed_load(y) < speed_load(x) else x
