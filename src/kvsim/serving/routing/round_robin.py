"""Round-robin: the i-th routed request goes to candidate ``i mod n``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kvsim.serving.routing.base import RoutedInstance, Router, register_router
from kvsim.serving.seq import Seq


@register_router("round_robin")
class RoundRobinRouter(Router):
    """Cycles through the candidates by position; the counter advances once per call."""

    def __init__(self, params: Any, rng: Any) -> None:
        super().__init__(params, rng)
        self._next = 0

    def choose(self, seq: Seq, candidates: Sequence[RoutedInstance], now: float) -> Any:
        inst = candidates[self._next % len(candidates)]
        self._next += 1
        return inst
