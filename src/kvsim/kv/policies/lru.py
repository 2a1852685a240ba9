"""LRU: evict the least recently used key.

One ``OrderedDict`` key -> size, oldest access first::

    evict() <- [k_lru, ..., k_mru] <- on_insert / on_access (move_to_end)

Every operation is O(1).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

from kvsim.kv.policies.base import (
    EvictionPolicy,
    already_resident,
    check_size,
    not_resident,
    register_eviction,
)

__all__ = ["LRUPolicy"]


@register_eviction("lru")
class LRUPolicy(EvictionPolicy):
    """Least recently used. Invariant: ``_keys`` is ordered by last access, oldest first."""

    def __init__(self, capacity: int = 0) -> None:
        super().__init__(capacity)
        self._keys: OrderedDict[Hashable, int] = OrderedDict()

    def on_insert(
        self, key: Hashable, size: int = 1, now: float = 0.0, *, next_use: int | None = None
    ) -> None:
        if key in self._keys:
            raise already_resident(key)
        if size < 1:
            check_size(size)
        self._keys[key] = size
        self.used += size

    def on_access(self, key: Hashable, now: float = 0.0, *, next_use: int | None = None) -> None:
        try:
            self._keys.move_to_end(key)
        except KeyError:
            raise not_resident(key) from None

    def on_remove(self, key: Hashable) -> None:
        try:
            self.used -= self._keys.pop(key)
        except KeyError:
            raise not_resident(key) from None

    def evict(self, incoming: Hashable | None = None) -> Hashable | None:
        if not self._keys:
            return None
        key, size = self._keys.popitem(last=False)
        self.used -= size
        return key

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys
