"""The discrete-event loop: a heap of ``(time_s, phase, seq, handler, arg)`` entries.

``seq`` comes from a per-loop ``itertools.count()``: ties in (time, phase) pop in push order
(FIFO) and handlers are never compared. ``Phase`` is the single source of truth for the order
of same-time events: a batch step that ends at ``t`` is applied before a KV transfer finishing
at ``t`` is collected, both before requests arriving at ``t`` are routed, and all of them
before an instance schedules its next step at ``t``.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from enum import IntEnum
from typing import Any

__all__ = ["EventLoop", "Phase"]


class Phase(IntEnum):
    """Order of same-time events (lower runs first)."""

    STEP_END = 0
    TRANSFER = 1
    ARRIVAL = 2
    SCHEDULE = 3


Handler = Callable[[float, Any], None]


class EventLoop:
    """A minimal event heap. The loop owns the clock; nothing else reads time.

    Invariants: ``now`` never decreases; a handler may push events at ``time >= now``.
    """

    __slots__ = ("_cancelled", "_counter", "_heap", "now", "num_events")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int, Handler, Any]] = []
        self._counter = itertools.count()
        self._cancelled: set[int] = set()
        self.now = 0.0
        self.num_events = 0

    def push(self, time_s: float, phase: Phase, handler: Handler, arg: Any = None) -> int:
        """Schedule ``handler(time_s, arg)``; returns the event's id (for :meth:`cancel`).
        Scheduling in the past is a bug."""
        if time_s < self.now:
            raise ValueError(f"event at {time_s!r} is before now={self.now!r}")
        seq = next(self._counter)
        heapq.heappush(self._heap, (time_s, phase, seq, handler, arg))  # Phase is an int
        return seq

    def cancel(self, event_id: int) -> None:
        """Drop a pending event: it neither runs, nor moves the clock, nor counts."""
        self._cancelled.add(event_id)

    def peek_time(self) -> float:
        """Time of the next event (cancelled ones included), or +inf when the heap is empty."""
        return self._heap[0][0] if self._heap else float("inf")

    def __len__(self) -> int:
        return len(self._heap)

    def run(
        self, until_s: float = float("inf"), on_advance: Callable[[float], None] | None = None
    ) -> None:
        """Pop and run events in (time, phase, seq) order until the heap is empty or the next
        event is later than ``until_s``. ``on_advance(t)`` is called before the clock moves to a
        new time ``t`` (used by samplers that must see the state just before ``t``)."""
        heap = self._heap
        pop = heapq.heappop
        cancelled = self._cancelled
        num = 0  # events run by this call (added to num_events when it returns)
        try:
            while heap:
                if heap[0][0] > until_s:
                    break
                time_s, _phase, seq, handler, arg = pop(heap)
                if cancelled and seq in cancelled:
                    cancelled.discard(seq)
                    continue
                if time_s != self.now:
                    if on_advance is not None:
                        on_advance(time_s)
                    self.now = time_s
                num += 1
                handler(time_s, arg)
        finally:
            self.num_events += num
