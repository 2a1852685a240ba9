"""Priority with pinning: evict the lowest priority first, LRU among equals; pins are immune.

::

    _buckets   priority -> OrderedDict(key -> size), LRU first     (evictable keys)
    _heap      min-heap of the priorities that have a bucket, one entry each (lazy)
    _pinned    key -> size                                         (never victims)

A key gets ``priority_of(key)`` when inserted (``default_priority`` without a function) and
can be changed with :meth:`PriorityPolicy.set_priority`. :meth:`PriorityPolicy.pin` takes a key
out of the buckets, :meth:`PriorityPolicy.unpin` puts it back as most recently used. ``evict``
returns ``None`` when every resident key is pinned ("cannot evict" is a value). The heap holds
each priority at most once (``_in_heap``); an emptied bucket is deleted and its stale heap
entry dropped when it reaches the top, so every operation is O(log P) for P priorities.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Callable, Hashable

from kvsim.kv.policies.base import (
    EvictionPolicy,
    already_resident,
    check_size,
    not_resident,
    register_eviction,
)

__all__ = ["PriorityPolicy"]


@register_eviction("priority")
class PriorityPolicy(EvictionPolicy):
    """Lowest priority first, LRU within a priority, pinned keys never evicted.

    Invariants: every resident key is in exactly one of ``_buckets[_prio[key]]`` and
    ``_pinned``; no bucket is empty; every bucket's priority is in ``_heap``.
    """

    def __init__(
        self,
        capacity: int = 0,
        default_priority: int = 0,
        priority_of: Callable[[Hashable], int] | None = None,
    ) -> None:
        super().__init__(capacity)
        self.default_priority = default_priority
        self.priority_of = priority_of
        self._buckets: dict[int, OrderedDict[Hashable, int]] = {}
        self._heap: list[int] = []
        self._in_heap: set[int] = set()
        self._prio: dict[Hashable, int] = {}
        self._pinned: dict[Hashable, int] = {}

    def on_insert(
        self, key: Hashable, size: int = 1, now: float = 0.0, *, next_use: int | None = None
    ) -> None:
        if key in self._prio:
            raise already_resident(key)
        if size < 1:
            check_size(size)
        prio = self.priority_of(key) if self.priority_of else self.default_priority
        self._prio[key] = prio
        self._bucket(prio)[key] = size
        self.used += size

    def on_access(self, key: Hashable, now: float = 0.0, *, next_use: int | None = None) -> None:
        prio = self._prio.get(key)
        if prio is None:
            raise not_resident(key)
        if key not in self._pinned:
            self._buckets[prio].move_to_end(key)

    def on_remove(self, key: Hashable) -> None:
        self.used -= self._detach(key)
        del self._prio[key]

    def evict(self, incoming: Hashable | None = None) -> Hashable | None:
        heap = self._heap
        while heap:
            prio = heap[0]
            bucket = self._buckets.get(prio)
            if bucket is None:
                heapq.heappop(heap)
                self._in_heap.discard(prio)
                continue
            key, size = bucket.popitem(last=False)
            if not bucket:
                del self._buckets[prio]
            del self._prio[key]
            self.used -= size
            return key
        return None

    def pin(self, key: Hashable) -> None:
        """Make the resident ``key`` unevictable until :meth:`unpin` (idempotent)."""
        if key not in self._pinned:
            self._pinned[key] = self._detach(key)

    def unpin(self, key: Hashable) -> None:
        """Make the pinned ``key`` evictable again, as the most recently used of its priority."""
        size = self._pinned.pop(key, None)
        if size is None:
            if key not in self._prio:
                raise not_resident(key)
            return
        self._bucket(self._prio[key])[key] = size

    def is_pinned(self, key: Hashable) -> bool:
        """Whether ``key`` is resident and pinned."""
        return key in self._pinned

    def set_priority(self, key: Hashable, priority: int) -> None:
        """Give the resident ``key`` a new priority (it becomes the MRU of that priority)."""
        if key not in self._prio:
            raise not_resident(key)
        if key in self._pinned:
            self._prio[key] = priority
            return
        size = self._detach(key)
        self._prio[key] = priority
        self._bucket(priority)[key] = size

    def _bucket(self, prio: int) -> OrderedDict[Hashable, int]:
        """The bucket of ``prio``, created (and put on the heap) if missing."""
        bucket = self._buckets.get(prio)
        if bucket is None:
            bucket = self._buckets[prio] = OrderedDict()
            if prio not in self._in_heap:
                self._in_heap.add(prio)
                heapq.heappush(self._heap, prio)
        return bucket

    def _detach(self, key: Hashable) -> int:
        """Take ``key`` out of its bucket or the pinned set; return its size."""
        prio = self._prio.get(key)
        if prio is None:
            raise not_resident(key)
        size = self._pinned.pop(key, None)
        if size is not None:
            return size
        bucket = self._buckets[prio]
        size = bucket.pop(key)
        if not bucket:
            del self._buckets[prio]
        return size

    def __len__(self) -> int:
        return len(self._prio)

    def __contains__(self, key: object) -> bool:
        return key in self._prio
