"""Hypothesis invariants for every registered allocator: used <= reserved <= capacity,
a failed call changes nothing, and alloc/free conserve blocks and slots."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvsim.kv.alloc import Allocator, AllocatorSpec, allocator_kinds, create_allocator
from kvsim.kv.alloc.contiguous import ContiguousAllocator

OPS = st.lists(
    st.tuples(
        st.sampled_from(["alloc", "append", "free"]),
        st.integers(0, 7),  # sequence id
        st.integers(1, 12),  # tokens
        st.integers(0, 10),  # extra tokens to the final length
    ),
    max_size=60,
)


def _snapshot(a: Allocator) -> tuple[int, ...]:
    return (a.used_slots, a.reserved_slots, a.future_slots, a.num_tokens)


def _check(a: Allocator, live: dict[int, int]) -> None:
    assert 0 <= a.used_slots <= a.reserved_slots <= a.num_slots
    assert 0 <= a.future_slots <= a.reserved_slots - a.used_slots
    assert a.num_tokens == sum(live.values()) >= a.used_slots
    assert a.peak_reserved_slots >= a.reserved_slots
    pool = getattr(a, "pool", None)
    if pool is not None:  # the engine's BlockPool: blocks are conserved
        in_use = sum(1 for b in pool.blocks if b.ref_cnt > 0)
        assert pool.num_free_blocks + in_use == pool.num_blocks
        assert pool.num_used_blocks * a.spec.block_size == a.reserved_slots
    if isinstance(a, ContiguousAllocator):  # holes and extents tile the address space
        spans = sorted(
            [(s, s + n) for s, n in a.hole_size.items()]
            + [(e.start, e.start + e.length) for e in a.seq_to_extent.values()]
        )
        pos = 0
        for lo, hi in spans:
            assert lo == pos and hi > lo
            pos = hi
        assert pos == a.num_slots
        starts = sorted(a.hole_size)
        assert starts == a.hole_starts
        assert all(s + a.hole_size[s] not in a.hole_size for s in starts)  # merged


def _apply(a: Allocator, ops: list[tuple[str, int, int, int]]) -> dict[int, int]:
    live: dict[int, int] = {}
    for step, (op, sid, n, extra) in enumerate(ops):
        before = _snapshot(a)
        if op == "alloc" and sid not in live:
            if a.allocate(sid, n, n + extra, step):
                live[sid] = n
            elif a.kind != "paged_compressed":
                assert _snapshot(a) == before
        elif op == "append" and sid in live:
            if a.append(sid, n, step):
                live[sid] += n
            elif a.kind != "paged_compressed":
                assert _snapshot(a) == before
        elif op == "free" and sid in live:
            a.free(sid, step)
            del live[sid]
        _check(a, live)
    return live


@pytest.mark.parametrize("kind", allocator_kinds())
@settings(max_examples=150, deadline=None)
@given(
    ops=OPS,
    num_slots=st.integers(0, 80),
    block_size=st.integers(1, 6),
    ratio=st.sampled_from([0.25, 0.5]),
)
def test_invariants_hold_and_freeing_everything_restores_the_pool(
    kind: str, ops: list[tuple[str, int, int, int]], num_slots: int, block_size: int, ratio: float
) -> None:
    spec = AllocatorSpec(
        kind=kind,
        block_size=block_size,
        max_len=16,
        compression_ratio=ratio,
        pressure_threshold=0.75,
    )
    a = create_allocator(spec, num_slots)
    live = _apply(a, ops)
    for step, sid in enumerate(sorted(live)):
        a.free(sid, 1000 + step)
        del live[sid]
        _check(a, live)
    assert _snapshot(a) == (0, 0, 0, 0)
    pool: Any = getattr(a, "pool", None)
    if pool is not None:
        assert pool.num_free_blocks == pool.num_blocks
        assert all(b.ref_cnt == 0 for b in pool.blocks)
    if isinstance(a, ContiguousAllocator):
        assert a.hole_size == ({0: num_slots} if num_slots else {})


class _NaiveContiguous:
    """Reference first-fit over a list of cells (O(n) scans, obviously right)."""

    def __init__(self, n: int) -> None:
        self.cells: list[int | None] = [None] * n
        self.extent: dict[int, tuple[int, int]] = {}

    def _first_fit(self, length: int) -> int | None:
        run = 0
        for i, owner in enumerate(self.cells):
            run = run + 1 if owner is None else 0
            if run == length:
                return i - length + 1
        return None

    def _set(self, start: int, length: int, owner: int | None) -> None:
        for i in range(start, start + length):
            self.cells[i] = owner

    def allocate(self, sid: int, length: int) -> bool:
        start = self._first_fit(length)
        if start is None:
            return False
        self._set(start, length, sid)
        self.extent[sid] = (start, length)
        return True

    def grow(self, sid: int, need: int) -> bool:
        start, length = self.extent[sid]
        end = start + length
        if end + need <= len(self.cells) and all(c is None for c in self.cells[end : end + need]):
            self._set(end, need, sid)
        else:
            new = self._first_fit(length + need)
            if new is None:
                return False
            self._set(start, length, None)
            self._set(new, length + need, sid)
            start = new
        self.extent[sid] = (start, length + need)
        return True

    def free(self, sid: int) -> None:
        start, length = self.extent.pop(sid)
        self._set(start, length, None)


@settings(max_examples=300, deadline=None)
@given(ops=OPS, num_slots=st.integers(1, 60))
def test_contiguous_matches_a_naive_first_fit_reference(
    ops: list[tuple[str, int, int, int]], num_slots: int
) -> None:
    a = create_allocator(AllocatorSpec(kind="contiguous"), num_slots)
    assert isinstance(a, ContiguousAllocator)
    ref = _NaiveContiguous(num_slots)
    for step, (op, sid, n, _) in enumerate(ops):
        if op == "alloc" and sid not in ref.extent:
            assert a.allocate(sid, n, n, step) == ref.allocate(sid, n)
        elif op == "append" and sid in ref.extent:
            assert a.append(sid, n, step) == ref.grow(sid, n)
        elif op == "free" and sid in ref.extent:
            a.free(sid, step)
            ref.free(sid)
        assert {s: (e.start, e.length) for s, e in a.seq_to_extent.items()} == ref.extent
