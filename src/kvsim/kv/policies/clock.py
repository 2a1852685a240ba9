"""CLOCK: FIFO with a reference bit (second chance).

The circular buffer is an ``OrderedDict`` key -> [size, ref] whose front is the clock hand::

    hand -> [k0 ref=1, k1 ref=0, k2 ref=1, ...] <- new keys enter behind the hand (ref=0)

A hit sets ``ref = 1``. ``evict`` looks at the key under the hand: with ``ref == 1`` it clears
the bit and moves it behind the hand (the hand advances); with ``ref == 0`` it is the victim.
Each key is passed over at most once per eviction, and each pass clears a bit that only a hit
can set again, so eviction is amortised O(1); everything else is O(1).
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

__all__ = ["ClockPolicy"]

_SIZE = 0
_REF = 1


@register_eviction("clock")
class ClockPolicy(EvictionPolicy):
    """Second-chance CLOCK. Invariant: ``_ring`` order = clock order starting at the hand."""

    def __init__(self, capacity: int = 0) -> None:
        super().__init__(capacity)
        self._ring: OrderedDict[Hashable, list[int]] = OrderedDict()

    def on_insert(
        self, key: Hashable, size: int = 1, now: float = 0.0, *, next_use: int | None = None
    ) -> None:
        if key in self._ring:
            raise already_resident(key)
        if size < 1:
            check_size(size)
        self._ring[key] = [size, 0]
        self.used += size

    def on_access(self, key: Hashable, now: float = 0.0, *, next_use: int | None = None) -> None:
        entry = self._ring.get(key)
        if entry is None:
            raise not_resident(key)
        entry[_REF] = 1

    def on_remove(self, key: Hashable) -> None:
        entry = self._ring.pop(key, None)
        if entry is None:
            raise not_resident(key)
        self.used -= entry[_SIZE]

    def evict(self, incoming: Hashable | None = None) -> Hashable | None:
        ring = self._ring
        while ring:
            key, entry = ring.popitem(last=False)
            if entry[_REF]:
                entry[_REF] = 0
                ring[key] = entry
                continue
            self.used -= entry[_SIZE]
            return key
        return None

    def __len__(self) -> int:
        return len(self._ring)

    def __contains__(self, key: object) -> bool:
        return key in self._ring
