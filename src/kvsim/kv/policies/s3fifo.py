"""S3-FIFO (Yang et al., SOSP'23): a small FIFO, a main FIFO and a ghost FIFO.

::

    S  small FIFO, target small_ratio * c blocks (10%)   new keys enter here
    M  main FIFO (the rest)                              keys promoted from S or from G
    G  ghost FIFO of keys evicted from S, at most ghost_ratio * c keys (90%)

Each resident key has a 2-bit frequency, ``min(freq + 1, 3)`` on a hit. A miss inserts a key
found in G into M, any other key into S (frequency 0). ``evict``: while S holds at least its
target (or M is empty), take S's oldest key: with ``freq >= move_threshold`` it moves to M and
the scan goes on, otherwise it is the victim and its key goes to G. Otherwise take M's
oldest key: with ``freq > 0`` it is reinserted at M's new end with ``freq - 1`` (lazy
promotion), otherwise it is the victim. Defaults follow the paper and libCacheSim
(``small_ratio=0.1``, ``ghost_ratio=0.9``, ``move_threshold=2``, i.e. the paper's
``freq > 1``). A moved or reinserted key is passed over at most 3 times per hit it had, so
eviction is amortised O(1); everything else is O(1).
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

__all__ = ["S3FIFOPolicy"]

_SIZE = 0
_FREQ = 1


@register_eviction("s3fifo")
class S3FIFOPolicy(EvictionPolicy):
    """S3-FIFO. Invariant: a key is in at most one of S, M, G; ``len(G) <= ghost cap``."""

    def __init__(
        self,
        capacity: int = 0,
        small_ratio: float = 0.1,
        ghost_ratio: float = 0.9,
        move_threshold: int = 2,
    ) -> None:
        super().__init__(capacity)
        self._require_capacity()
        if not 0.0 < small_ratio < 1.0 or ghost_ratio < 0.0 or move_threshold < 1:
            raise ConfigError(
                "policy.small_ratio",
                "need 0 < small_ratio < 1, ghost_ratio >= 0 and move_threshold >= 1",
            )
        self.small_target = max(1, round(small_ratio * capacity))
        self.ghost_cap = round(ghost_ratio * capacity)
        self.move_threshold = move_threshold
        self._small: OrderedDict[Hashable, list[int]] = OrderedDict()
        self._main: OrderedDict[Hashable, list[int]] = OrderedDict()
        self._ghost: OrderedDict[Hashable, None] = OrderedDict()
        self._small_used = 0

    def on_insert(
        self, key: Hashable, size: int = 1, now: float = 0.0, *, next_use: int | None = None
    ) -> None:
        if key in self._small or key in self._main:
            raise already_resident(key)
        if size < 1:
            check_size(size)
        if key in self._ghost:
            del self._ghost[key]
            self._main[key] = [size, 0]
        else:
            self._small[key] = [size, 0]
            self._small_used += size
        self.used += size

    def on_access(self, key: Hashable, now: float = 0.0, *, next_use: int | None = None) -> None:
        entry = self._small.get(key)
        if entry is None:
            entry = self._main.get(key)
            if entry is None:
                raise not_resident(key)
        if entry[_FREQ] < 3:
            entry[_FREQ] += 1

    def on_remove(self, key: Hashable) -> None:
        entry = self._small.pop(key, None)
        if entry is not None:
            self._small_used -= entry[_SIZE]
        else:
            entry = self._main.pop(key, None)
            if entry is None:
                raise not_resident(key)
        self.used -= entry[_SIZE]

    def evict(self, incoming: Hashable | None = None) -> Hashable | None:
        if self._small and (self._small_used >= self.small_target or not self._main):
            victim = self._evict_small()
            if victim is not None:
                return victim
        return self._evict_main()

    def _evict_small(self) -> Hashable | None:
        """Scan S from its oldest key; promote the hot ones, evict the first cold one."""
        small, main = self._small, self._main
        while small:
            key, entry = small.popitem(last=False)
            self._small_used -= entry[_SIZE]
            if entry[_FREQ] >= self.move_threshold:
                main[key] = entry
                continue
            self.used -= entry[_SIZE]
            if self.ghost_cap > 0:
                self._ghost[key] = None
                if len(self._ghost) > self.ghost_cap:
                    self._ghost.popitem(last=False)
            return key
        return None

    def _evict_main(self) -> Hashable | None:
        """Scan M from its oldest key, reinserting keys with a non-zero frequency."""
        main = self._main
        while main:
            key, entry = main.popitem(last=False)
            if entry[_FREQ] > 0:
                entry[_FREQ] -= 1
                main[key] = entry
                continue
            self.used -= entry[_SIZE]
            return key
        return None

    def __len__(self) -> int:
        return len(self._small) + len(self._main)

    def __contains__(self, key: object) -> bool:
        return key in self._small or key in self._main
