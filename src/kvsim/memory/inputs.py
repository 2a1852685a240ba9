"""Inputs of the memory study: alloc/free event traces and request traces.

* :func:`generate_events` — the synthetic alloc/free generator, one event per step.
* :func:`load_requests` — requests as ``(arrival step, prompt, output)`` arrays, from a length
  table (ShareGPT / arXiv style CSV) or from any kvsim workload (``load_workload``).

Everything is drawn from the ``numpy.random.Generator`` passed in; nothing reads the clock.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

from kvsim.errors import ConfigError
from kvsim.memory.config import EventsInput, LengthsInput, WorkloadInput
from kvsim.workload.lengths import read_length_column
from kvsim.workload.traces import load_workload

__all__ = ["SIZE_RANGES", "EventTrace", "RequestTrace", "generate_events", "load_requests"]

#: Allocation sizes (slots, both ends inclusive) of each event workload.
SIZE_RANGES: dict[str, tuple[int, int]] = {"short": (1, 4), "long": (8, 32), "mixed": (1, 32)}

OP_FREE = 0
OP_ALLOC = 1


@dataclass(frozen=True)
class EventTrace:
    """One event per step: ``ops[t]`` is :data:`OP_ALLOC` (allocate ``sizes[t]`` slots for
    id ``ids[t]``) or :data:`OP_FREE` (free id ``ids[t]``; ``sizes[t] == 0``). An id is
    allocated once and freed at most once, after its allocation."""

    ops: np.ndarray
    ids: np.ndarray
    sizes: np.ndarray

    def __len__(self) -> int:
        return len(self.ops)


@dataclass(frozen=True)
class RequestTrace:
    """Requests ordered by ``arrival_step`` (non-decreasing); ``prompt >= 1``, ``output >= 1``."""

    arrival_step: np.ndarray
    prompt: np.ndarray
    output: np.ndarray

    def __len__(self) -> int:
        return len(self.prompt)


def generate_events(cfg: EventsInput, rng: np.random.Generator) -> EventTrace:
    """The alloc/free generator. At step ``t``, if an allocation is due to be freed (its
    lifetime has elapsed), the earliest due one is freed (ties: smallest id); otherwise a new
    id ``k`` (0, 1, 2, ...) is allocated with a size uniform in ``SIZE_RANGES[workload]``, and
    with probability ``free_probability`` scheduled to be freed ``U[lifetime_range]`` steps
    later. Allocations never scheduled stay until the end (memory pressure builds)."""
    n = cfg.num_steps
    low, high = SIZE_RANGES[cfg.workload]
    sizes_drawn = rng.integers(low, high, size=n, endpoint=True)
    will_free = rng.random(n) < cfg.free_probability
    lifetimes = rng.integers(cfg.lifetime_range[0], cfg.lifetime_range[1], size=n, endpoint=True)
    ops = np.empty(n, dtype=np.int8)
    ids = np.empty(n, dtype=np.int64)
    sizes = np.zeros(n, dtype=np.int64)
    due: list[tuple[int, int]] = []
    next_id = 0
    sizes_l = sizes_drawn.tolist()
    free_l = will_free.tolist()
    life_l = lifetimes.tolist()
    for t in range(n):
        if due and due[0][0] <= t:
            ops[t] = OP_FREE
            ids[t] = heapq.heappop(due)[1]
            continue
        k = next_id
        next_id += 1
        ops[t] = OP_ALLOC
        ids[t] = k
        sizes[t] = sizes_l[k]
        if free_l[k]:
            heapq.heappush(due, (t + life_l[k], k))
    return EventTrace(ops, ids, sizes)


def load_requests(
    cfg: LengthsInput | WorkloadInput, rng: np.random.Generator, max_len: int
) -> RequestTrace:
    """Requests of a request input. Requests longer than ``max_len`` (prompt + output) are
    dropped from a length table before drawing; in a workload they raise a
    :class:`ConfigError` only if *every* request is too long (the rest are dropped)."""
    if isinstance(cfg, LengthsInput):
        return _from_lengths(cfg, rng, max_len)
    return _from_workload(cfg, rng, max_len)


def _from_lengths(cfg: LengthsInput, rng: np.random.Generator, max_len: int) -> RequestTrace:
    prompts = read_length_column(cfg.path, cfg.prompt_column)
    outputs = read_length_column(cfg.path, cfg.output_column)
    prompts = np.maximum(np.rint(prompts), 1).astype(np.int64)
    outputs = np.maximum(np.rint(outputs), 1).astype(np.int64)
    keep = np.flatnonzero(prompts + outputs <= max_len)
    if keep.size == 0:
        raise ConfigError("input.path", f"no row of {cfg.path} has prompt + output <= {max_len}")
    rows = rng.choice(keep, size=cfg.num_requests, replace=True)
    if cfg.arrivals_per_step is None:
        arrival = np.zeros(cfg.num_requests, dtype=np.int64)
    else:
        arrival = (np.arange(cfg.num_requests) / cfg.arrivals_per_step).astype(np.int64)
    return RequestTrace(arrival, prompts[rows], outputs[rows])


def _from_workload(cfg: WorkloadInput, rng: np.random.Generator, max_len: int) -> RequestTrace:
    requests = load_workload(cfg.workload, rng)
    kept = [r for r in requests if r.prompt_tokens + r.output_tokens <= max_len]
    if not kept:
        raise ConfigError("input.workload", f"no request has prompt + output <= {max_len}")
    if cfg.step_s is None:
        arrival = np.zeros(len(kept), dtype=np.int64)
    else:
        step_s = cfg.step_s
        arrival = np.array([math.floor(r.arrival_s / step_s) for r in kept], dtype=np.int64)
    prompt = np.array([r.prompt_tokens for r in kept], dtype=np.int64)
    output = np.array([r.output_tokens for r in kept], dtype=np.int64)
    return RequestTrace(arrival, prompt, output)
