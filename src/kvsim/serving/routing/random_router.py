"""Random: a uniform draw from the run's seeded Generator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kvsim.serving.routing.base import RoutedInstance, Router, register_router
from kvsim.serving.seq import Seq


@register_router("random")
class RandomRouter(Router):
    """``candidates[draw_index(n)]``: one uniform draw per call."""

    def choose(self, seq: Seq, candidates: Sequence[RoutedInstance], now: float) -> Any:
        return candidates[self.draw_index(len(candidates))]
