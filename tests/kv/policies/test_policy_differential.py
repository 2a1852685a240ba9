"""Differential tests: each policy against a naive reference (``policy_refs.py``) on
hypothesis-generated unit-size traces; the hit/miss sequences must agree access by access."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_refs import (
    ref_2q,
    ref_arc,
    ref_belady,
    ref_clock,
    ref_fifo,
    ref_lfu,
    ref_lru,
    ref_lru_k,
    ref_mru,
    ref_s3fifo,
    ref_sieve,
    run_hits,
)

from kvsim.kv.policies import EvictionPolicy, create_policy

traces = st.lists(st.integers(0, 12), min_size=0, max_size=160)
capacities = st.integers(1, 9)

Case = tuple[Callable[[int], EvictionPolicy], Callable[[list[int], int], list[bool]]]


def _s3fifo_ref(trace: list[int], c: int) -> list[bool]:
    pol = create_policy("s3fifo", capacity=c)
    return ref_s3fifo(trace, c, pol.small_target, pol.ghost_cap)  # type: ignore[attr-defined]


def _2q_ref(trace: list[int], c: int) -> list[bool]:
    pol = create_policy("2q", capacity=c)
    return ref_2q(trace, c, pol.kin, pol.kout)  # type: ignore[attr-defined]


CASES: dict[str, Case] = {
    "lru": (lambda c: create_policy("lru", capacity=c), ref_lru),
    "fifo": (lambda c: create_policy("fifo", capacity=c), ref_fifo),
    "lfu": (lambda c: create_policy("lfu", capacity=c), ref_lfu),
    "mru": (lambda c: create_policy("mru", capacity=c), ref_mru),
    "clock": (lambda c: create_policy("clock", capacity=c), ref_clock),
    "sieve": (lambda c: create_policy("sieve", capacity=c), ref_sieve),
    "belady": (lambda c: create_policy("belady", capacity=c), ref_belady),
    "arc": (lambda c: create_policy("arc", capacity=c), ref_arc),
    "2q": (lambda c: create_policy("2q", capacity=c), _2q_ref),
    "s3fifo": (lambda c: create_policy("s3fifo", capacity=c), _s3fifo_ref),
    # history_ratio large enough that the retained history never drops a key in these traces
    "lru-k": (lambda c: create_policy("lru-k", capacity=c, history_ratio=100.0), ref_lru_k),
    # degenerate configurations that must coincide with a simpler policy
    "ttl=inf,refresh": (lambda c: create_policy("ttl", capacity=c), ref_lru),
    "ttl=inf,no-refresh": (
        lambda c: create_policy("ttl", capacity=c, refresh_on_access=False),
        ref_fifo,
    ),
    "priority(no pins)": (lambda c: create_policy("priority", capacity=c), ref_lru),
    "tenant(one tenant, lru)": (lambda c: create_policy("tenant", capacity=c), ref_lru),
    "tenant(one tenant, lfu)": (
        lambda c: create_policy("tenant", capacity=c, inner="lfu"),
        ref_lfu,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@settings(max_examples=150, deadline=None)
@given(trace=traces, capacity=capacities)
def test_policy_matches_reference(case: str, trace: list[int], capacity: int) -> None:
    make, ref = CASES[case]
    got = run_hits(make(capacity), trace, capacity)
    want = ref(trace, capacity)
    if got != want:
        first = next(i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b)
        pytest.fail(f"{case}: first disagreement at access {first} (key {trace[first]})")


@settings(max_examples=100, deadline=None)
@given(trace=st.lists(st.integers(0, 30), max_size=300), capacity=st.integers(1, 12))
def test_arc_matches_reference_wide_alphabet(trace: list[int], capacity: int) -> None:
    """More keys than the cache can ghost-track, so the ghost-trimming cases are exercised."""
    assert run_hits(create_policy("arc", capacity=capacity), trace, capacity) == ref_arc(
        trace, capacity
    )


@settings(max_examples=100, deadline=None)
@given(trace=st.lists(st.integers(0, 30), max_size=300), capacity=st.integers(2, 20))
def test_s3fifo_and_2q_match_reference_wide_alphabet(trace: list[int], capacity: int) -> None:
    assert run_hits(create_policy("s3fifo", capacity=capacity), trace, capacity) == _s3fifo_ref(
        trace, capacity
    )
    assert run_hits(create_policy("2q", capacity=capacity), trace, capacity) == _2q_ref(
        trace, capacity
    )
