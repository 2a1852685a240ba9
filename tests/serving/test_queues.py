"""Waiting-queue policies: order against a sorted reference, the front lane, fair shares."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import make_request
from kvsim.serving.queues import WaitQueue, create_queue_policy, queue_policy_names
from kvsim.serving.seq import Seq
from kvsim.workload.request import Request


def seq(rid: int, prompt: int, output: int, prio: int = 0) -> Seq:
    req = make_request(rid, 0.0, prompt, output)
    req = Request(**{**{f: getattr(req, f) for f in req.__dataclass_fields__}, "priority": prio})
    return Seq.from_request(req, [])


def drain(q: WaitQueue) -> list[int]:
    out = []
    while q:
        out.append(q.pop_head().req.request_id)
    return out


def test_registry() -> None:
    assert queue_policy_names() == ["fair", "fifo", "priority", "shortest_remaining"]


items = st.lists(
    st.tuples(st.integers(1, 50), st.integers(1, 50), st.integers(0, 3)), min_size=0, max_size=40
)


@settings(max_examples=60, deadline=None)
@given(items)
def test_orders_match_a_stable_sort(spec: list[tuple[int, int, int]]) -> None:
    seqs = [seq(i, p, o, c) for i, (p, o, c) in enumerate(spec)]
    refs = {
        "fifo": list(range(len(seqs))),
        "shortest_remaining": sorted(range(len(seqs)), key=lambda i: spec[i][0] + spec[i][1]),
        "priority": sorted(range(len(seqs)), key=lambda i: spec[i][2]),
    }
    for name, ref in refs.items():
        q = WaitQueue(create_queue_policy(name, {}))
        for s in seqs:
            q.push(s)
        assert len(q) == len(seqs)
        assert drain(q) == ref, name


def test_front_lane_goes_first_in_lifo_push_order() -> None:
    q = WaitQueue(create_queue_policy("shortest_remaining", {}))
    q.push(seq(0, 1, 1))
    q.push(seq(1, 100, 1))
    q.push_front(seq(2, 500, 1))
    q.push_front(seq(3, 500, 1))
    assert q.head().req.request_id == 3
    assert drain(q) == [3, 2, 0, 1]


def test_fair_queue_shares_by_weight() -> None:
    """Two backlogged classes of equal-cost requests, weights 1 and 3: class 1 gets three
    admissions for each of class 0's, interleaved (virtual finish tags)."""
    q = WaitQueue(create_queue_policy("fair", {"0": 1.0, "1": 3.0}))
    for i in range(8):
        q.push(seq(i, 10, 10, 0))
    for i in range(8, 20):
        q.push(seq(i, 10, 10, 1))
    order = drain(q)
    classes = [0 if rid < 8 else 1 for rid in order]
    # tags: class 0 -> 20, 40, ...; class 1 -> 20/3, 40/3, 20, ...  (ties: push order)
    assert classes[:8] == [1, 1, 0, 1, 1, 1, 0, 1]
    assert order[:4] == [8, 9, 0, 10]


def test_fair_queue_gives_no_credit_to_an_idle_class() -> None:
    q = WaitQueue(create_queue_policy("fair", {}))
    for i in range(4):
        q.push(seq(i, 10, 10, 0))
    assert [q.pop_head().req.request_id for _ in range(3)] == [0, 1, 2]
    # class 1 arrives late: it starts at the current virtual time, not at 0
    q.push(seq(10, 10, 10, 1))
    q.push(seq(11, 10, 10, 1))
    assert drain(q) == [3, 10, 11]
