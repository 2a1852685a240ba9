"""Belady's MIN: the offline optimum. Evicts the resident key whose next use is furthest away.

It needs the future, so every :meth:`BeladyPolicy.on_insert` / :meth:`BeladyPolicy.on_access`
must carry ``next_use=``: the trace index of the key's next access, :data:`NEVER` if there is
none. :func:`~kvsim.kv.policies.annotate_next_use` computes them for a whole trace in one
backward pass; without them the policy refuses to run (:class:`~kvsim.errors.ConfigError`),
rather than quietly looking at a window of the future.

With unit sizes and a cache that must insert every missed key, MIN has the fewest misses of
any policy (the tests check ``misses(belady) <= misses(p)`` for every registered ``p``). With
variable sizes it is the classic heuristic, not the (NP-hard) optimum.

``_heap`` is a max-heap (negated) of ``(next_use, seq, key)``; an entry is live iff it *is*
``_live[key]`` (identity; each insert/access pushes a fresh entry, ``seq`` breaks ties so keys
are never compared). Stale entries are skipped on eviction and the heap is rebuilt when more
than half of it is stale: O(log n) amortised.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from heapq import heappop, heappush

from kvsim.errors import ConfigError
from kvsim.kv.policies.base import (
    EvictionPolicy,
    already_resident,
    check_size,
    not_resident,
    register_eviction,
)

__all__ = ["BeladyPolicy"]

_HOW = (
    "belady is an offline oracle and needs the next use of every access: compute it with "
    "kvsim.kv.policies.annotate_next_use(keys) (one backward pass over the whole trace) and "
    "pass next_use=next_use[i] with access i to on_insert/on_access"
)


@register_eviction("belady")
class BeladyPolicy(EvictionPolicy):
    """Belady's MIN. Invariant: ``_live[key]`` is the heap entry pushed with the key's last
    insert/access, ``(-next_use, seq, key)``; any other entry of ``key`` is stale."""

    needs_next_use = True

    def __init__(self, capacity: int = 0) -> None:
        super().__init__(capacity)
        self._sizes: dict[Hashable, int] = {}
        self._live: dict[Hashable, tuple[int, int, Hashable]] = {}
        self._heap: list[tuple[int, int, Hashable]] = []
        self._seq = itertools.count()

    def on_insert(
        self, key: Hashable, size: int = 1, now: float = 0.0, *, next_use: int | None = None
    ) -> None:
        if key in self._sizes:
            raise already_resident(key)
        if size < 1:
            check_size(size)
        if next_use is None:
            raise ConfigError("policy", _HOW)
        self._sizes[key] = size
        self.used += size
        entry = (-next_use, next(self._seq), key)
        self._live[key] = entry
        heap = self._heap
        heappush(heap, entry)
        if len(heap) > 2 * len(self._live) + 64:
            self._rebuild()

    def on_access(self, key: Hashable, now: float = 0.0, *, next_use: int | None = None) -> None:
        if key not in self._sizes:
            raise not_resident(key)
        if next_use is None:
            raise ConfigError("policy", _HOW)
        entry = (-next_use, next(self._seq), key)
        self._live[key] = entry
        heap = self._heap
        heappush(heap, entry)
        if len(heap) > 2 * len(self._live) + 64:
            self._rebuild()

    def _rebuild(self) -> None:
        """Drop stale entries (amortised O(1) per push: runs when half the heap is stale)."""
        self._heap = list(self._live.values())
        heapq.heapify(self._heap)

    def on_remove(self, key: Hashable) -> None:
        size = self._sizes.pop(key, None)
        if size is None:
            raise not_resident(key)
        self.used -= size
        del self._live[key]

    def evict(self, incoming: Hashable | None = None) -> Hashable | None:
        heap, live = self._heap, self._live
        while heap:
            entry = heappop(heap)
            key = entry[2]
            if live.get(key) is entry:
                del live[key]
                self.used -= self._sizes.pop(key)
                return key
        return None

    def next_use(self, key: Hashable) -> int:
        """The announced next use of the resident ``key`` (:data:`NEVER` if none)."""
        entry = self._live.get(key)
        if entry is None:
            raise not_resident(key)
        return -entry[0]

    def __len__(self) -> int:
        return len(self._sizes)

    def __contains__(self, key: object) -> bool:
        return key in self._sizes
