"""LFU: evict the least frequently used key; ties go to the least recently used.

O(1) LFU (Shah, Mitra, Matani 2010): a circular doubly linked list of frequency buckets in
increasing frequency, each an ``OrderedDict`` of its keys in the order they reached that
frequency (= order of last access)::

    sentinel(0) <-> [f=1: a, d] <-> [f=3: b] <-> [f=7: c, e] <-> sentinel
                     ^ evict() pops the first key of the first bucket (a)

A hit moves a key from bucket ``f`` to bucket ``f+1`` (created right after ``f`` if missing);
an empty bucket is unlinked at once, so the first bucket is always the minimum frequency and
no operation scans: insert, access, remove and evict are all O(1). Each ``evict`` removes
exactly one key whatever the sizes, so a caller making room for a large key cannot livelock.
Counts are in-cache (a key's count restarts at 1 when it is re-inserted).
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

__all__ = ["LFUPolicy"]


class _Bucket:
    """All resident keys with access count ``freq``, in order of last access."""

    __slots__ = ("freq", "keys", "next", "prev")

    def __init__(self, freq: int) -> None:
        self.freq = freq
        self.keys: OrderedDict[Hashable, int] = OrderedDict()
        self.prev: _Bucket = self
        self.next: _Bucket = self

    def link_after(self, other: _Bucket) -> None:
        """Insert ``self`` right after ``other``."""
        self.prev = other
        self.next = other.next
        other.next.prev = self
        other.next = self

    def unlink(self) -> None:
        self.prev.next = self.next
        self.next.prev = self.prev


@register_eviction("lfu")
class LFUPolicy(EvictionPolicy):
    """Least frequently used, LRU among equals.

    Invariants: bucket frequencies strictly increase along the list from the sentinel; no
    bucket is empty; ``_key_to_bucket[k]`` is the bucket holding ``k``.
    """

    def __init__(self, capacity: int = 0) -> None:
        super().__init__(capacity)
        self._head = _Bucket(0)
        self._key_to_bucket: dict[Hashable, _Bucket] = {}

    def on_insert(
        self, key: Hashable, size: int = 1, now: float = 0.0, *, next_use: int | None = None
    ) -> None:
        if key in self._key_to_bucket:
            raise already_resident(key)
        if size < 1:
            check_size(size)
        first = self._head.next
        if first.freq != 1:
            new = _Bucket(1)
            new.link_after(self._head)
            first = new
        first.keys[key] = size
        self._key_to_bucket[key] = first
        self.used += size

    def on_access(self, key: Hashable, now: float = 0.0, *, next_use: int | None = None) -> None:
        bucket = self._key_to_bucket.get(key)
        if bucket is None:
            raise not_resident(key)
        nxt = bucket.next
        if nxt.freq != bucket.freq + 1:
            new = _Bucket(bucket.freq + 1)
            new.link_after(bucket)
            nxt = new
        nxt.keys[key] = bucket.keys.pop(key)
        self._key_to_bucket[key] = nxt
        if not bucket.keys:
            bucket.unlink()

    def on_remove(self, key: Hashable) -> None:
        bucket = self._key_to_bucket.pop(key, None)
        if bucket is None:
            raise not_resident(key)
        self.used -= bucket.keys.pop(key)
        if not bucket.keys:
            bucket.unlink()

    def evict(self, incoming: Hashable | None = None) -> Hashable | None:
        bucket = self._head.next
        if bucket is self._head:
            return None
        key, size = bucket.keys.popitem(last=False)
        del self._key_to_bucket[key]
        self.used -= size
        if not bucket.keys:
            bucket.unlink()
        return key

    def frequency(self, key: Hashable) -> int:
        """The in-cache access count of the resident ``key`` (1 after insertion)."""
        bucket = self._key_to_bucket.get(key)
        if bucket is None:
            raise not_resident(key)
        return bucket.freq

    def __len__(self) -> int:
        return len(self._key_to_bucket)

    def __contains__(self, key: object) -> bool:
        return key in self._key_to_bucket
