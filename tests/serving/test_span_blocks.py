"""Block demand of decode spans, against a step-by-step reference."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kvsim.serving.span_blocks import block_demand, span_block_owners, steps_within_free_blocks


def test_block_demand_exact() -> None:
    # bs = 4: seq A needs blocks at steps 1, 5, 9; seq B at 3, 7
    assert block_demand([1, 3], 4, 0) == 0
    assert block_demand([1, 3], 4, 1) == 1
    assert block_demand([1, 3], 4, 3) == 2
    assert block_demand([1, 3], 4, 9) == 5


def test_steps_within_free_blocks_exact() -> None:
    # free = 2: steps 0..3 need 2 blocks (at 1 and 3); step 5 needs the third
    assert steps_within_free_blocks([1, 3], 4, 100, 2) == 5
    assert steps_within_free_blocks([1, 3], 4, 4, 0) == 1
    assert steps_within_free_blocks([1, 3], 4, 3, 0) == 1
    assert steps_within_free_blocks([50], 4, 10, 0) == 10


def test_owners_follow_step_then_position_order() -> None:
    # positions 0 (f=3) and 1 (f=1), bs = 4, last step 9: events 1,3,5,7,9 -> 1,0,1,0,1
    assert span_block_owners([(3, 0), (1, 1)], [2, 3], 4) == [1, 0, 1, 0, 1]
    # general path (f > bs): position 0 at 6, position 1 at 2, 5, 8 (bs = 3)
    assert span_block_owners([(6, 0), (2, 1)], [1, 3], 3) == [1, 1, 0, 1]


def reference(firsts: list[int], bs: int, n: int, free: int) -> tuple[int, list[int]]:
    owners: list[int] = []
    for k in range(1, n):
        step = [i for i, f in enumerate(firsts) if k >= f and (k - f) % bs == 0]
        if len(owners) + len(step) > free:
            return k, owners
        owners += step
    return n, owners


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(1, 40), min_size=1, max_size=12),
    st.integers(1, 16),
    st.integers(1, 120),
    st.integers(0, 60),
)
def test_against_step_by_step_reference(firsts, bs, n, free) -> None:
    m, owners = reference(firsts, bs, n, free)
    assert steps_within_free_blocks(firsts, bs, n, free) == m
    needy = [(f, i) for i, f in enumerate(firsts) if f <= m - 1]
    counts = [(m - 1 - f) // bs + 1 for f, _ in needy]
    got = span_block_owners(needy, counts, bs) if needy else []
    assert got == owners
