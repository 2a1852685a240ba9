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

Per resident key, ``_res[key] = [size, kth, entry, t_1, ..., t_j]`` (its last ``j <= K``
access ticks, oldest first; one flat list, kept as the retained history after eviction). Each ranked
key has one live heap entry (value ``entry``), pushed with its K-th access time when it is
first ranked (``kth = entry = -1`` while young). A later hit only updates ``kth``: the K-th
most recent access only moves forward, so the stored value is a lower bound and
:meth:`LRUKPolicy.evict` re-pushes a popped entry whose key has moved on, evicting the first
whose value is current (then it is the true minimum). Hits are O(1); eviction is O(log n)
amortised (at most one re-push per hit); entries left by ``on_remove`` are skipped and the
heap is rebuilt when they outnumber the live ones. The correlated-reference period of the
paper is not modelled.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
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
    """LRU-K. Invariant: a resident key is in ``_young`` iff it has < K accesses in history;
    ``_num_ranked`` counts the others."""

    def __init__(self, capacity: int = 0, k: int = 2, history_ratio: float = 1.0) -> None:
        super().__init__(capacity)
        if k < 1:
            raise ConfigError("policy.k", f"must be >= 1, got {k}")
        self.k = k
        self.history_cap = max(0, round(history_ratio * capacity))
        self._tick = 0
        self._res: dict[Hashable, list[int]] = {}  # key -> [size, kth, entry, ticks...]
        self._young: OrderedDict[Hashable, None] = OrderedDict()
        self._heap: list[tuple[int, Hashable]] = []
        self._num_ranked = 0
        self._retired: OrderedDict[Hashable, list[int]] = OrderedDict()  # same lists

    def on_insert(
        self, key: Hashable, size: int = 1, now: float = 0.0, *, next_use: int | None = None
    ) -> None:
        if key in self._res:
            raise already_resident(key)
        if size < 1:
            check_size(size)
        rec = self._retired.pop(key, None)
        if rec is None:
            rec = [size, -1, -1]
        else:
            rec[0], rec[1], rec[2] = size, -1, -1
        self._res[key] = rec
        self.used += size
        self._record(key, rec)

    def on_access(self, key: Hashable, now: float = 0.0, *, next_use: int | None = None) -> None:
        rec = self._res.get(key)
        if rec is None:
            raise not_resident(key)
        self._record(key, rec)

    def _record(self, key: Hashable, rec: list[int]) -> None:
        """Append an access to ``key``'s history (its last K ticks) and re-rank it."""
        self._tick += 1
        rec.append(self._tick)
        num = len(rec) - 3
        if num > self.k:
            del rec[3]
        elif num < self.k:
            self._young[key] = None
            self._young.move_to_end(key)
            return
        kth = rec[3]
        if rec[1] >= 0:  # already on the heap: its entry is a lower bound, fixed lazily
            rec[1] = kth
            return
        self._young.pop(key, None)
        rec[1] = rec[2] = kth
        self._num_ranked += 1
        heapq.heappush(self._heap, (kth, key))

    def on_remove(self, key: Hashable) -> None:
        rec = self._res.get(key)
        if rec is None:
            raise not_resident(key)
        if rec[1] >= 0:
            self._num_ranked -= 1
        else:
            self._young.pop(key, None)
        self._retire(key, rec)
        if len(self._heap) > 2 * self._num_ranked + 64:
            self._heap = []
            for k, r in self._res.items():
                if r[1] >= 0:
                    r[2] = r[1]
                    self._heap.append((r[1], k))
            heapq.heapify(self._heap)

    def evict(self, incoming: Hashable | None = None) -> Hashable | None:
        if self._young:
            key, _ = self._young.popitem(last=False)
            rec = self._res[key]
        else:
            heap, res = self._heap, self._res
            while heap:
                t, key = heapq.heappop(heap)
                found = res.get(key)
                if found is None or found[2] != t:
                    continue  # left over from an on_remove
                rec = found
                current = rec[1]
                if current != t:  # accessed since it was pushed: re-rank now
                    rec[2] = current
                    heapq.heappush(heap, (current, key))
                    continue
                self._num_ranked -= 1
                break
            else:
                return None
        self._retire(key, rec)
        return key

    def _retire(self, key: Hashable, rec: list[int]) -> None:
        """Drop ``key`` from the resident set, keeping its history (bounded)."""
        del self._res[key]
        self.used -= rec[0]
        if self.history_cap > 0:
            self._retired[key] = rec
            if len(self._retired) > self.history_cap:
                self._retired.popitem(last=False)

    def __len__(self) -> int:
        return len(self._res)

    def __contains__(self, key: object) -> bool:
        return key in self._res
