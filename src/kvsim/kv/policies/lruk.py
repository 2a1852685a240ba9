"""LRU-K (O'Neil, O'Neil & Weikum, SIGMOD'93), K = 2 by default.

Evicts the key whose K-th most recent access is the oldest (the largest backward
K-distance). Keys with fewer than K recorded accesses have an infinite distance and go first,
least recently used first (the paper's subsidiary LRU). Access times are an internal counter
(one tick per insert/access), so ties cannot happen and ``now`` may repeat.

::

    _young   OrderedDict of resident keys with < K accesses, LRU first   (evicted first)
    _heap    min-heap of (K-th most recent access, key) for the others   (lazy re-ranking)
    _retired history of evicted keys (the paper's retained information), at most
             ``history_ratio * capacity`` keys, oldest dropped first

Each ranked key has one live heap entry (``_entry[key]``), pushed with its K-th access time
when it is first ranked. A later hit only updates ``_kth[key]``: the K-th most recent access
only moves forward, so the stored value is a lower bound and :meth:`LRUKPolicy.evict`
re-pushes a popped entry whose key has moved on, evicting the first whose value is current
(then it is the true minimum). Hits are O(1); eviction is O(log n) amortised (at most one
re-push per hit); entries left by ``on_remove`` are skipped and the heap is rebuilt when they
outnumber the live ones. The correlated-reference period of the paper is not modelled.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict, deque
from collections.abc import Hashable

from kvsim.errors import ConfigError
from kvsim.kv.policies.base import (
    EvictionPolicy,
    already_resident,
    check_size,
    not_resident,
    register_eviction,
)

__all__ = ["LRUKPolicy"]


@register_eviction("lru-k")
class LRUKPolicy(EvictionPolicy):
    """LRU-K. Invariant: a resident key is in ``_young`` iff it has < K accesses in history."""

    def __init__(self, capacity: int = 0, k: int = 2, history_ratio: float = 1.0) -> None:
        super().__init__(capacity)
        if k < 1:
            raise ConfigError("policy.k", f"must be >= 1, got {k}")
        self.k = k
        self.history_cap = max(0, round(history_ratio * capacity))
        self._tick = 0
        self._sizes: dict[Hashable, int] = {}
        self._hist: dict[Hashable, deque[int]] = {}
        self._young: OrderedDict[Hashable, None] = OrderedDict()
        self._kth: dict[Hashable, int] = {}
        self._heap: list[tuple[int, Hashable]] = []
        self._entry: dict[Hashable, int] = {}
        self._retired: OrderedDict[Hashable, deque[int]] = OrderedDict()

    def on_insert(
        self, key: Hashable, size: int = 1, now: float = 0.0, *, next_use: int | None = None
    ) -> None:
        if key in self._sizes:
            raise already_resident(key)
        check_size(size)
        hist = self._retired.pop(key, None)
        if hist is None:
            hist = deque(maxlen=self.k)
        self._sizes[key] = size
        self._hist[key] = hist
        self.used += size
        self._record(key, hist)

    def on_access(self, key: Hashable, now: float = 0.0, *, next_use: int | None = None) -> None:
        hist = self._hist.get(key)
        if hist is None:
            raise not_resident(key)
        self._record(key, hist)

    def _record(self, key: Hashable, hist: deque[int]) -> None:
        """Append an access to ``key``'s history and re-rank it."""
        self._tick += 1
        hist.append(self._tick)
        if len(hist) < self.k:
            self._young[key] = None
            self._young.move_to_end(key)
            return
        kth = hist[0]
        if key in self._kth:  # already on the heap: its entry is a lower bound, fixed lazily
            self._kth[key] = kth
            return
        self._young.pop(key, None)
        self._kth[key] = self._entry[key] = kth
        heapq.heappush(self._heap, (kth, key))

    def on_remove(self, key: Hashable) -> None:
        if key not in self._sizes:
            raise not_resident(key)
        self._young.pop(key, None)
        self._kth.pop(key, None)
        self._entry.pop(key, None)
        self._retire(key)
        if len(self._heap) > 2 * len(self._kth) + 64:
            self._heap = [(t, k) for k, t in self._kth.items()]
            self._entry = dict(self._kth)
            heapq.heapify(self._heap)

    def evict(self, incoming: Hashable | None = None) -> Hashable | None:
        if self._young:
            key, _ = self._young.popitem(last=False)
        else:
            heap, kth, entry = self._heap, self._kth, self._entry
            while heap:
                t, key = heapq.heappop(heap)
                if entry.get(key) != t:
                    continue  # left over from an on_remove
                current = kth[key]
                if current != t:  # accessed since it was pushed: re-rank now
                    entry[key] = current
                    heapq.heappush(heap, (current, key))
                    continue
                del kth[key], entry[key]
                break
            else:
                return None
        self._retire(key)
        return key

    def _retire(self, key: Hashable) -> None:
        """Drop ``key`` from the resident set, keeping its history (bounded)."""
        self.used -= self._sizes.pop(key)
        hist = self._hist.pop(key)
        if self.history_cap > 0:
            self._retired[key] = hist
            if len(self._retired) > self.history_cap:
                self._retired.popitem(last=False)

    def __len__(self) -> int:
        return len(self._sizes)

    def __contains__(self, key: object) -> bool:
        return key in self._sizes
