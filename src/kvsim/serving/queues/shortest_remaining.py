"""Shortest remaining: fewest tokens left to process (prompt + expected output) first."""

from __future__ import annotations

from kvsim.serving.queues.base import register_queue_policy
from kvsim.serving.queues.heap import HeapPolicy
from kvsim.serving.seq import Seq


@register_queue_policy("shortest_remaining")
class ShortestRemainingQueue(HeapPolicy):
    """Key = prompt + output tokens - tokens already generated (at queueing time)."""

    def key(self, seq: Seq) -> float:
        return float(seq.req.prompt_tokens + seq.req.output_tokens - seq.num_output)
