"""Golden miss counts per policy on small deterministic traces, and hand-worked examples.

Regenerate the pinned numbers deliberately (after a justified behaviour change) with::

    .venv/bin/python tests/kv/policies/test_policy_golden.py

which prints the dicts to paste below. A newly registered policy fails
``test_every_policy_has_golden_numbers`` until its numbers are pinned here.
"""

from __future__ import annotations

import numpy as np
import pytest

from kvsim.kv.policies import EvictionPolicy, create_policy, policy_names, simulate_misses

ZIPF_CAPACITIES = (10, 20, 50)


def zipf_trace(num_accesses: int = 2000, num_keys: int = 200, alpha: float = 0.9) -> list[int]:
    """Seeded Zipf(alpha) trace over ``num_keys`` keys (key 0 the most popular)."""
    rng = np.random.default_rng(20261123)
    weights = 1.0 / np.arange(1, num_keys + 1) ** alpha
    keys = rng.choice(num_keys, size=num_accesses, p=weights / weights.sum())
    return [int(k) for k in keys]


def separating_trace() -> list[int]:
    """A trace on which recency (LRU), frequency (LFU) and ARC must disagree (capacity 20).

    Phase 1: a hot set 0..9 read 30 times each (high counts). Phase 2: a loop over a new
    working set 100..114 (15 keys), 20 rounds, with the old hot set no longer used -- LFU
    clings to the stale hot keys. Phase 3: the hot set comes back, interleaved with a scan of
    one-time keys 1000.. -- LRU lets the scan flush it.
    """
    trace = [k for _ in range(30) for k in range(10)]
    trace += [k for _ in range(20) for k in range(100, 115)]
    scan = iter(range(1000, 10_000))
    for _ in range(20):
        trace += list(range(10)) + [next(scan) for _ in range(15)]
    return trace


# Produced once by ``main()`` below (simulate_misses, unit sizes, default parameters) on
# 2026-11-23 and pinned; belady is the lower bound of every column.
GOLDEN_ZIPF: dict[str, dict[int, int]] = {
    "2q": {10: 1311, 20: 1078, 50: 787},
    "arc": {10: 1325, 20: 1075, 50: 768},
    "belady": {10: 1044, 20: 781, 50: 469},
    "clock": {10: 1490, 20: 1206, 50: 811},
    "fifo": {10: 1565, 20: 1343, 50: 955},
    "lfu": {10: 1213, 20: 1005, 50: 720},
    "lru": {10: 1524, 20: 1241, 50: 839},
    "lru-k": {10: 1290, 20: 1045, 50: 735},
    "mru": {10: 1838, 20: 1723, 50: 1424},
    "priority": {10: 1524, 20: 1241, 50: 839},
    "s3fifo": {10: 1238, 20: 1020, 50: 730},
    "sieve": {10: 1258, 20: 1015, 50: 715},
    "tenant": {10: 1524, 20: 1241, 50: 839},
    "ttl": {10: 1524, 20: 1241, 50: 839},
}
GOLDEN_SEPARATING: dict[str, int] = {
    "2q": 335,
    "arc": 345,
    "belady": 330,
    "clock": 535,
    "fifo": 525,
    "lfu": 610,
    "lru": 525,
    "lru-k": 464,
    "mru": 570,
    "priority": 525,
    "s3fifo": 503,
    "sieve": 610,
    "tenant": 525,
    "ttl": 525,
}


def _default(name: str, capacity: int) -> EvictionPolicy:
    return create_policy(name, capacity=capacity)


@pytest.mark.parametrize("name", policy_names())
def test_every_policy_has_golden_numbers(name: str) -> None:
    assert name in GOLDEN_ZIPF and name in GOLDEN_SEPARATING, (
        f"pin golden numbers for {name!r}: run tests/kv/policies/test_policy_golden.py"
    )


@pytest.mark.parametrize("name", sorted(GOLDEN_ZIPF))
def test_golden_zipf(name: str) -> None:
    trace = zipf_trace()
    got = {c: simulate_misses(_default(name, c), trace, c) for c in ZIPF_CAPACITIES}
    assert got == GOLDEN_ZIPF[name]


@pytest.mark.parametrize("name", sorted(GOLDEN_SEPARATING))
def test_golden_separating(name: str) -> None:
    assert simulate_misses(_default(name, 20), separating_trace(), 20) == GOLDEN_SEPARATING[name]


def test_arc_lru_lfu_differ() -> None:
    """A seed once reported identical numbers for ARC, LRU and LFU; ours must not."""
    trace = separating_trace()
    misses = {n: simulate_misses(_default(n, 20), trace, 20) for n in ("arc", "lru", "lfu")}
    assert len(set(misses.values())) == 3, misses
    zipf = zipf_trace()
    misses = {n: simulate_misses(_default(n, 20), zipf, 20) for n in ("arc", "lru", "lfu")}
    assert len(set(misses.values())) == 3, misses


# Hand-worked, capacity 3, indices 0..12:  A B C A D A B E A B C D A
# lru   : misses at 0 1 2 4 6 7 10 11 12               -> 9   (hits: 3 5 8 9)
# fifo  : misses at 0 1 2 4 5 6 7 10 11 12             -> 10  (D evicts A at 4; A misses at 5)
# lfu   : misses at 0 1 2 4 6 7 10 11                  -> 8   (A reaches count 4, kept at 11/12;
#         at 4 B and C tie at count 1, B is older; at 11 C evicted, not A)
# mru   : misses at 0 1 2 4 5 7 9 11 12                -> 9   (D evicts A, the MRU, at 4)
# belady: misses at 0 1 2 4 7 10 11                    -> 7   (at 4 evict C: next use 10;
#         at 7 evict D: next use 11; at 10/11 evict keys never used again)
HAND_TRACE = list("ABCADABEABCDA")
HAND_MISSES = {"lru": 9, "fifo": 10, "lfu": 8, "mru": 9, "belady": 7}


@pytest.mark.parametrize("name", sorted(HAND_MISSES))
def test_hand_worked(name: str) -> None:
    assert simulate_misses(_default(name, 3), HAND_TRACE, 3) == HAND_MISSES[name]


def test_arc_hand_worked() -> None:
    """ARC (FAST'03, Fig. 4) by hand, c = 2, trace A B A C A B D B C A:

    step key case          p   REPLACE                    T1     T2     B1    B2
    1    A   IV (miss)     0   -                          A      -      -     -
    2    B   IV            0   -                          A B    -      -     -
    3    A   I (hit)       0   -                          B      A      -     -
    4    C   IV, total=2   0   |T1|=1>0: B -> B1          C      A      B     -
    5    A   I (hit)       0   -                          C      A      B     -
    6    B   II (in B1)    1   |T1|=1 !> 1: A -> B2       C      B      -     A
    7    D   IV, total=3   1   |T1|=1 !> 1: B -> B2       C D    -      -     A B
    8    B   III (in B2)   0   |T1|=2>0: C -> B1          D      B      C     A
    9    C   II (in B1)    1   |T1|=1 !> 1: B -> B2       D      C      -     A B
    10   A   III (in B2)   0   |T1|=1>0: D -> B1          -      C A    D     B
    """
    arc = create_policy("arc", capacity=2)
    hits = []
    for i, key in enumerate("ABACABDBCA"):
        if key in arc:
            arc.on_access(key, i)
            hits.append(i + 1)
            continue
        while arc.used >= 2:
            arc.evict(key)
        arc.on_insert(key, 1, i)
        if i + 1 == 9:
            assert arc.lists() == (["D"], ["C"], [], ["A", "B"])  # type: ignore[attr-defined]
            assert arc.p == 1.0  # type: ignore[attr-defined]
    assert hits == [3, 5]
    assert arc.lists() == ([], ["C", "A"], ["D"], ["B"])  # type: ignore[attr-defined]
    assert arc.p == 0.0  # type: ignore[attr-defined]


def main() -> None:
    """Print the golden dicts for pasting into this file."""
    zipf, sep = zipf_trace(), separating_trace()
    print("GOLDEN_ZIPF: dict[str, dict[int, int]] = {")
    for name in policy_names():
        got = {c: simulate_misses(_default(name, c), zipf, c) for c in ZIPF_CAPACITIES}
        print(f"    {name!r}: {got},")
    print("}")
    print("GOLDEN_SEPARATING: dict[str, int] = {")
    for name in policy_names():
        print(f"    {name!r}: {simulate_misses(_default(name, 20), sep, 20)},")
    print("}")


if __name__ == "__main__":
    main()
