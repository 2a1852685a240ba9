"""Allocator models of the memory study (DESIGN.md §5), one per module, one registry.

==================  =====================================================================
kind                model
==================  =====================================================================
``monolithic``      one pool, a usage counter; no fragmentation (the baseline)
``contiguous``      first-fit extents in one address space; grows in place or relocates
``max``             contiguous, reserves the model's maximum length (Orca-Max)
``pow2``            contiguous, reserves the final length rounded up to a power of two
``oracle``          contiguous, reserves exactly prompt + output
``paged``           block tables over the engine's :class:`~kvsim.kv.block_pool.BlockPool`
``paged_compressed``  paged + an LRU-guided compression gate for cold pages under pressure
==================  =====================================================================

KV quantisation is not an allocator: it changes how many slots a byte budget buys
(:data:`~kvsim.kv.alloc.base.KV_DTYPE_BYTES`), for any kind.
"""

from __future__ import annotations

from kvsim.kv.alloc.base import (
    KV_DTYPE_BYTES,
    Allocator,
    AllocatorSpec,
    allocator_kinds,
    create_allocator,
    register_allocator,
)

__all__ = [
    "KV_DTYPE_BYTES",
    "Allocator",
    "AllocatorSpec",
    "allocator_kinds",
    "create_allocator",
    "register_allocator",
]
