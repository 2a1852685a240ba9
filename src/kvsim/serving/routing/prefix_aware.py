"""Prefix-aware: longest cached prefix, penalised by load.

score = cached prefix blocks of the request on the instance - load_penalty * (active + queued)

The highest score wins; ties go to the lower load, then to the first listed. The prefix is
looked up in the instance's block-pool prefix map without side effects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from kvsim.serving.routing.base import RoutedInstance, Router, register_router
from kvsim.serving.seq import Seq


@register_router("prefix_aware")
class PrefixAwareRouter(Router):
    """``router_params: {load_penalty: 1.0}`` (blocks of prefix worth one queued request)."""

    params: ClassVar[dict[str, float]] = {"load_penalty": 1.0}

    def choose(self, seq: Seq, candidates: Sequence[RoutedInstance], now: float) -> Any:
        penalty = self.values["load_penalty"]
        best = candidates[0]
        best_key: tuple[float, int] | None = None
        for inst in candidates:
            load = inst.load()
            hit = inst.cached_prefix_blocks(seq.hashes, now) if seq.hashes else 0
            key = (hit - penalty * load, -load)
            if best_key is None or key > best_key:
                best, best_key = inst, key
        return best
