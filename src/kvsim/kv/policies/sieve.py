"""SIEVE (Zhang et al., NSDI'24): a FIFO queue with a *non-moving* hand and a visited bit.

A circular doubly linked list through a sentinel, oldest key first::

    sentinel -> k_oldest -> ... -> k_newest -> sentinel
                    ^ hand walks oldest -> newest, wrapping at the sentinel

New keys enter at the newest end with ``visited = False``; a hit sets ``visited = True``.
``evict`` starts at the hand (or the oldest key): a visited key has its bit cleared and is
*left in place* (unlike CLOCK, survivors are not moved to the new end); the first unvisited
key is the victim and the hand stops at its newer neighbour. Amortised O(1) per eviction (a
bit cleared by the hand is set again only by a hit); every other operation is O(1).
"""

from __future__ import annotations

from collections.abc import Hashable

from kvsim.kv.policies.base import (
    EvictionPolicy,
    already_resident,
    check_size,
    not_resident,
    register_eviction,
)

__all__ = ["SievePolicy"]


class _Node:
    __slots__ = ("key", "newer", "older", "size", "visited")

    def __init__(self, key: Hashable, size: int) -> None:
        self.key = key
        self.size = size
        self.visited = False
        self.older: _Node = self
        self.newer: _Node = self


@register_eviction("sieve")
class SievePolicy(EvictionPolicy):
    """SIEVE. Invariants: list order = insertion order; ``_hand`` is a resident node or None."""

    def __init__(self, capacity: int = 0) -> None:
        super().__init__(capacity)
        self._sentinel = _Node(None, 0)
        self._nodes: dict[Hashable, _Node] = {}
        self._hand: _Node | None = None

    def on_insert(
        self, key: Hashable, size: int = 1, now: float = 0.0, *, next_use: int | None = None
    ) -> None:
        if key in self._nodes:
            raise already_resident(key)
        if size < 1:
            check_size(size)
        node = _Node(key, size)
        s = self._sentinel
        node.older = s.older
        node.newer = s
        s.older.newer = node
        s.older = node
        self._nodes[key] = node
        self.used += size

    def on_access(self, key: Hashable, now: float = 0.0, *, next_use: int | None = None) -> None:
        node = self._nodes.get(key)
        if node is None:
            raise not_resident(key)
        node.visited = True

    def on_remove(self, key: Hashable) -> None:
        node = self._nodes.pop(key, None)
        if node is None:
            raise not_resident(key)
        self._unlink(node)

    def evict(self, incoming: Hashable | None = None) -> Hashable | None:
        if not self._nodes:
            return None
        s = self._sentinel
        node = self._hand if self._hand is not None else s.newer
        while True:
            if node is s:
                node = s.newer
            if not node.visited:
                break
            node.visited = False
            node = node.newer
        self._hand = node
        del self._nodes[node.key]
        self._unlink(node)
        return node.key

    def _unlink(self, node: _Node) -> None:
        """Take ``node`` out of the list; the hand moves to its newer neighbour."""
        if self._hand is node:
            nxt = node.newer
            self._hand = None if nxt is self._sentinel else nxt
        node.older.newer = node.newer
        node.newer.older = node.older
        self.used -= node.size

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, key: object) -> bool:
        return key in self._nodes
