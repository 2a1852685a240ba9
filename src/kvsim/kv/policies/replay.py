"""A minimal unit-size cache replay over one policy (tests, benchmarks, quick studies).

This is not the ``kvsim cache`` driver (no tiers, prefixes or sizes); it is the reference
loop of the policy protocol (see :mod:`kvsim.kv.policies.base`): hit -> ``on_access``;
miss -> ``evict(incoming=key)`` while full, then ``on_insert``. Access ``i`` happens at logical
time ``now = i``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from kvsim.errors import ConfigError, SimulationError
from kvsim.kv.policies.base import EvictionPolicy, annotate_next_use

__all__ = ["simulate_misses"]


def simulate_misses(
    policy: EvictionPolicy,
    trace: Sequence[Hashable],
    capacity: int,
    next_use: Sequence[int] | None = None,
) -> int:
    """Replay ``trace`` (one block per key) through ``policy`` in a ``capacity``-block cache.

    Returns the number of misses (cold misses included). ``next_use`` is computed with
    :func:`annotate_next_use` when the policy needs it and none is given.
    """
    if capacity < 1:
        raise ConfigError("capacity", f"must be >= 1 block, got {capacity}")
    if next_use is None and policy.needs_next_use:
        next_use = annotate_next_use(trace)
    misses = 0
    on_access = policy.on_access
    on_insert = policy.on_insert
    evict = policy.evict
    for i, key in enumerate(trace):
        nu = next_use[i] if next_use is not None else None
        if key in policy:
            on_access(key, i, next_use=nu)
            continue
        misses += 1
        while policy.used >= capacity:
            if evict(key) is None:
                raise SimulationError(f"policy {policy.name!r} has nothing to evict at access {i}")
        on_insert(key, 1, i, next_use=nu)
    return misses
