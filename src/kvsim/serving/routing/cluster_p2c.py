"""Cluster-scale routing in O(d) per request: power of d choices with session affinity and
a prefix score.

``cluster_p2c`` draws ``d`` candidates uniformly (with replacement, from the run's seeded
Generator); the instance the request's session last went to (if it is still a candidate) is
added in front of them. Each is scored

    score = load_weight * (active + queued) - prefix_weight * cached_fraction

where ``cached_fraction`` is the share of the request's prompt blocks cached there (0 when the
request has no hashes). The lowest score wins; ties go to the candidate listed first (the
sticky instance, then draw order). The session then sticks to the winner. Only ``d + 1``
instances are read per request, so the cost does not grow with the cluster (10,240 GPUs).

``power_of_d`` is the same draw with ``prefix_weight = 0`` and no affinity (pure load).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from kvsim.serving.routing.base import RoutedInstance, Router, register_router
from kvsim.serving.seq import Seq

__all__ = ["ClusterP2CRouter", "PowerOfDRouter"]

_SCAN_LIMIT = 64  # a retry's reduced candidate list is searched for the sticky instance


@register_router("cluster_p2c")
class ClusterP2CRouter(Router):
    """``router_params: {d: 2, prefix_weight: 4.0, load_weight: 1.0, affinity: 1}``.

    ``prefix_weight`` is how many queued requests a fully cached prompt is worth."""

    params: ClassVar[dict[str, float]] = {
        "d": 2.0,
        "prefix_weight": 4.0,
        "load_weight": 1.0,
        "affinity": 1.0,
    }

    def __init__(self, params: Any, rng: Any) -> None:
        super().__init__(params, rng)
        self.d = max(1, int(self.values["d"]))
        self.prefix_weight = self.values.get("prefix_weight", 0.0)
        self.load_weight = self.values["load_weight"]
        self.affinity = self.values.get("affinity", 0.0) > 0
        # session -> (instance, its position in the candidate list it was chosen from)
        self._session_to_instance: dict[int, tuple[RoutedInstance, int]] = {}

    def _sticky(self, sid: int, candidates: Sequence[RoutedInstance]) -> int:
        """Position of the session's instance among ``candidates`` or -1 (O(1) normally)."""
        got = self._session_to_instance.get(sid)
        if got is None:
            return -1
        inst, pos = got
        if pos < len(candidates) and candidates[pos] is inst:
            return pos
        if len(candidates) <= _SCAN_LIMIT:
            for i, c in enumerate(candidates):
                if c is inst:
                    return i
        return -1

    def _score(self, inst: RoutedInstance, seq: Seq, now: float) -> float:
        score = self.load_weight * inst.load()
        if self.prefix_weight and seq.hashes:
            hit = inst.cached_prefix_blocks(seq.hashes, now)
            score -= self.prefix_weight * hit / len(seq.hashes)
        return score

    def choose(self, seq: Seq, candidates: Sequence[RoutedInstance], now: float) -> Any:
        n = len(candidates)
        sid = seq.req.session_id
        picks: list[int] = []
        if self.affinity and sid >= 0:
            pos = self._sticky(sid, candidates)
            if pos >= 0:
                picks.append(pos)
        if n > 1:
            picks.extend(self.draw_index(n) for _ in range(self.d))
        else:
            picks.append(0)
        best = picks[0]
        best_score = self._score(candidates[best], seq, now)
        for p in picks[1:]:
            if p == best:
                continue
            sc = self._score(candidates[p], seq, now)
            if sc < best_score:
                best, best_score = p, sc
        inst = candidates[best]
        if self.affinity and sid >= 0:
            self._session_to_instance[sid] = (inst, best)
        return inst


@register_router("power_of_d")
class PowerOfDRouter(ClusterP2CRouter):
    """``router_params: {d: 2, load_weight: 1.0}``: least (active + queued) of d draws."""

    params: ClassVar[dict[str, float]] = {"d": 2.0, "load_weight": 1.0}
