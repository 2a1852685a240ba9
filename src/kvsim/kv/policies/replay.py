"""A minimal unit-size cache replay over one policy (tests, benchmarks, quick studies).

This is not the ``kvsim cache`` driver (no tiers, prefixes or sizes); it is the reference
loop of the policy protocol (see :mod:`kvsim.kv.policies.base`): hit -> ``on_access``;
miss -> ``evict(incoming=key)`` while full, then ``on_insert``. Access ``i`` happens at logical
time ``now = i``.

:func:`simulate_split` adds the warm-up / evaluation protocol of trained policies
(``learned``): ``fit`` on the first ``warmup`` accesses, then replay the whole trace from its
start and count the misses of the two splits separately.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

from kvsim.errors import ConfigError, SimulationError
from kvsim.kv.policies.base import EvictionPolicy, annotate_next_use

__all__ = ["SplitResult", "simulate_misses", "simulate_split"]


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
    return sum(_replay(policy, trace, capacity, next_use, len(trace)))


def _replay(
    policy: EvictionPolicy,
    trace: Sequence[Hashable],
    capacity: int,
    next_use: Sequence[int] | None,
    split: int,
) -> tuple[int, int]:
    """The protocol loop; returns (misses before access ``split``, misses from it on)."""
    if capacity < 1:
        raise ConfigError("capacity", f"must be >= 1 block, got {capacity}")
    if next_use is None and policy.needs_next_use:
        next_use = annotate_next_use(trace)
    misses = 0
    before = 0
    on_access = policy.on_access
    on_insert = policy.on_insert
    evict = policy.evict
    for i, key in enumerate(trace):
        if i == split:
            before = misses
        nu = next_use[i] if next_use is not None else None
        if key in policy:
            on_access(key, i, next_use=nu)
            continue
        misses += 1
        while policy.used >= capacity:
            if evict(key) is None:
                raise SimulationError(f"policy {policy.name!r} has nothing to evict at access {i}")
        on_insert(key, 1, i, next_use=nu)
    if split >= len(trace):
        before = misses
    return before, misses - before


@dataclass(slots=True)
class SplitResult:
    """Misses of a replay split into a warm-up part (``fit`` data) and an evaluation part.

    Invariant: ``num_warmup + num_eval`` is the trace length; misses include cold misses.
    """

    num_warmup: int
    num_eval: int
    warmup_misses: int
    eval_misses: int
    fit_metrics: dict[str, float] = field(default_factory=dict)
    prediction_metrics: dict[str, float] = field(default_factory=dict)

    @property
    def warmup_hit_ratio(self) -> float:
        """Hits / accesses over the warm-up split (0 if empty)."""
        return 1.0 - self.warmup_misses / self.num_warmup if self.num_warmup else 0.0

    @property
    def eval_hit_ratio(self) -> float:
        """Hits / accesses over the evaluation split (0 if empty)."""
        return 1.0 - self.eval_misses / self.num_eval if self.num_eval else 0.0


def simulate_split(
    policy: EvictionPolicy,
    trace: Sequence[Hashable],
    capacity: int,
    warmup: int,
    next_use: Sequence[int] | None = None,
) -> SplitResult:
    """``policy.fit`` on ``trace[:warmup]`` (times = indices), then replay all of ``trace``.

    Every policy goes through ``fit`` (a no-op for untrained ones), so the numbers of all
    policies are comparable split by split.
    """
    if not 0 <= warmup <= len(trace):
        raise ConfigError("warmup", f"must be in [0, {len(trace)}] accesses, got {warmup}")
    fit_metrics = policy.fit(trace[:warmup], [float(i) for i in range(warmup)])
    before, after = _replay(policy, trace, capacity, next_use, warmup)
    return SplitResult(
        num_warmup=warmup,
        num_eval=len(trace) - warmup,
        warmup_misses=before,
        eval_misses=after,
        fit_metrics=fit_metrics,
        prediction_metrics=policy.prediction_metrics(),
    )
