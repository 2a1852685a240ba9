"""WaitQueue.push_front keeps sequences that hold KV blocks ahead of those that do not."""

from __future__ import annotations

from helpers import make_request
from kvsim.serving.queues import WaitQueue, create_queue_policy
from kvsim.serving.seq import Seq


def _seq(rid: int, holds: bool) -> Seq:
    seq = Seq.from_request(make_request(rid, 0.0, 16, 4), [])
    if holds:
        seq.blocks = [object()]  # type: ignore[list-item]
    return seq


def test_block_holders_stay_ahead_in_the_front_lane() -> None:
    q = WaitQueue(create_queue_policy("fifo", {}))
    q.push_front(_seq(1, holds=True))
    q.push_front(_seq(2, holds=True))  # holders: newest first, as before
    q.push_front(_seq(3, holds=False))  # a preempted one goes behind the holders
    q.push_front(_seq(4, holds=False))
    q.push(_seq(5, holds=False))
    assert [s.req.request_id for s in q] == [2, 1, 4, 3, 5]
    assert q.num == 5 and q.head().req.request_id == 2
