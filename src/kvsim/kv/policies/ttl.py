"""TTL: every key expires ``ttl`` time units after its insertion (or its last access).

One ``OrderedDict`` key -> [size, expiry] in order of expiry. Because ``ttl`` is one
constant and ``now`` never decreases, appending (and, with ``refresh_on_access``,
re-appending on a hit) keeps the dict sorted by expiry, so every operation is O(1):

* :meth:`TTLPolicy.evict` removes the key that expires first (expired or not);
* :meth:`TTLPolicy.pop_expired` removes and returns every key with ``expiry <= now`` — the
  caller frees them (call it whenever time advances, e.g. before each access).

With ``ttl = inf`` and refresh the eviction order is LRU's; without refresh, FIFO's.
"""

from __future__ import annotations

import math
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

__all__ = ["TTLPolicy"]

_SIZE = 0
_EXPIRY = 1


@register_eviction("ttl")
class TTLPolicy(EvictionPolicy):
    """Time to live. Invariant: ``_keys`` is sorted by expiry time, earliest first."""

    def __init__(
        self, capacity: int = 0, ttl: float = math.inf, refresh_on_access: bool = True
    ) -> None:
        super().__init__(capacity)
        if not ttl > 0:
            raise ConfigError("policy.ttl", f"must be > 0, got {ttl}")
        self.ttl = ttl
        self.refresh_on_access = refresh_on_access
        self._keys: OrderedDict[Hashable, list[float]] = OrderedDict()

    def on_insert(
        self, key: Hashable, size: int = 1, now: float = 0.0, *, next_use: int | None = None
    ) -> None:
        if key in self._keys:
            raise already_resident(key)
        if size < 1:
            check_size(size)
        self._keys[key] = [size, now + self.ttl]
        self.used += size

    def on_access(self, key: Hashable, now: float = 0.0, *, next_use: int | None = None) -> None:
        entry = self._keys.get(key)
        if entry is None:
            raise not_resident(key)
        if self.refresh_on_access:
            entry[_EXPIRY] = now + self.ttl
            self._keys.move_to_end(key)

    def on_remove(self, key: Hashable) -> None:
        entry = self._keys.pop(key, None)
        if entry is None:
            raise not_resident(key)
        self.used -= int(entry[_SIZE])

    def evict(self, incoming: Hashable | None = None) -> Hashable | None:
        if not self._keys:
            return None
        key, entry = self._keys.popitem(last=False)
        self.used -= int(entry[_SIZE])
        return key

    def pop_expired(self, now: float) -> list[Hashable]:
        """Remove and return the keys whose expiry is ``<= now``, earliest first."""
        out: list[Hashable] = []
        keys = self._keys
        while keys:
            key = next(iter(keys))
            if keys[key][_EXPIRY] > now:
                break
            self.used -= int(keys.pop(key)[_SIZE])
            out.append(key)
        return out

    def expiry(self, key: Hashable) -> float:
        """The time at which the resident ``key`` expires."""
        entry = self._keys.get(key)
        if entry is None:
            raise not_resident(key)
        return entry[_EXPIRY]

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys
