"""One memory tier: a capacity in blocks, transfer figures, its own eviction policy, counters.

A :class:`Tier` is a passive container used by :class:`~kvsim.kv.tiers.stack.TierStack`, which
decides what moves where. A tier with ``shared=True`` (a per-rack CXL/RDMA pool) may be handed
to several stacks; it then holds one copy of a block for all of them, and its counters add up
the traffic of every stack. A tier reached over the network (a rack pool, a remote SSD) has a
*path* (``path_bandwidth_bytes_per_s``, ``path_latency_s``): every transfer in or out of it
pays ``latency + path latency + bytes / min(tier bandwidth, path bandwidth)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kvsim.errors import ConfigError
from kvsim.kv.policies.base import EvictionPolicy, create_policy

__all__ = ["Tier", "TierCounters", "TierSpec"]


@dataclass(frozen=True, slots=True)
class TierSpec:
    """A tier's parameters, capacity already resolved to blocks.

    ``read_bandwidth_bytes_per_s`` / ``latency_s`` price a load *out of* this tier (a hit served
    here, a promotion or a prefetch); ``write_bandwidth_bytes_per_s`` prices a write *into* it (a
    demotion or a write-through copy). The top tier is where compute reads from: its hits cost
    nothing to load. ``path_*`` is the network path between a worker and the tier (none: a
    local tier); ``per_rack`` (implies ``shared``) asks the driver for one object per rack.
    """

    name: str
    capacity_blocks: int
    policy: str = "lru"
    policy_params: Mapping[str, Any] = field(default_factory=dict)
    read_bandwidth_bytes_per_s: float = math.inf
    write_bandwidth_bytes_per_s: float = math.inf
    latency_s: float = 0.0
    shared: bool = False
    per_rack: bool = False
    path_bandwidth_bytes_per_s: float = math.inf
    path_latency_s: float = 0.0

    def __post_init__(self) -> None:
        if self.per_rack and not self.shared:
            raise ConfigError(f"tiers.{self.name}", "a per-rack tier must be shared")
        if self.path_bandwidth_bytes_per_s <= 0 or self.path_latency_s < 0:
            raise ConfigError(f"tiers.{self.name}", "path bandwidth must be > 0, latency >= 0")
        if self.capacity_blocks < 1:
            raise ConfigError(
                f"tiers.{self.name}.capacity", f"must be >= 1 block, got {self.capacity_blocks}"
            )
        if self.read_bandwidth_bytes_per_s <= 0 or self.write_bandwidth_bytes_per_s <= 0:
            raise ConfigError(f"tiers.{self.name}", "bandwidths must be > 0")
        if self.latency_s < 0:
            raise ConfigError(f"tiers.{self.name}.latency_s", "must be >= 0")


@dataclass(slots=True)
class TierCounters:
    """Traffic of one tier, in blocks (and bytes / seconds of transfer).

    * ``hits``: blocks of a matched prefix found here first (topmost copy).
    * ``misses``: blocks of a lookup's walk that reached this tier and were not here (the walk
      covers the hit prefix plus the one block that stopped it), so ``hits + misses`` of tier
      ``k + 1`` equals ``misses`` of tier ``k``.
    * ``inserts``: blocks written here (computed, promoted, demoted, written through, prefetched).
    * ``evictions``: victims this tier's policy gave up (each is demoted or dropped).
    * ``promotions``: blocks copied or moved from here to the top tier on a hit.
    * ``demotions``: blocks written here because the tier above evicted them.
    * ``prefetches``: blocks copied or moved from here to the top tier by a prefetch.
    * ``remote_hits``: blocks read from here by a worker of *another* rack (cross-rack pool
      reads; not in ``hits``, which count the tier's own stacks).
    """

    hits: int = 0
    misses: int = 0
    inserts: int = 0
    evictions: int = 0
    promotions: int = 0
    demotions: int = 0
    prefetches: int = 0
    remote_hits: int = 0
    bytes_read: float = 0.0
    bytes_written: float = 0.0
    read_time_s: float = 0.0
    write_time_s: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """All counters by name (insertion order of the fields)."""
        return {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]


class Tier:
    """A capacity-bounded set of blocks ranked by its own policy.

    Invariant (kept by the stack): ``policy.used <= capacity`` after every stack operation,
    and every resident key has size 1 (one block).
    """

    __slots__ = ("capacity", "counters", "needs_next_use", "policy", "spec")

    def __init__(self, spec: TierSpec) -> None:
        self.spec = spec
        self.capacity = spec.capacity_blocks
        params = dict(spec.policy_params)
        params.setdefault("capacity", spec.capacity_blocks)
        self.policy: EvictionPolicy = create_policy(spec.policy, **params)
        self.needs_next_use = bool(self.policy.needs_next_use)
        self.counters = TierCounters()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def used(self) -> int:
        """Resident blocks."""
        return self.policy.used

    @property
    def networked(self) -> bool:
        """Whether transfers cross a network path (a rack pool, a remote store)."""
        s = self.spec
        return s.path_latency_s > 0 or not math.isinf(s.path_bandwidth_bytes_per_s)

    def read_time(self, num_bytes: float, factor: float = 1.0) -> float:
        """Seconds to load ``num_bytes`` out of this tier in one transfer (latencies once):
        ``latency + path latency + bytes / min(read bandwidth, path bandwidth)``.

        ``factor`` is a network variance factor ``F`` (``NetworkVariance``): the path pays
        ``F x`` its latency and carries at most ``path bandwidth / max(F, 1)`` (a path never
        runs faster than its bandwidth); the tier's own figures do not vary."""
        s = self.spec
        bw = min(s.read_bandwidth_bytes_per_s, s.path_bandwidth_bytes_per_s / max(factor, 1.0))
        return num_bytes / bw + s.latency_s + s.path_latency_s * factor

    def write_time(self, num_bytes: float) -> float:
        """Seconds to write ``num_bytes`` into this tier in one transfer (latencies once)."""
        s = self.spec
        bw = min(s.write_bandwidth_bytes_per_s, s.path_bandwidth_bytes_per_s)
        return num_bytes / bw + s.latency_s + s.path_latency_s

    def __repr__(self) -> str:
        return f"Tier({self.name!r}, {self.policy.name}, used={self.used}/{self.capacity})"
