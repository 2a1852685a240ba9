"""MRU: evict the most recently used key (good for cyclic scans larger than the cache).

The same recency order as :class:`~kvsim.kv.policies.lru.LRUPolicy`, popped from the other
end::

    [k_lru, ..., k_mru] <- on_insert / on_access (move_to_end); evict() pops k_mru

Every operation is O(1).
"""

from __future__ import annotations

from collections.abc import Hashable

from kvsim.kv.policies.base import register_eviction
from kvsim.kv.policies.lru import LRUPolicy

__all__ = ["MRUPolicy"]


@register_eviction("mru")
class MRUPolicy(LRUPolicy):
    """Most recently used. Invariant: ``_keys`` is ordered by last access, oldest first."""

    def evict(self, incoming: Hashable | None = None) -> Hashable | None:
        if not self._keys:
            return None
        key, size = self._keys.popitem(last=True)
        self.used -= size
        return key
