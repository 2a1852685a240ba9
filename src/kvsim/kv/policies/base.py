"""The eviction-policy interface, its registry and the next-use annotation for Belady.

A policy ranks the *resident* keys of one cache (any hashable: a block hash, a radix-node id,
a ``(tenant, hash)`` pair) and names the next victim. It does not own the memory: the caller
(a tier, the cache-replay driver, an instance's prefix cache) decides when to evict and calls,
for each access of ``key`` with ``size`` blocks at logical time ``now``::

    if key in policy:                     # hit
        policy.on_access(key, now)
    else:                                 # miss: make room first, then insert
        while used + size > capacity:
            victim = policy.evict(incoming=key)   # None: nothing evictable -> cannot insert
            ...free victim...
        policy.on_insert(key, size, now)

and ``policy.on_remove(key)`` when a key leaves for another reason (invalidated, locked by a
running request, promoted to another tier). Evicting *before* inserting matters: MRU would
otherwise evict the key it just inserted, and ARC/2Q/S3-FIFO decide where a key goes from
their ghost lists at insertion time.

Invariants every policy keeps (``tests/kv/policies`` checks them after every step):

* ``len(policy)`` is the number of resident keys; ``policy.used`` their total size in blocks.
* :meth:`EvictionPolicy.evict` returns a key that was resident and no longer is, and lowers
  ``used`` by its size; or ``None`` iff no resident key is evictable (empty, or all pinned).
  It never loops forever: every call removes at most one key and does bounded work
  (amortised O(1) or O(log n)).
* ``now`` is a logical time supplied by the caller and must not decrease; no policy reads a
  clock or a global RNG.
* Misuse (inserting a resident key, touching or removing a key that is not resident) raises
  :class:`~kvsim.errors.SimulationError`; "cannot evict" is the return value ``None``.

Ghost lists (ARC, 2Q, S3-FIFO, LRU-K history) remember evicted keys only, and are capped at a
multiple of ``capacity`` as in the papers, so a policy's memory is O(capacity).

New policies live in their own module, subclass :class:`EvictionPolicy` and register with
``@register_eviction("name")``; :func:`create_policy` builds one by name.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from typing import Any, ClassVar, Final

from kvsim.errors import ConfigError, SimulationError
from kvsim.registry import Registry

__all__ = [
    "NEVER",
    "EvictionPolicy",
    "annotate_next_use",
    "create_policy",
    "policy_names",
    "register_eviction",
]

#: Next-use index of an access whose key is never accessed again.
NEVER: Final[int] = 2**63 - 1


class EvictionPolicy(ABC):
    """Base class of every eviction policy (see the module docstring for the protocol).

    Args:
        capacity: the cache's capacity in blocks. Policies that size internal queues or ghost
            lists from it (ARC, 2Q, S3-FIFO, LRU-K, tenant) require it to be positive; the
            others ignore it.
    """

    #: Registry name, set by :func:`register_eviction`.
    name: ClassVar[str] = ""
    #: True if the policy needs ``next_use=`` on every insert/access (offline oracles).
    needs_next_use: ClassVar[bool] = False
    #: True if the policy must be trained with :meth:`fit` before the replay (``learned``).
    needs_training: ClassVar[bool] = False

    def __init__(self, capacity: int = 0) -> None:
        if capacity < 0:
            raise ConfigError("policy.capacity", f"must be >= 0, got {capacity}")
        self.capacity = capacity
        #: Total size in blocks of the resident keys.
        self.used = 0

    @abstractmethod
    def on_insert(
        self, key: Hashable, size: int = 1, now: float = 0.0, *, next_use: int | None = None
    ) -> None:
        """``key`` (``size`` blocks, not resident) becomes resident at time ``now``."""

    @abstractmethod
    def on_access(self, key: Hashable, now: float = 0.0, *, next_use: int | None = None) -> None:
        """The resident ``key`` is accessed (a hit) at time ``now``."""

    @abstractmethod
    def on_remove(self, key: Hashable) -> None:
        """The resident ``key`` leaves the cache for a reason other than :meth:`evict`."""

    @abstractmethod
    def evict(self, incoming: Hashable | None = None) -> Hashable | None:
        """Remove and return the victim, or ``None`` if nothing is evictable.

        ``incoming`` is the key about to be inserted, if known (ARC uses it, as in the paper's
        ``REPLACE(x, p)``); it is never resident and never returned.
        """

    @abstractmethod
    def __len__(self) -> int:
        """Number of resident keys."""

    @abstractmethod
    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is resident."""

    def fit(self, keys: Sequence[Hashable], times: Sequence[float]) -> dict[str, float]:
        """Train on a warm-up split: ``keys[i]`` is the i-th block access, at ``times[i]``.

        Called once on an empty policy, before the replay, by drivers of a policy with
        ``needs_training`` (calling it for every policy is fine); the replay then starts from
        the beginning of the trace (warm-up split included). Returns training metrics (name
        -> value; empty for policies that learn nothing). The default is a no-op; a trained
        policy starts empty after ``fit``.
        """
        return {}

    def prediction_metrics(self) -> dict[str, float]:
        """Quality of the policy's own predictions on the evaluation split (accesses after
        the warm-up split given to :meth:`fit`); empty for policies that predict nothing."""
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(capacity={self.capacity}, len={len(self)}, used={self.used})"

    def _require_capacity(self) -> None:
        if self.capacity <= 0:
            raise ConfigError(
                "policy.capacity", f"policy '{self.name}' needs a positive capacity in blocks"
            )


def check_size(size: int) -> None:
    """Raise :class:`SimulationError` unless ``size`` is a positive block count."""
    if size < 1:
        raise SimulationError(f"key size must be >= 1 block, got {size}")


def already_resident(key: Hashable) -> SimulationError:
    """The error for inserting a key that is already resident."""
    return SimulationError(f"key {key!r} is already resident")


def not_resident(key: Hashable) -> SimulationError:
    """The error for touching or removing a key that is not resident."""
    return SimulationError(f"key {key!r} is not resident")


_REGISTRY: Registry[type[EvictionPolicy]] = Registry(
    "policy", "policy", "name", "kvsim.kv.policies.builtins"
)
#: Class decorator: make ``cls`` available as an eviction policy (one name, one class).
register_eviction = _REGISTRY.register


def policy_names() -> list[str]:
    """Registered policy names, sorted."""
    return _REGISTRY.names()


def policy_class(name: str) -> type[EvictionPolicy]:
    """The class registered as ``name``; unknown names raise :class:`ConfigError`."""
    return _REGISTRY.get(name)


def create_policy(name: str, **params: Any) -> EvictionPolicy:
    """A new policy registered as ``name``, built with ``params`` (e.g. ``capacity=1000``).

    An unknown name or parameter raises :class:`ConfigError` listing the allowed ones.
    """
    cls = policy_class(name)
    sig = inspect.signature(cls)
    try:
        sig.bind(**params)
    except TypeError as exc:
        allowed = ", ".join(sig.parameters) or "none"
        raise ConfigError(
            "policy", f"bad parameters for policy {name!r} ({exc}); allowed: {allowed}"
        ) from None
    return cls(**params)


def annotate_next_use(keys: Sequence[Hashable]) -> list[int]:
    """``next_use[i]`` = index of the next access to ``keys[i]`` after ``i``, or :data:`NEVER`.

    One backward pass with a dict of the last-seen index per key: O(n) time, O(unique) memory.
    Feed ``next_use[i]`` to the policy with access ``i`` (``belady`` requires it).
    """
    n = len(keys)
    out = [NEVER] * n
    seen: dict[Hashable, int] = {}
    for i in range(n - 1, -1, -1):
        key = keys[i]
        out[i] = seen.get(key, NEVER)
        seen[key] = i
    return out
