"""FIFO: admission in arrival (queueing) order."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping

from kvsim.serving.queues.base import QueuePolicy, register_queue_policy
from kvsim.serving.seq import Seq


@register_queue_policy("fifo")
class FifoQueue(QueuePolicy):
    """A deque: O(1) push and pop."""

    def __init__(self, weights: Mapping[str, float]) -> None:
        super().__init__(weights)
        self._q: deque[Seq] = deque()

    def push(self, seq: Seq) -> None:
        self._q.append(seq)

    def peek(self) -> Seq:
        return self._q[0]

    def pop(self) -> Seq:
        return self._q.popleft()

    def __len__(self) -> int:
        return len(self._q)

    def __iter__(self) -> Iterator[Seq]:
        return iter(self._q)
