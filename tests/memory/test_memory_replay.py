"""Replays of tiny hand-made traces, with every recorded number checked."""

from __future__ import annotations

import numpy as np

from kvsim.kv.alloc import AllocatorSpec, create_allocator
from kvsim.memory.config import EventsInput
from kvsim.memory.inputs import OP_ALLOC, OP_FREE, EventTrace, RequestTrace, generate_events
from kvsim.memory.replay import replay_events, replay_requests


def events(*rows: tuple[int, int, int]) -> EventTrace:
    ops, ids, sizes = zip(*rows, strict=True)
    return EventTrace(
        np.array(ops, dtype=np.int8), np.array(ids, dtype=np.int64), np.array(sizes, dtype=np.int64)
    )


TRACE = events(
    (OP_ALLOC, 0, 4),
    (OP_ALLOC, 1, 8),
    (OP_ALLOC, 2, 6),
    (OP_FREE, 1, 0),
    (OP_FREE, 0, 0),
    (OP_ALLOC, 3, 5),
)


def test_event_replay_monolithic() -> None:
    res = replay_events(TRACE, create_allocator(AllocatorSpec("monolithic"), 10))
    m = res.metrics
    assert res.steps.tolist() == [0, 1, 2, 3, 4, 5]
    assert m["reserved"].tolist() == [4, 4, 10, 10, 6, 6]
    assert m["failed"].tolist() == [0, 1, 1, 1, 1, 2]
    assert m["admitted"].tolist() == [1, 0, 1, 0, 0, 0]
    assert m["running"].tolist() == [1, 1, 2, 2, 1, 1]
    assert m["external_frag"].tolist() == [0] * 6
    assert res.counters == {"num_steps": 6, "live_at_end": 1}


def test_event_replay_contiguous_sees_external_fragmentation() -> None:
    res = replay_events(TRACE, create_allocator(AllocatorSpec("contiguous"), 10))
    m = res.metrics
    assert m["reserved"].tolist() == [4, 4, 10, 10, 6, 6]
    assert m["failed"].tolist() == [0, 1, 1, 1, 1, 2]
    # after step 0 the next request needs 8 and the hole [4, 10) has 6; after step 4 it
    # needs 5 and the only hole is [0, 4); after step 5 there is no next request
    assert m["external_frag"].tolist() == [6, 0, 0, 0, 4, 0]


def test_event_replay_paged_internal_fragmentation_and_record_every() -> None:
    res = replay_events(TRACE, create_allocator(AllocatorSpec("paged", block_size=4), 16), 5)
    m = res.metrics
    assert res.steps.tolist() == [0, 5]
    assert m["used"].tolist() == [4, 5]
    assert m["reserved"].tolist() == [4, 8]
    assert m["internal_frag"].tolist() == [0, 3]
    assert m["admitted"].tolist() == [1, 2]  # sums the unrecorded steps in between
    assert m["failed"].tolist() == [0, 1]
    assert m["utilisation"].tolist() == [1.0, 5 / 8]


REQS = RequestTrace(np.zeros(3, dtype=np.int64), np.array([3, 2, 4]), np.array([2, 3, 1]))


def test_request_replay_paged_preempts_latest_admitted() -> None:
    res = replay_requests(REQS, create_allocator(AllocatorSpec("paged", block_size=2), 8))
    m = res.metrics
    assert res.counters == {
        "num_steps": 7,
        "finished": 3,
        "rejected": 0,
        "preemptions": 4,
        "truncated": False,
    }
    assert m["admitted"].tolist() == [2, 0, 2, 1, 1, 1, 0]
    assert m["running"].tolist() == [2, 2, 2, 2, 2, 1, 0]
    assert m["waiting"].tolist() == [1, 1, 0, 0, 0, 0, 0]
    assert m["used"].tolist()[:3] == [5, 7, 6]
    assert m["reserved"].tolist()[:3] == [6, 8, 6]
    assert m["preemptions"].tolist() == [0, 0, 1, 2, 3, 4, 4]


def test_request_replay_oracle_reserves_and_never_preempts() -> None:
    res = replay_requests(REQS, create_allocator(AllocatorSpec("oracle"), 8))
    m = res.metrics
    assert res.counters["num_steps"] == 7 and res.counters["preemptions"] == 0
    assert m["admitted"].tolist() == [1, 0, 1, 0, 0, 1, 0]
    assert m["reserved"].tolist() == [5, 5, 5, 5, 5, 5, 0]
    assert m["used"].tolist() == [3, 4, 2, 3, 4, 4, 0]
    assert m["future"].tolist() == [2, 1, 3, 2, 1, 1, 0]
    assert m["failed"].tolist() == [1, 1, 2, 2, 2, 2, 2]


def test_request_that_can_never_fit_is_rejected() -> None:
    reqs = RequestTrace(np.zeros(2, dtype=np.int64), np.array([20, 2]), np.array([1, 1]))
    res = replay_requests(reqs, create_allocator(AllocatorSpec("max", max_len=16), 16))
    assert res.counters["rejected"] == 1 and res.counters["finished"] == 1


def test_event_generator_is_seeded_and_well_formed() -> None:
    cfg = EventsInput(num_steps=500, workload="long", free_probability=0.5, lifetime_range=(3, 9))
    a = generate_events(cfg, np.random.default_rng(7))
    b = generate_events(cfg, np.random.default_rng(7))
    assert np.array_equal(a.ops, b.ops) and np.array_equal(a.ids, b.ids)
    alloc = a.ops == OP_ALLOC
    assert a.sizes[alloc].min() >= 8 and a.sizes[alloc].max() <= 32
    assert (a.sizes[~alloc] == 0).all()
    assert a.ids[alloc].tolist() == list(range(int(alloc.sum())))
    seen: set[int] = set()
    for op, sid in zip(a.ops.tolist(), a.ids.tolist(), strict=True):
        if op == OP_FREE:
            assert sid in seen
            seen.remove(sid)
        else:
            seen.add(sid)
