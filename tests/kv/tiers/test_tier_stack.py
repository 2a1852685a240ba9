"""TierStack on hand-worked traces: exact residency, counters, load times.

Every stack here uses LRU tiers named t0, t1, t2 with 100-byte blocks; tier t1 reads and writes
at 1000 B/s with 0.5 s latency, t2 at 100 B/s with 2 s latency (so a load of n blocks from t1
takes n * 0.1 + 0.5 s, from t2 n * 1 + 2 s).
"""

from __future__ import annotations

import pytest

from kvsim.errors import ConfigError
from kvsim.kv.tiers import Tier, TierSpec, TierStack

_BW = {0: (float("inf"), 0.0), 1: (1000.0, 0.5), 2: (100.0, 2.0)}


def make(caps: list[int], policy: str = "lru", **kw: object) -> TierStack:
    tiers = [
        Tier(
            TierSpec(
                f"t{k}",
                cap,
                policy=policy,
                read_bandwidth_bytes_per_s=_BW[k][0],
                write_bandwidth_bytes_per_s=_BW[k][0],
                latency_s=_BW[k][1],
            )
        )
        for k, cap in enumerate(caps)
    ]
    return TierStack(tiers, block_bytes=100.0, **kw)  # type: ignore[arg-type]


def residency(stack: TierStack, keys: range = range(20)) -> list[set[int]]:
    return [{k for k in keys if k in t.policy} for t in stack.tiers]


def test_exclusive_promotion_and_demotion_counts() -> None:
    s = make([2, 4])
    s.insert([1, 2, 3], 0.0)
    assert residency(s) == [{2, 3}, {1}]
    res = s.lookup([1, 9], 1.0)
    assert (res.num_hit, res.hits_per_tier, res.num_blocks) == (1, (0, 1), 2)
    assert res.load_time_s == pytest.approx(0.1 + 0.5)
    # 1 moved up; LRU victim 2 moved down: every block in exactly one tier
    assert residency(s) == [{3, 1}, {2}]
    t0, t1 = (t.counters for t in s.tiers)
    assert (t0.inserts, t0.evictions, t0.hits, t0.misses) == (4, 2, 0, 2)
    assert (t1.inserts, t1.demotions, t1.promotions, t1.hits, t1.misses) == (2, 2, 1, 1, 1)
    assert (s.num_accesses, s.num_hits, s.num_misses) == (2, 1, 1)


def test_inclusive_keeps_lower_copies_and_skips_redundant_demotions() -> None:
    s = make([2, 4], inclusive=True)
    s.insert([1, 2, 3], 0.0)
    s.lookup([1], 1.0)
    assert residency(s) == [{3, 1}, {1, 2}]  # 1 copied up, its lower copy stays
    s.insert([5], 2.0)  # evicts 3 -> demoted
    s.insert([6], 3.0)  # evicts 1 -> t1 already holds it: no write
    assert residency(s) == [{5, 6}, {1, 2, 3}]
    assert s.tiers[1].counters.demotions == 3
    assert s.tiers[0].counters.evictions == 4
    assert s.tiers[1].counters.bytes_written == 300.0


def test_write_through_versus_write_back() -> None:
    wt = make([2, 4], inclusive=True, write_policy="write_through")
    wb = make([2, 4], inclusive=True, write_policy="write_back")
    for s in (wt, wb):
        s.insert([1, 2, 3], 0.0)
    assert residency(wt) == [{2, 3}, {1, 2, 3}]
    assert residency(wb) == [{2, 3}, {1}]
    assert (wt.tiers[1].counters.inserts, wt.tiers[1].counters.demotions) == (3, 0)
    assert (wb.tiers[1].counters.inserts, wb.tiers[1].counters.demotions) == (1, 1)
    assert wt.tiers[1].counters.write_time_s == pytest.approx(3 * (0.1 + 0.5))


def test_write_through_needs_inclusive() -> None:
    with pytest.raises(ConfigError, match="inclusive"):
        make([2, 4], write_policy="write_through")


def test_selective_by_depth() -> None:
    s = make([1, 4], write_policy="selective", max_depth=1)
    s.insert([1, 2, 3], 0.0)  # depths 1, 2, 3; 2 is evicted at depth 2 > 1 -> dropped
    assert residency(s) == [{3}, {1}]
    assert s.num_dropped == 1
    assert s.tiers[1].counters.demotions == 1


def test_selective_by_hit_count() -> None:
    s = make([1, 4], write_policy="selective", max_depth=None, min_hits=1)
    s.insert([7], 0.0)
    assert s.lookup([7], 1.0).num_hit == 1
    s.insert([8], 2.0)  # evicts 7 (1 hit) -> demoted
    s.insert([9], 3.0)  # evicts 8 (0 hits) -> dropped
    assert residency(s) == [{9}, {7}]


def test_selective_needs_a_criterion() -> None:
    with pytest.raises(ConfigError, match="selective"):
        make([1, 4], write_policy="selective")


def test_session_prefetch_used_and_wasted() -> None:
    s = make([2, 4])
    s.insert([1, 2, 3], 0.0)
    s.insert([4, 5], 1.0)
    assert residency(s) == [{4, 5}, {1, 2, 3}]
    # bring 1, 2, 3 up: 3's arrival evicts the prefetched 1 again (wasted)
    assert s.prefetch([1, 2, 3], 2.0) == 3
    assert residency(s) == [{2, 3}, {1, 4, 5}]
    assert (s.num_prefetch_issued, s.num_prefetch_wasted) == (3, 1)
    assert s.tiers[1].counters.prefetches == 3
    res = s.lookup([1, 2, 3], 3.0)
    assert res.hits_per_tier == (2, 1)
    assert (s.num_prefetch_used, s.num_prefetch_wasted, s.num_prefetch_pending) == (2, 1, 0)


def test_prefetch_stops_at_the_first_block_resident_nowhere() -> None:
    s = make([1, 4])
    s.insert([1, 2], 0.0)  # t0 {2}, t1 {1}
    assert s.prefetch([5, 1], 1.0) == 0
    assert residency(s) == [{2}, {1}]


def test_load_time_sums_one_transfer_per_lower_tier() -> None:
    s = make([1, 2, 2])
    s.insert([1, 2, 3, 4, 5], 0.0)
    # t0 {5}; t1 {3, 4}; t2 {1, 2}
    assert residency(s) == [{5}, {3, 4}, {1, 2}]
    res = s.lookup([1, 2, 3, 4, 5], 1.0)
    assert res.hits_per_tier == (1, 2, 2)
    assert res.load_time_s == pytest.approx((2 * 0.1 + 0.5) + (2 * 1.0 + 2.0))
    assert s.tiers[2].counters.read_time_s == pytest.approx(4.0)


def test_prefix_semantics_stop_at_the_first_missing_block() -> None:
    s = make([4, 4])
    s.insert([1, 2, 3], 0.0)
    res = s.lookup([1, 7, 3], 1.0)  # 3 is cached but follows a miss
    assert (res.num_hit, res.hits_per_tier) == (1, (1, 0))
    assert (s.num_hits, s.num_misses) == (1, 2)
    c0 = s.tiers[0].counters
    assert (c0.hits, c0.misses) == (1, 1)  # the walk covers 1 and the block that stopped it


def test_peek_prefix_is_read_only() -> None:
    s = make([2, 4])
    s.insert([1, 2, 3], 0.0)
    before = [t.counters.as_dict() for t in s.tiers], residency(s)
    assert s.peek_prefix([1, 2, 3, 4]) == 3
    assert s.peek_prefix([1, 2, 3], num_tiers=1) == 0
    assert ([t.counters.as_dict() for t in s.tiers], residency(s)) == before


def test_shared_tier_keeps_its_copy_on_promotion() -> None:
    pool = Tier(TierSpec("pool", 8, read_bandwidth_bytes_per_s=1000.0, shared=True))
    a = TierStack([Tier(TierSpec("hbm", 1)), pool], block_bytes=100.0)
    b = TierStack([Tier(TierSpec("hbm", 1)), pool], block_bytes=100.0)
    a.insert([1, 2], 0.0)  # 1 demoted into the shared pool
    assert b.lookup([1], 1.0).hits_per_tier == (0, 1)  # b finds a's block
    assert 1 in pool.policy  # still there for everyone


def test_belady_tiers_get_next_use_on_demotion() -> None:
    s = make([1, 2], policy="belady")
    s.insert([1, 2, 3], 0.0, next_use=[10, 5, 7])
    # t0 keeps 3; 1 and 2 went down with their next uses; belady in t1 ranks by them
    assert residency(s) == [{3}, {1, 2}]
    s.insert([4], 1.0, next_use=[20])  # 3 demoted: t1 evicts the furthest next use (1 @ 10)
    assert residency(s) == [{4}, {2, 3}]
