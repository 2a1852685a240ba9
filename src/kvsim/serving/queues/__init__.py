"""Waiting-queue policies, one module each: fifo, shortest_remaining, priority, fair."""

from __future__ import annotations

from kvsim.serving.queues.base import (
    QueuePolicy,
    WaitQueue,
    create_queue_policy,
    queue_policy_names,
    register_queue_policy,
)

__all__ = [
    "QueuePolicy",
    "WaitQueue",
    "create_queue_policy",
    "queue_policy_names",
    "register_queue_policy",
]
