"""Memory tiers (DESIGN.md §3, §5): HBM -> DRAM -> SSD -> shared pool, each with a capacity,
read/write bandwidth and latency, and its own eviction policy.

Public API::

    parse_capacity("10%") -> Capacity        # blocks | bytes | tokens | fraction | inf
    Capacity.to_blocks(block_size=..., kv_bytes_per_token=..., unique_blocks=...) -> int
    TierSpec(name, capacity_blocks, policy="lru", ...) ; Tier(spec)
    TierStack(tiers, block_bytes=..., inclusive=False, write_policy="write_back")
        .lookup(hashes, now) -> LookupResult     # prefix hit, per-tier hits, load time
        .insert(hashes, now, first_depth=...)    # computed blocks
        .prefetch(hashes, now)                   # session-aware prefetch
        .peek_prefix(hashes, num_tiers)          # read-only, for routers
    RemotePools(pools, own_rack, path_bw, path_latency_s)   # cross-rack pool reads

Semantics and invariants: :mod:`kvsim.kv.tiers.stack`.
"""

from kvsim.kv.tiers.capacity import Capacity, parse_capacity
from kvsim.kv.tiers.remote import RemotePools
from kvsim.kv.tiers.stack import LookupResult, TierStack, WritePolicy
from kvsim.kv.tiers.tier import Tier, TierCounters, TierSpec

__all__ = [
    "Capacity",
    "LookupResult",
    "RemotePools",
    "Tier",
    "TierCounters",
    "TierSpec",
    "TierStack",
    "WritePolicy",
    "parse_capacity",
]
