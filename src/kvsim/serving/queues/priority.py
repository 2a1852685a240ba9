"""Priority: lower ``Request.priority`` first (vLLM's convention), FIFO within a class."""

from __future__ import annotations

from kvsim.serving.queues.base import register_queue_policy
from kvsim.serving.queues.heap import HeapPolicy
from kvsim.serving.seq import Seq


@register_queue_policy("priority")
class PriorityQueue(HeapPolicy):
    """Key = ``Request.priority``."""

    def key(self, seq: Seq) -> float:
        return float(seq.req.priority)
