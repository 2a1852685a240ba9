"""Imports every built-in allocator module so that each registers itself."""

from __future__ import annotations

from kvsim.kv.alloc import (  # noqa: F401
    contiguous,
    monolithic,
    paged,
    paged_compressed,
    reserve_max,
    reserve_oracle,
    reserve_pow2,
)
