"""Weighted fair queueing across request classes (self-clocked fair queueing, SCFQ).

The class of a request is ``str(Request.priority)``; its weight is
``scheduler.fair_weights[class]`` (1.0 when absent). On push a request of class ``c`` and
cost ``L`` (prompt + output tokens left) gets the virtual finish tag

    F = max(V, F_c) + L / w_c,        F_c := F

and the smallest tag is admitted first; ``V`` becomes the tag of the request admitted last.
Backlogged classes therefore share admissions in proportion to their weights (by tokens),
and an idle class cannot bank credit. Push and pop are O(log n).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping

from kvsim.serving.queues.base import register_queue_policy
from kvsim.serving.queues.heap import HeapPolicy
from kvsim.serving.seq import Seq


@register_queue_policy("fair")
class FairQueue(HeapPolicy):
    """Virtual-finish-time ordering; see the module docstring."""

    def __init__(self, weights: Mapping[str, float]) -> None:
        super().__init__(weights)
        self._virtual = 0.0
        self._class_finish: dict[str, float] = {}

    def key(self, seq: Seq) -> float:
        cls = str(seq.req.priority)
        cost = seq.req.prompt_tokens + seq.req.output_tokens - seq.num_output
        start = max(self._virtual, self._class_finish.get(cls, 0.0))
        finish = start + cost / self.weights.get(cls, 1.0)
        self._class_finish[cls] = finish
        return finish

    def pop(self) -> Seq:
        tag, _, seq = heapq.heappop(self._heap)
        self._virtual = tag
        return seq
