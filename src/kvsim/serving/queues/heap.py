"""A keyed min-heap of sequences shared by the ordered policies (ties: push order)."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator, Mapping

from kvsim.serving.queues.base import QueuePolicy
from kvsim.serving.seq import Seq

__all__ = ["HeapPolicy"]


class HeapPolicy(QueuePolicy):
    """Subclasses define :meth:`key`; push/pop are O(log n), peek O(1)."""

    def __init__(self, weights: Mapping[str, float]) -> None:
        super().__init__(weights)
        self._heap: list[tuple[float, int, Seq]] = []
        self._counter = itertools.count()

    def key(self, seq: Seq) -> float:
        raise NotImplementedError

    def push(self, seq: Seq) -> None:
        heapq.heappush(self._heap, (self.key(seq), next(self._counter), seq))

    def peek(self) -> Seq:
        return self._heap[0][2]

    def pop(self) -> Seq:
        return heapq.heappop(self._heap)[2]

    def __len__(self) -> int:
        return len(self._heap)

    def __iter__(self) -> Iterator[Seq]:
        return (entry[2] for entry in sorted(self._heap))
