"""Imports every built-in policy module so that each registers itself."""

from __future__ import annotations

from kvsim.kv.policies import (  # noqa: F401
    arc,
    belady,
    clock,
    fifo,
    learned,
    lfu,
    lru,
    lruk,
    mru,
    priority,
    s3fifo,
    sieve,
    tenant,
    ttl,
    twoq,
)
