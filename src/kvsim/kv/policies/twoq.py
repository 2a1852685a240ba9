"""2Q (Johnson & Shasha, VLDB'94), the full version with a ghost queue.

::

    A1in   FIFO of keys seen once (resident), target size Kin = kin_ratio * c blocks
    A1out  FIFO ghost of keys evicted from A1in, at most Kout = kout_ratio * c keys
    Am     LRU of keys re-referenced after leaving A1in (resident)

* hit in Am: move to its MRU end; hit in A1in: nothing (correlated references);
* miss: a key remembered in A1out goes to Am, any other key to A1in (membership is looked up
  before the eviction that makes room, as in the paper: ``evict(incoming=key)`` records it);
* ``evict``: if A1in holds more than Kin blocks (or Am is empty) its oldest key moves to
  A1out (the oldest ghost is dropped beyond Kout), else the LRU of Am is evicted for good.

Paper defaults: Kin = 25% and Kout = 50% of the cache. Every operation is O(1).
"""

from __future__ import annotations

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

__all__ = ["TwoQPolicy"]

_NONE = object()


@register_eviction("2q")
class TwoQPolicy(EvictionPolicy):
    """Full 2Q. Invariant: a key is in at most one of A1in, Am, A1out; ``len(A1out) <= Kout``."""

    def __init__(self, capacity: int = 0, kin_ratio: float = 0.25, kout_ratio: float = 0.5) -> None:
        super().__init__(capacity)
        self._require_capacity()
        if not 0.0 < kin_ratio < 1.0 or kout_ratio <= 0.0:
            raise ConfigError("policy.kin_ratio", "need 0 < kin_ratio < 1 and kout_ratio > 0")
        self.kin = max(1, round(kin_ratio * capacity))
        self.kout = max(1, round(kout_ratio * capacity))
        self._a1in: OrderedDict[Hashable, int] = OrderedDict()
        self._am: OrderedDict[Hashable, int] = OrderedDict()
        self._a1out: OrderedDict[Hashable, None] = OrderedDict()
        self._a1in_used = 0
        self._ghost_hit: object = _NONE

    def on_insert(
        self, key: Hashable, size: int = 1, now: float = 0.0, *, next_use: int | None = None
    ) -> None:
        if key in self._a1in or key in self._am:
            raise already_resident(key)
        if size < 1:
            check_size(size)
        if key in self._a1out or self._ghost_hit == key:
            self._a1out.pop(key, None)
            self._am[key] = size
        else:
            self._a1in[key] = size
            self._a1in_used += size
        self._ghost_hit = _NONE
        self.used += size

    def on_access(self, key: Hashable, now: float = 0.0, *, next_use: int | None = None) -> None:
        if key in self._am:
            self._am.move_to_end(key)
        elif key not in self._a1in:
            raise not_resident(key)

    def on_remove(self, key: Hashable) -> None:
        size = self._a1in.pop(key, None)
        if size is not None:
            self._a1in_used -= size
        else:
            size = self._am.pop(key, None)
            if size is None:
                raise not_resident(key)
        self.used -= size

    def evict(self, incoming: Hashable | None = None) -> Hashable | None:
        if incoming is not None and incoming in self._a1out:
            self._ghost_hit = incoming  # a ghost hit even if this eviction trims it from A1out
        if self._a1in and (self._a1in_used > self.kin or not self._am):
            key, size = self._a1in.popitem(last=False)
            self._a1in_used -= size
            self._a1out[key] = None
            if len(self._a1out) > self.kout:
                self._a1out.popitem(last=False)
        elif self._am:
            key, size = self._am.popitem(last=False)
        else:
            return None
        self.used -= size
        return key

    def __len__(self) -> int:
        return len(self._a1in) + len(self._am)

    def __contains__(self, key: object) -> bool:
        return key in self._a1in or key in self._am
