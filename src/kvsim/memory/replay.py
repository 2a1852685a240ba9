"""Replay an input against one allocator, step by step, recording :mod:`~kvsim.memory.metrics`.

Event traces (:func:`replay_events`): step ``t`` applies event ``t``. A failed allocation is
counted and its id is never live, so its later free is skipped.

Request traces (:func:`replay_requests`), one step = one decode iteration of a
continuous-batching scheduler with FCFS admission::

    1. decode   every running request (in admission order) appends one token; a request
                that reaches prompt + output tokens is freed (finished). If an append
                fails, the most recently admitted running request is preempted (freed and
                put back at the head of the queue, to be recomputed from its prompt), as
                in vLLM, until the append succeeds or the request itself was preempted.
    2. arrive   requests with arrival_step <= step join the queue.
    3. admit    while the queue head fits (allocate its prompt, final length prompt +
                output) and max_num_seqs allows, admit it. A head that fails is retried
                only after some request was freed; a head that fails while nothing is
                running can never fit and is rejected.
    4. record   (every ``record_every`` steps; ``admitted`` sums the steps in between).

Both replays are deterministic functions of their inputs.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kvsim.kv.alloc.base import Allocator
from kvsim.memory.inputs import OP_ALLOC, EventTrace, RequestTrace
from kvsim.memory.metrics import StepRecorder

__all__ = ["ReplayResult", "replay_events", "replay_requests"]


@dataclass
class ReplayResult:
    """Recorded steps, metric arrays (see :data:`~kvsim.memory.metrics.METRICS`) and
    end-of-run counters of one allocator."""

    steps: np.ndarray
    metrics: dict[str, np.ndarray]
    counters: dict[str, Any] = field(default_factory=dict)


def _next_alloc_sizes(trace: EventTrace) -> list[int]:
    """``out[t]`` = size of the first allocation after step ``t`` (0 if none)."""
    n = len(trace)
    out = np.zeros(n, dtype=np.int64)
    nxt = 0
    ops = trace.ops
    sizes = trace.sizes
    for t in range(n - 1, -1, -1):
        out[t] = nxt
        if ops[t] == OP_ALLOC:
            nxt = int(sizes[t])
    return out.tolist()  # type: ignore[no-any-return]


def replay_events(trace: EventTrace, alloc: Allocator, record_every: int = 1) -> ReplayResult:
    """Apply every event of ``trace`` to ``alloc`` (see the module doc)."""
    rec = StepRecorder()
    live: set[int] = set()
    next_size = _next_alloc_sizes(trace)
    admitted = 0
    for t, (op, sid, size) in enumerate(
        zip(trace.ops.tolist(), trace.ids.tolist(), trace.sizes.tolist(), strict=True)
    ):
        if op == OP_ALLOC:
            if alloc.allocate(sid, size, size, t):
                live.add(sid)
                admitted += 1
        elif sid in live:
            live.remove(sid)
            alloc.free(sid, t)
        if t % record_every == 0:
            ns = next_size[t]
            need = alloc.reservation_slots(ns, ns) if ns else 0
            rec.record(t, alloc, need, admitted, len(live), 0, 0)
            admitted = 0
    steps, metrics = rec.arrays()
    return ReplayResult(steps, metrics, {"num_steps": len(trace), "live_at_end": len(live)})


class _RequestReplay:
    """Scheduler state of one request replay (see the module doc)."""

    def __init__(self, trace: RequestTrace, alloc: Allocator, max_num_seqs: int | None) -> None:
        self.alloc = alloc
        self.arrival = trace.arrival_step.tolist()
        self.prompt = trace.prompt.tolist()
        self.output = trace.output.tolist()
        self.max_num_seqs = max_num_seqs if max_num_seqs is not None else len(self.prompt) + 1
        self.next_arrival = 0
        self.waiting: deque[int] = deque()
        self.running: dict[int, int] = {}  # request -> output tokens still to append
        self.num_frees = 0  # frees so far (finish or preemption)
        self.blocked_at: int | None = None  # num_frees when the head last failed
        self.finished = self.rejected = self.preemptions = 0

    @property
    def active(self) -> bool:
        return bool(self.running or self.waiting or self.next_arrival < len(self.arrival))

    def decode(self, step: int) -> None:
        running = self.running
        alloc = self.alloc
        for rid in list(running):
            if rid not in running:
                continue  # preempted earlier in this step
            while not alloc.append(rid, 1, step):
                victim = next(reversed(running))
                self._preempt(victim, step)
                if victim == rid:
                    break
            else:
                left = running[rid] - 1
                if left == 0:
                    del running[rid]
                    alloc.free(rid, step)
                    self.num_frees += 1
                    self.finished += 1
                else:
                    running[rid] = left

    def _preempt(self, rid: int, step: int) -> None:
        del self.running[rid]
        self.alloc.free(rid, step)
        self.num_frees += 1
        self.waiting.appendleft(rid)
        self.preemptions += 1

    def arrive(self, step: int) -> None:
        arrival = self.arrival
        while self.next_arrival < len(arrival) and arrival[self.next_arrival] <= step:
            self.waiting.append(self.next_arrival)
            self.next_arrival += 1

    def admit(self, step: int) -> int:
        alloc = self.alloc
        admitted = 0
        while self.waiting and len(self.running) < self.max_num_seqs:
            if self.blocked_at == self.num_frees and not alloc.reclaims_without_free:
                break  # nothing was released since the head last failed
            rid = self.waiting[0]
            prompt = self.prompt[rid]
            if alloc.allocate(rid, prompt, prompt + self.output[rid], step):
                self.waiting.popleft()
                self.running[rid] = self.output[rid]
                self.blocked_at = None
                admitted += 1
            elif not self.running:
                self.waiting.popleft()
                self.rejected += 1
            else:
                self.blocked_at = self.num_frees
                break
        return admitted

    def head_need(self) -> int:
        if not self.waiting:
            return 0
        rid = self.waiting[0]
        return self.alloc.reservation_slots(self.prompt[rid], self.prompt[rid] + self.output[rid])


def replay_requests(
    trace: RequestTrace,
    alloc: Allocator,
    record_every: int = 1,
    max_num_seqs: int | None = None,
    max_steps: int = 10_000_000,
) -> ReplayResult:
    """Serve every request of ``trace`` with ``alloc`` (see the module doc). Stops early,
    with ``truncated: true`` in the counters, after ``max_steps`` steps."""
    state = _RequestReplay(trace, alloc, max_num_seqs)
    rec = StepRecorder()
    step = admitted = 0
    while state.active and step < max_steps:
        state.decode(step)
        state.arrive(step)
        admitted += state.admit(step)
        if step % record_every == 0:
            rec.record(
                step,
                alloc,
                state.head_need(),
                admitted,
                len(state.running),
                len(state.waiting),
                state.preemptions,
            )
            admitted = 0
        step += 1
    steps, metrics = rec.arrays()
    counters = {
        "num_steps": step,
        "finished": state.finished,
        "rejected": state.rejected,
        "preemptions": state.preemptions,
        "truncated": state.active,
    }
    return ReplayResult(steps, metrics, counters)
