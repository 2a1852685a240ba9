"""Cross-rack reads of other racks' shared pools (``pool.cross_rack: true``).

A :class:`RemotePools` is what one rack's stacks see of the *other* racks' pool tiers: a
read-only source consulted by :meth:`TierStack.lookup <kvsim.kv.tiers.stack.TierStack.lookup>`
for a block that no local tier holds. A block found there is copied into the reader's top
tier (the remote pool keeps its copy and sees an access); the reader pays one transfer per
lookup for all its remote blocks::

    pool latency + cross-rack latency + bytes / min(pool read bandwidth, cross-rack bandwidth)

Nothing is ever written to a remote pool: demotions go to the reader's own tiers.
Cost: O(R) membership tests per block checked (R racks); only blocks missing from every local
tier are checked, and a lookup stops at the first block missing everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

from kvsim.kv.tiers.tier import Tier

__all__ = ["RemotePools"]


class RemotePools:
    """The pools of every rack but ``own_rack``, searched in rack order after it
    (``own + 1, own + 2, ...`` wrapping around), with the cross-rack path's figures.

    Invariant: never holds the reader's own pool; never changes a pool's contents.
    """

    __slots__ = ("_order", "_path", "_pool_bw", "_pool_lat", "own_rack")

    def __init__(
        self,
        pools: Sequence[Tier],
        own_rack: int,
        path_bandwidth_bytes_per_s: float,
        path_latency_s: float,
    ) -> None:
        n = len(pools)
        self.own_rack = own_rack
        self._order: tuple[Tier, ...] = tuple(pools[(own_rack + i) % n] for i in range(1, n))
        spec = pools[own_rack].spec
        self._pool_bw = spec.read_bandwidth_bytes_per_s
        self._pool_lat = spec.latency_s
        self._path = (path_bandwidth_bytes_per_s, path_latency_s)

    def find(self, key: Hashable) -> Tier | None:
        """The first other rack's pool holding ``key``, or None."""
        for tier in self._order:
            if key in tier.policy:
                return tier
        return None

    def read_time(self, num_bytes: float, factor: float = 1.0) -> float:
        """Seconds of one cross-rack read of ``num_bytes`` (module doc); ``factor`` is a
        network variance factor, applied to the path as in :meth:`Tier.read_time
        <kvsim.kv.tiers.tier.Tier.read_time>`."""
        path_bw, path_lat = self._path
        bw = min(self._pool_bw, path_bw / max(factor, 1.0))
        return (num_bytes / bw if not math.isinf(bw) else 0.0) + self._pool_lat + path_lat * factor
