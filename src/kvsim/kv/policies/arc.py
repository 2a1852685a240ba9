"""ARC: Adaptive Replacement Cache (Megiddo & Modha, FAST'03).

Four LRU lists (``OrderedDict`` key -> size, LRU end first) and an adaptive target ``p``::

    resident  T1 (seen once recently)    T2 (seen at least twice)
    ghosts    B1 (evicted from T1)       B2 (evicted from T2)       keys only, no data

* hit in T1 or T2: move to the MRU end of T2;
* miss whose key is in ghost B1: ``p += max(|B2|/|B1|, 1)`` (capped at ``c``), insert into T2;
  in B2: ``p -= max(|B1|/|B2|, 1)`` (floored at 0), insert into T2; otherwise insert into T1;
* ``evict`` is the paper's ``REPLACE(x, p)``: take the LRU of T1 into B1 if
  ``|T1| > p`` or (``x`` in B2 and ``|T1| == p``), else the LRU of T2 into B2.

The adaptation for a missed key ``x`` happens once, before REPLACE: in :meth:`evict` when
called with ``incoming=x`` (as the protocol asks), or in :meth:`on_insert` when no eviction
was needed. Ghosts are trimmed after each insertion so that ``|T1| + |B1| <= c`` and
``|T1| + |T2| + |B1| + |B2| <= 2c`` (the paper's invariants; the cases of its Case IV come out
the same for a caller that evicts exactly when full). Sizes (``|.|``) are in blocks, so ARC
also works with variable sizes; with unit sizes it is the published algorithm. O(1) per op.
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

__all__ = ["ARCPolicy"]

_NONE = object()


@register_eviction("arc")
class ARCPolicy(EvictionPolicy):
    """ARC over ``capacity`` blocks. ``p`` is the target size of T1 in blocks, ``0 <= p <= c``."""

    def __init__(self, capacity: int = 0) -> None:
        super().__init__(capacity)
        self._require_capacity()
        self.p = 0.0
        self._t1: OrderedDict[Hashable, int] = OrderedDict()
        self._t2: OrderedDict[Hashable, int] = OrderedDict()
        self._b1: OrderedDict[Hashable, int] = OrderedDict()
        self._b2: OrderedDict[Hashable, int] = OrderedDict()
        self._t1_used = 0
        self._b1_used = 0
        self._b2_used = 0
        self._adapted_for: object = _NONE

    def on_insert(
        self, key: Hashable, size: int = 1, now: float = 0.0, *, next_use: int | None = None
    ) -> None:
        if key in self._t1 or key in self._t2:
            raise already_resident(key)
        if size < 1:
            check_size(size)
        if self._adapted_for != key:
            self._adapt(key)
        self._adapted_for = _NONE
        b1_size = self._b1.pop(key, None)
        if b1_size is not None:
            self._b1_used -= b1_size
            self._t2[key] = size
        else:
            b2_size = self._b2.pop(key, None)
            if b2_size is not None:
                self._b2_used -= b2_size
                self._t2[key] = size
            else:
                self._t1[key] = size
                self._t1_used += size
        self.used += size
        c = self.capacity
        if self._t1_used + self._b1_used > c or self.used + self._b1_used + self._b2_used > 2 * c:
            self._trim_ghosts()

    def on_access(self, key: Hashable, now: float = 0.0, *, next_use: int | None = None) -> None:
        size = self._t1.pop(key, None)
        if size is not None:
            self._t1_used -= size
            self._t2[key] = size
            return
        try:
            self._t2.move_to_end(key)
        except KeyError:
            raise not_resident(key) from None

    def on_remove(self, key: Hashable) -> None:
        size = self._t1.pop(key, None)
        if size is not None:
            self._t1_used -= size
        else:
            size = self._t2.pop(key, None)
            if size is None:
                raise not_resident(key)
        self.used -= size

    def evict(self, incoming: Hashable | None = None) -> Hashable | None:
        t1, t2 = self._t1, self._t2
        if not t1 and not t2:
            return None
        in_b2 = False
        if incoming is not None:
            if self._adapted_for != incoming:
                self._adapt(incoming)
                self._adapted_for = incoming
            in_b2 = incoming in self._b2
        t1_used = self._t1_used
        if t1 and (t1_used > self.p or (in_b2 and t1_used == self.p) or not t2):
            key, size = t1.popitem(last=False)
            self._t1_used = t1_used - size
            self._b1[key] = size
            self._b1_used += size
        else:
            key, size = t2.popitem(last=False)
            self._b2[key] = size
            self._b2_used += size
        self.used -= size
        return key

    def _adapt(self, key: Hashable) -> None:
        """Move the target ``p`` on a ghost hit of ``key`` (no-op otherwise)."""
        if key in self._b1:
            self.p = min(float(self.capacity), self.p + max(self._b2_used / self._b1_used, 1.0))
        elif key in self._b2:
            self.p = max(0.0, self.p - max(self._b1_used / self._b2_used, 1.0))

    def _trim_ghosts(self) -> None:
        """Drop the oldest ghosts until ``|T1|+|B1| <= c`` and the total is ``<= 2c``."""
        c = self.capacity
        while self._b1 and self._t1_used + self._b1_used > c:
            self._b1_used -= self._b1.popitem(last=False)[1]
        while (self._b1 or self._b2) and self.used + self._b1_used + self._b2_used > 2 * c:
            if self._b2:
                self._b2_used -= self._b2.popitem(last=False)[1]
            else:
                self._b1_used -= self._b1.popitem(last=False)[1]

    def lists(self) -> tuple[list[Hashable], list[Hashable], list[Hashable], list[Hashable]]:
        """``(T1, T2, B1, B2)`` keys, each LRU first (for tests and debugging)."""
        return list(self._t1), list(self._t2), list(self._b1), list(self._b2)

    def __len__(self) -> int:
        return len(self._t1) + len(self._t2)

    def __contains__(self, key: object) -> bool:
        return key in self._t1 or key in self._t2
