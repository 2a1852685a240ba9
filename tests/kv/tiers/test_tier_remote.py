"""TierStack with a network path and remote pools: exact load times, counters, residency."""

from __future__ import annotations

import pytest

from kvsim.errors import ConfigError
from kvsim.kv.tiers import RemotePools, Tier, TierSpec, TierStack

BLOCK = 100.0  # bytes per block


def pool() -> Tier:
    # 1000 B/s pool, 0.5 s latency, behind a 400 B/s / 0.25 s intra-rack path
    return Tier(
        TierSpec(
            "pool",
            10,
            read_bandwidth_bytes_per_s=1000.0,
            write_bandwidth_bytes_per_s=1000.0,
            latency_s=0.5,
            shared=True,
            per_rack=True,
            path_bandwidth_bytes_per_s=400.0,
            path_latency_s=0.25,
        )
    )


def stack(pools: list[Tier], rack: int, remote: bool) -> TierStack:
    top = Tier(TierSpec("hbm", 1))
    rp = RemotePools(pools, rack, 200.0, 1.0) if remote else None  # cross-rack: 200 B/s, 1 s
    return TierStack([top, pools[rack]], block_bytes=BLOCK, remote=rp)


def test_path_figures_price_reads_and_writes() -> None:
    t = pool()
    assert t.read_time(200.0) == 200.0 / 400.0 + 0.5 + 0.25
    assert t.write_time(200.0) == 200.0 / 400.0 + 0.5 + 0.25
    with pytest.raises(ConfigError):
        TierSpec("p", 1, per_rack=True)  # per-rack implies shared


def test_remote_hit_is_copied_up_and_priced_on_the_cross_rack_path() -> None:
    pools = [pool(), pool(), pool()]
    a = stack(pools, 0, remote=True)
    a.insert([1], 0.0)
    a.insert([2], 1.0)  # evicts 1 from hbm -> demoted into rack 0's pool
    assert 1 in pools[0].policy
    b = stack(pools, 2, remote=True)  # rack 2 searches rack 0, then rack 1
    res = b.lookup([1, 3], 2.0)
    assert (res.num_hit, res.hits_per_tier, res.num_remote_hit) == (1, (0, 0), 1)
    # pool latency + cross-rack latency + bytes / min(pool bw, cross-rack bw)
    assert res.load_time_s == BLOCK / 200.0 + (0.5 + 1.0)
    assert 1 in b.tiers[0].policy and 1 in pools[0].policy  # copied, remote keeps it
    assert 1 not in pools[2].policy  # nothing written into the reader's pool by the read
    assert (pools[0].counters.remote_hits, pools[0].counters.hits) == (1, 0)
    assert (b.num_remote_hits, b.num_hits, b.num_misses) == (1, 1, 1)
    # both local tiers count the remote block and the stopping block as misses
    assert [t.counters.misses for t in b.tiers] == [2, 2]
    b.check_invariants()


def test_without_remote_other_racks_are_invisible() -> None:
    pools = [pool(), pool()]
    a = stack(pools, 0, remote=False)
    a.insert([1], 0.0)
    a.insert([2], 1.0)
    b = stack(pools, 1, remote=False)
    assert b.lookup([1], 2.0).num_hit == 0
    same_rack = stack(pools, 0, remote=False)  # another worker of rack 0
    res = same_rack.lookup([1], 3.0)
    assert (res.num_hit, res.hits_per_tier) == (1, (0, 1))
    assert res.load_time_s == BLOCK / 400.0 + 0.5 + 0.25


def test_local_copy_wins_over_remote() -> None:
    pools = [pool(), pool()]
    a, b = stack(pools, 0, remote=True), stack(pools, 1, remote=True)
    for s in (a, b):
        s.insert([7], 0.0)
        s.insert([8], 1.0)  # 7 demoted into each rack's own pool
    res = b.lookup([7], 2.0)
    assert (res.hits_per_tier, res.num_remote_hit) == ((0, 1), 0)
    assert pools[0].counters.remote_hits == 0


def test_inclusive_copy_evicted_during_its_own_promotion_keeps_next_use() -> None:
    # Regression: promoting A (copy in the last tier) evicts B from HBM, whose demotion evicts
    # A's old copy from the last tier while A is in flight; A's next use must survive, or the
    # belady tiers later refuse A without one.
    tiers = [Tier(TierSpec("hbm", 1, policy="belady")), Tier(TierSpec("dram", 1, policy="belady"))]
    s = TierStack(tiers, block_bytes=BLOCK, inclusive=True)
    s.insert(["A"], 0.0, next_use=[10])
    s.insert(["B"], 1.0, next_use=[20])  # A demoted into dram
    res = s.lookup(["A"], 2.0, next_use=[30])  # B -> dram evicts A's copy while A moves up
    assert res.hits_per_tier == (0, 1)
    assert ("A" in tiers[0].policy, "B" in tiers[1].policy, "A" in tiers[1].policy) == (
        True,
        True,
        False,
    )
    assert s.num_dropped == 0  # A never left the stack
    s.insert(["C"], 3.0, next_use=[40])  # evicts A from HBM: demoting it needs its next use
    assert tiers[1].policy.next_use("A") == 30  # type: ignore[attr-defined]
    s.check_invariants()
