"""Belady's MIN: the offline optimum. Evicts the resident key whose next use is furthest away.

It needs the future, so every :meth:`BeladyPolicy.on_insert` / :meth:`BeladyPolicy.on_access`
must carry ``next_use=``: the trace index of the key's next access, :data:`NEVER` if there is
none. :func:`~kvsim.kv.policies.annotate_next_use` computes them for a whole trace in one
backward pass; without them the policy refuses to run (:class:`~kvsim.errors.ConfigError`),
rather than quietly looking at a window of the future.

With unit sizes and a cache that must insert every missed key, MIN has the fewest misses of
any policy (the tests check ``misses(belady) <= misses(p)`` for every registered ``p``). With
variable sizes it is the classic heuristic, not the (NP-hard) optimum.

``_heap`` is a max-heap (negated) of ``(next_use, seq, key)``; an entry is live iff ``seq``
equals ``_seq[key]`` (each insert/access pushes a fresh entry). Stale entries are skipped on
eviction and the heap is rebuilt when more than half of it is stale: O(log n) amortised.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable

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
    """Belady's MIN. Invariant: ``_next[key]`` is the next use announced with the last access."""

    needs_next_use = True

    def __init__(self, capacity: int = 0) -> None:
        super().__init__(capacity)
        self._sizes: dict[Hashable, int] = {}
        self._next: dict[Hashable, int] = {}
        self._seq: dict[Hashable, int] = {}
        self._heap: list[tuple[int, int, Hashable]] = []
        self._counter = 0

    def on_insert(
        self, key: Hashable, size: int = 1, now: float = 0.0, *, next_use: int | None = None
    ) -> None:
        if key in self._sizes:
            raise already_resident(key)
        check_size(size)
        if next_use is None:
            raise ConfigError("policy", _HOW)
        self._sizes[key] = size
        self.used += size
        self._push(key, next_use)

    def on_access(self, key: Hashable, now: float = 0.0, *, next_use: int | None = None) -> None:
        if key not in self._sizes:
            raise not_resident(key)
        self._push(key, next_use)

    def _push(self, key: Hashable, next_use: int | None) -> None:
        if next_use is None:
            raise ConfigError("policy", _HOW)
        self._counter += 1
        self._next[key] = next_use
        self._seq[key] = self._counter
        heapq.heappush(self._heap, (-next_use, self._counter, key))
        if len(self._heap) > 2 * len(self._seq) + 64:
            self._heap = [(-self._next[k], s, k) for k, s in self._seq.items()]
            heapq.heapify(self._heap)

    def on_remove(self, key: Hashable) -> None:
        size = self._sizes.pop(key, None)
        if size is None:
            raise not_resident(key)
        self.used -= size
        del self._next[key], self._seq[key]

    def evict(self, incoming: Hashable | None = None) -> Hashable | None:
        heap, seq = self._heap, self._seq
        while heap:
            _, s, key = heapq.heappop(heap)
            if seq.get(key) == s:
                self.on_remove(key)
                return key
        return None

    def next_use(self, key: Hashable) -> int:
        """The announced next use of the resident ``key`` (:data:`NEVER` if none)."""
        if key not in self._next:
            raise not_resident(key)
        return self._next[key]

    def __len__(self) -> int:
        return len(self._sizes)

    def __contains__(self, key: object) -> bool:
        return key in self._sizes
