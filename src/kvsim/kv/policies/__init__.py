"""Eviction policies (DESIGN.md §5): one small interface, one registry, one module per policy.

==============  ===========================================================================
name            policy
==============  ===========================================================================
``lru``         least recently used
``fifo``        first in, first out
``lfu``         least frequently used, LRU among equals (O(1) frequency buckets)
``mru``         most recently used
``clock``       second-chance CLOCK
``sieve``       SIEVE (NSDI'24): FIFO with a non-moving hand
``s3fifo``      S3-FIFO (SOSP'23): small + main FIFOs and a ghost FIFO
``arc``         ARC (FAST'03): adaptive recency/frequency with ghost lists
``2q``          full 2Q (VLDB'94): A1in FIFO, A1out ghosts, Am LRU
``lru-k``       LRU-K (SIGMOD'93), K = 2 by default, bounded retained history
``ttl``         time to live (expiry after insert or last access)
``priority``    lowest priority first, LRU among equals, pinned keys never evicted
``tenant``      per-tenant partitions with quotas, each with its own inner policy
``belady``      Belady's MIN, the offline optimum (needs next-use annotations)
``learned``     LightGBM reuse predictor trained on a warm-up split (extra ``learned``)
==============  ===========================================================================

The protocol and invariants are in :mod:`kvsim.kv.policies.base`; how to add a policy is in
this package's README.md.
"""

from __future__ import annotations

from kvsim.kv.policies.base import (
    NEVER,
    EvictionPolicy,
    annotate_next_use,
    create_policy,
    policy_class,
    policy_names,
    register_eviction,
)
from kvsim.kv.policies.replay import SplitResult, simulate_misses, simulate_split

__all__ = [
    "NEVER",
    "EvictionPolicy",
    "SplitResult",
    "annotate_next_use",
    "create_policy",
    "policy_class",
    "policy_names",
    "register_eviction",
    "simulate_misses",
    "simulate_split",
]
