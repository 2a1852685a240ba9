"""FIFO: evict the key inserted first; hits do not change the order.

The LRU structure (:class:`~kvsim.kv.policies.lru.LRUPolicy`) without the move on access:
one ``OrderedDict`` key -> size in insertion order. Every operation is O(1).
"""

from __future__ import annotations

from collections.abc import Hashable

from kvsim.kv.policies.base import not_resident, register_eviction
from kvsim.kv.policies.lru import LRUPolicy

__all__ = ["FIFOPolicy"]


@register_eviction("fifo")
class FIFOPolicy(LRUPolicy):
    """First in, first out. Invariant: ``_keys`` is in insertion order, oldest first."""

    def on_access(self, key: Hashable, now: float = 0.0, *, next_use: int | None = None) -> None:
        if key not in self._keys:
            raise not_resident(key)
