"""Per-instance waiting-queue policies (DESIGN.md §4): interface, registry, the wait queue.

A policy orders the requests waiting for admission on one instance. Every operation is
O(1) or O(log n) (a deque or a heap); nothing is re-sorted per step. Ties go to the request
queued first (a push counter), so every order is deterministic.

:class:`WaitQueue` puts a FIFO *front lane* before the policy: sequences preempted from the
running batch or arriving by KV handoff resume ahead of everything the policy orders (as in
vLLM, where preempted requests go back to the head of the waiting queue). Within the front
lane, sequences that already hold their KV blocks (arrived by handoff, blocks reserved here)
stay ahead of those that do not: such a sequence needs no new memory to run, while one
queued before it might wait for exactly the blocks it holds (a deadlock otherwise).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from typing import ClassVar

from kvsim.registry import Registry
from kvsim.serving.seq import Seq

__all__ = [
    "QueuePolicy",
    "WaitQueue",
    "create_queue_policy",
    "queue_policy_names",
    "register_queue_policy",
]


class QueuePolicy:
    """Orders waiting sequences. Subclasses implement push / peek / pop / len / iter."""

    name: ClassVar[str] = ""

    def __init__(self, weights: Mapping[str, float]) -> None:
        self.weights = weights

    def push(self, seq: Seq) -> None:
        raise NotImplementedError

    def peek(self) -> Seq:
        """The next sequence to admit (the queue is non-empty)."""
        raise NotImplementedError

    def pop(self) -> Seq:
        """Remove and return :meth:`peek`."""
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Seq]:
        raise NotImplementedError


class WaitQueue:
    """Front lane (FIFO, for resumed sequences) followed by a :class:`QueuePolicy`.

    Invariant: ``head()`` is ``front[0]`` when the front lane is non-empty, else the policy's
    ``peek()``; ``len`` counts both."""

    __slots__ = ("front", "num", "policy")

    def __init__(self, policy: QueuePolicy) -> None:
        self.front: deque[Seq] = deque()
        self.policy = policy
        self.num = 0  # len(front) + len(policy), kept here: hot paths ask for it often

    def __len__(self) -> int:
        return self.num

    def __bool__(self) -> bool:
        return self.num != 0

    def __iter__(self) -> Iterator[Seq]:
        yield from self.front
        yield from self.policy

    def head(self) -> Seq:
        return self.front[0] if self.front else self.policy.peek()

    def pop_head(self) -> Seq:
        self.num -= 1
        return self.front.popleft() if self.front else self.policy.pop()

    def push(self, seq: Seq) -> None:
        """Queue a new (or re-queued) sequence by the policy."""
        self.num += 1
        self.policy.push(seq)

    def push_front(self, seq: Seq) -> None:
        """Put ``seq`` at the head (preempted or handed-off sequences), behind the leading
        sequences that hold KV blocks unless it holds some too (see the module doc)."""
        self.num += 1
        front = self.front
        if seq.blocks or not front or not front[0].blocks:
            front.appendleft(seq)
            return
        i = 1
        while i < len(front) and front[i].blocks:
            i += 1
        front.insert(i, seq)

    def clear(self) -> list[Seq]:
        left = list(self)
        self.front.clear()
        while len(self.policy):
            self.policy.pop()
        self.num = 0
        return left


_REGISTRY: Registry[type[QueuePolicy]] = Registry(
    "queue policy", "scheduler.queue_policy", "name", "kvsim.serving.queues.builtins"
)
register_queue_policy = _REGISTRY.register


def queue_policy_names() -> list[str]:
    """Every registered queue policy, sorted."""
    return _REGISTRY.names()


def create_queue_policy(name: str, weights: Mapping[str, float]) -> QueuePolicy:
    """Instantiate queue policy ``name`` (``weights``: per-class weights for ``fair``)."""
    return _REGISTRY.get(name)(weights)
