"""Serving engine with memory tiers below HBM (issue 4 item 5): offload on HBM eviction,
prefix loaded back from DRAM/SSD with its transfer time on the critical path."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_multi_gpu_fuzz import random_cluster_scenario

from helpers import TOY_GPU, by_id, make_request, run_engine, toy_config
from kvsim.errors import ConfigError
from kvsim.metrics.summary import per_gpu_tier_fields, tier_summary
from kvsim.serving.seq import SeqState

BS = 16
BLOCK_BYTES = BS * 512  # toy model: 512 KV bytes per token


@pytest.fixture(autouse=True)
def wire_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pass ``cfg.cache`` to every Instance (a no-op once cluster.py passes ``cache=``)."""
    import kvsim.serving.cluster as cluster

    orig = cluster.Instance

    def make(setup: Any, sched: Any, loop: Any, obs: Any, hooks: Any = None, **kw: Any) -> Any:
        kw.setdefault("cache", hooks.cfg.cache)
        return orig(setup, sched, loop, obs, hooks, **kw)

    monkeypatch.setattr(cluster, "Instance", make)


def _cfg(tiers: list[dict[str, Any]] | None, blocks: int = 64, **cache: Any) -> Any:
    return toy_config(
        scheduler={"block_size": BS, "kv_capacity_blocks": blocks},
        cache={"tiers": tiers or [], **cache},
    )


def _session(with_flush: bool) -> list[Any]:
    """Turn 1 (40 blocks), optionally a 64-block request that evicts it all from HBM, then
    turn 2 (its 40 blocks + 20 new ones; 960 tokens), each alone on the GPU."""
    turn1 = list(range(1, 41))
    reqs = [make_request(0, 0.0, 640, 1, turn1)]
    if with_flush:
        reqs.append(make_request(1, 1.0, 1024, 1, list(range(100, 164))))
    reqs.append(make_request(2, 2.0, 960, 1, turn1 + list(range(41, 61))))
    return reqs


def _ttft(run: Any, rid: int) -> float:
    s = by_id(run)[rid]
    return float(s.first_token_s - s.req.arrival_s)


DRAM = {"name": "dram", "capacity": 100}


def test_dram_hit_costs_exactly_the_load_time() -> None:
    cfg = _cfg([DRAM])
    hbm = run_engine(cfg, _session(False))  # turn 2 hits its 40 blocks in HBM
    tm = hbm.instances[0].tm
    dram = run_engine(cfg, _session(True))  # evicted to DRAM, loaded back
    miss = run_engine(_cfg(None), _session(True))  # no tiers: recomputed
    load_s = 40 * BLOCK_BYTES / TOY_GPU.pcie_bandwidth_bytes_per_s + 5e-6
    assert by_id(hbm)[2].cached_tokens == by_id(dram)[2].cached_tokens == 640
    assert by_id(miss)[2].cached_tokens == 0
    assert _ttft(dram, 2) - _ttft(hbm, 2) == pytest.approx(load_s, abs=1e-12)
    # compute saved versus the miss: 960 tokens from scratch vs 320 after 640 cached
    step_miss = tm.step_time(960, 960 * 961 / 2, 960)
    step_hit = tm.step_time(320, 320 * 640 + 320 * 321 / 2, 960)
    assert _ttft(miss, 2) == pytest.approx(step_miss, abs=1e-12)
    assert _ttft(hbm, 2) == pytest.approx(step_hit, abs=1e-12)
    assert _ttft(miss, 2) - _ttft(dram, 2) == pytest.approx(
        step_miss - step_hit - load_s, abs=1e-12
    )
    inst = dram.instances[0]
    st_ = inst.tier_stats()["dram"]
    assert st_["hit_blocks"] == 40 and st_["promotions"] == 40  # type: ignore[index]
    # turn 1's 40 blocks offloaded by the flush, then 60 of the flush's by turn 2
    assert st_["demotions"] == 100 and st_["used_blocks"] == 60  # type: ignore[index]
    assert inst.lower.load_time_s == pytest.approx(load_s, abs=1e-15)
    s = tier_summary(dram.instances)
    query = 40 + 64 + 60
    assert s["prefix_hit_ratio_hbm"] == 0.0
    assert s["prefix_hit_ratio_dram"] == pytest.approx(40 / query)
    assert s["tier_loaded_blocks"] == 40 and s["tier_loads"] == 1
    assert s["tier_demotions"] == 100
    assert per_gpu_tier_fields(inst)["prefix_hit_ratio_dram"] == pytest.approx(40 / query)


def test_ssd_hit_after_dram_overflow_pays_ssd_read() -> None:
    """DRAM holds 10 blocks: 30 of turn 1 cascade to SSD; the load pays both transfers."""
    tiers = [{"name": "dram", "capacity": 10}, {"name": "ssd", "capacity": 1000}]
    dram_only = run_engine(_cfg([DRAM]), _session(True))
    both = run_engine(_cfg(tiers), _session(True))
    st_ = both.instances[0].tier_stats()
    # demotion order is turn 1's blocks tail first (hashes 40..1): DRAM keeps the last 10
    # demoted (hashes 10..1), SSD got 40..11
    assert st_["dram"]["hit_blocks"] == 10 and st_["ssd"]["hit_blocks"] == 30  # type: ignore[index]
    dram_s = 10 * BLOCK_BYTES / 1e10 + 5e-6
    ssd_s = 30 * BLOCK_BYTES / 7e9 + 100e-6
    hbm_ttft = _ttft(dram_only, 2) - (40 * BLOCK_BYTES / 1e10 + 5e-6)
    assert _ttft(both, 2) - hbm_ttft == pytest.approx(dram_s + ssd_s, abs=1e-12)


def test_inclusive_write_through_keeps_copies() -> None:
    cfg = _cfg([{"name": "dram", "capacity": 200}], inclusive=True, write_policy="write_through")
    run = run_engine(cfg, _session(True))
    st_ = run.instances[0].tier_stats()["dram"]
    # copied down when released: turn 1 (40), the flush request (64), turn 2's 20 new blocks;
    # the HBM evictions write nothing (copies are there) and the load keeps the copies
    assert st_["demotions"] == 124 and st_["used_blocks"] == 124  # type: ignore[index]
    assert st_["hit_blocks"] == 40  # type: ignore[index]
    assert by_id(run)[2].cached_tokens == 640


def test_config_errors() -> None:
    with pytest.raises(Exception, match="inclusive"):
        _cfg([DRAM], write_policy="write_through")
    with pytest.raises(Exception, match="no % or inf"):
        _cfg([{"name": "dram", "capacity": "10%"}])
    with pytest.raises(Exception, match="next-use"):
        _cfg(None, index="radix", eviction_policy="belady")
    with pytest.raises(Exception, match="hash_map evicts free blocks in LRU order"):
        _cfg(None, eviction_policy="arc")
    with pytest.raises(ConfigError, match="bandwidth"):
        run_engine(_cfg([{"name": "nvme2", "capacity": 10}]), _session(False))


def test_defaults_unchanged_without_tiers() -> None:
    a = run_engine(_cfg(None), _session(True))
    assert a.instances[0].pool.on_evict is None
    assert tier_summary(a.instances)["tier_demotions"] == 0


# ---------------------------------------------------------------- FF == exact, invariants
def tiered_scenario(seed: int, index: str = "hash_map") -> tuple[Any, list[Any]]:
    """A random multi-GPU scenario of the existing fuzz with small lower tiers added."""
    import numpy as np

    cfg, reqs = random_cluster_scenario(seed)
    rng = np.random.default_rng(seed + 11_000_000)
    tiers: list[dict[str, Any]] = [{"name": "dram", "capacity": int(rng.integers(5, 200))}]
    if rng.random() < 0.5:
        tiers.append({"name": "ssd", "capacity": int(rng.integers(5, 400)), "policy": "fifo"})
    inclusive = bool(rng.random() < 0.4)
    cache = {
        "prefix_caching": True,
        "index": index,
        "eviction_policy": str(rng.choice(["lru", "fifo", "lfu", "sieve", "s3fifo", "arc"]))
        if index == "radix"
        else "lru",
        "tiers": tiers,
        "inclusive": inclusive,
        "write_policy": "write_through" if inclusive and rng.random() < 0.5 else "write_back",
    }
    data = cfg.model_dump()
    data["cache"] = cache
    return type(cfg).model_validate(data), reqs


def assert_ff_equals_exact(cfg: Any, reqs: list[Any]) -> None:
    ff = run_engine(cfg, reqs, exact=False)
    ex = run_engine(cfg, reqs, exact=True)
    a, b = by_id(ff), by_id(ex)
    assert a.keys() == b.keys()
    for rid in a:
        x, y = a[rid], b[rid]
        assert (x.state, x.cached_tokens, x.instance, x.num_preemptions) == (
            y.state,
            y.cached_tokens,
            y.instance,
            y.num_preemptions,
        ), rid
        for fld in ("first_scheduled_s", "first_token_s", "finish_s"):
            assert getattr(x, fld) == pytest.approx(getattr(y, fld), rel=1e-9, abs=1e-9), (
                rid,
                fld,
            )
    for i, j in zip(ff.instances, ex.instances, strict=True):
        assert i.tier_stats() == j.tier_stats()
        i.lower.check_invariants()
        assert i.pool.num_used_blocks + i.pool.num_free_blocks == i.pool.num_blocks


@pytest.mark.parametrize("seed", range(40))
def test_ff_equals_exact_with_tiers(seed: int) -> None:
    assert_ff_equals_exact(*tiered_scenario(seed))


def _check_step(inst: Any) -> None:
    """HBM blocks conserved (used == blocks referenced; radix: + pinned tree blocks) and
    every lower tier within its capacity, at a step end."""
    from kvsim.serving.prefix_cache_radix import RadixBlockPool

    pool = inst.pool
    if isinstance(pool, RadixBlockPool):
        pool.check()
    else:
        assert sum(1 for b in pool._blocks if b.ref_cnt > 0) == pool.num_used_blocks
    assert pool.num_used_blocks + pool.num_free_blocks == pool.num_blocks
    inst.lower.check_invariants()
    for t in inst.lower.tiers:
        assert t.policy.used <= t.capacity


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10**6), st.sampled_from(["hash_map", "radix"]))
def test_tier_invariants(seed: int, index: str) -> None:
    from kvsim.serving.instance import Instance

    cfg, reqs = tiered_scenario(seed, index)
    orig = Instance._on_step_end
    steps = [0]

    def on_step_end(self: Any, now: float, version: int) -> None:
        orig(self, now, version)
        _check_step(self)
        steps[0] += 1

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Instance, "_on_step_end", on_step_end)
        run = run_engine(cfg, reqs)
    assert steps[0] > 0
    for inst in run.instances:
        _check_step(inst)
        pool = inst.pool
        assert pool.num_used_blocks == 0  # every request ended: HBM blocks all back
        assert not inst.loading_seqs() and inst.num_incoming == 0
    for s in run.seqs:
        assert s.state in (SeqState.FINISHED, SeqState.REJECTED)
