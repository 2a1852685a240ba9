"""Bulk span-block hand-out of :class:`SpanSteps` against the reference owner order."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kvsim.serving.instance_span import SpanSteps
from kvsim.serving.span_blocks import span_block_owners


class _Pool:
    def allocate(self, n: int) -> list[int]:
        return list(range(n))


def _hand_out(firsts: list[int], last: int, bs: int) -> list[list[Any]]:
    inst: Any = SpanSteps()
    inst.block_size = bs
    inst.pool = _Pool()
    inst.running = [SimpleNamespace(blocks=[]) for _ in firsts]
    needy = [(f, i) for i, f in enumerate(firsts) if f <= last]
    if needy:
        inst._allocate_span_blocks(needy, last)
    return [s.blocks for s in inst.running]


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from([1, 2, 4, 16]),
    st.lists(st.integers(1, 40), min_size=1, max_size=9),
    st.integers(1, 80),
)
def test_hand_out_matches_reference_order(bs: int, firsts: list[int], last: int) -> None:
    """Block k of the allocation goes to the k-th (step, position) needing one."""
    got = _hand_out(firsts, last, bs)
    needy = [(f, i) for i, f in enumerate(firsts) if f <= last]
    want: list[list[int]] = [[] for _ in firsts]
    if needy:
        counts = [(last - f) // bs + 1 for f, _ in needy]
        for k, i in enumerate(span_block_owners(needy, counts, bs)):
            want[i].append(k)
    assert got == want


def test_hand_out_exact_order() -> None:
    # bs 4, steps 1..9: seq 0 needs blocks at steps 3, 7; seq 1 at 1, 5, 9; seq 2 at 3, 7
    assert _hand_out([3, 1, 3], 9, 4) == [[1, 4], [0, 3, 6], [2, 5]]
    # one block each: by step, then position
    assert _hand_out([2, 1, 2, 9], 3, 4) == [[1], [0], [2], []]
