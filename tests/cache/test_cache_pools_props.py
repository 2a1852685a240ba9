"""Hypothesis: racks are isolated unless cross-rack reads are on; per-request hit accounting
adds up with remote pools."""

from __future__ import annotations

from typing import Any

from cache_helpers import toy_cache_config
from hypothesis import given, settings
from hypothesis import strategies as st
from test_cache_driver_props import paths, to_requests

from kvsim.cache import run_cache
from kvsim.cache.driver import tier_specs
from kvsim.cache.replay import build_workers, prepare_trace


def pooled(workers: int, wpr: int | None, cross_rack: bool, hbm: int, pool: int) -> Any:
    return toy_cache_config(
        workers=workers,
        workers_per_rack=wpr,
        router="round_robin",
        pool={"cross_rack": cross_rack},
        tiers=[
            {"name": "hbm", "capacity": hbm},
            {"name": "dram", "capacity": 2},
            {"name": "pool", "capacity": pool, "scope": "rack"},
        ],
    )


@settings(max_examples=50, deadline=None)
@given(paths, st.integers(1, 3), st.integers(1, 6))
def test_without_cross_rack_a_rack_behaves_as_if_alone(items: list, hbm: int, pool: int) -> None:
    reqs = to_requests(items)
    # 4 workers, 2 per rack, round robin: request i -> worker i % 4; rack 0 gets i % 4 in {0, 1}
    both = run_cache(pooled(4, 2, False, hbm, pool), requests=reqs).table
    mine = [r for i, r in enumerate(reqs) if i % 4 < 2]
    alone = run_cache(pooled(2, None, False, hbm, pool), requests=mine).table
    rack0 = both[both["worker"] < 2]
    assert rack0["hit_blocks"].tolist() == alone["hit_blocks"].tolist()
    assert rack0["hit_blocks_pool"].tolist() == alone["hit_blocks_pool"].tolist()
    assert rack0["load_ms"].tolist() == alone["load_ms"].tolist()


@settings(max_examples=50, deadline=None)
@given(paths, st.integers(1, 3), st.integers(1, 6), st.integers(1, 3))
def test_remote_hits_add_up_and_capacities_hold(items: list, hbm: int, pool: int, wpr: int) -> None:
    reqs = to_requests(items)
    cfg = pooled(4, wpr, True, hbm, pool)
    t = run_cache(cfg, requests=reqs).table
    parts = t["hit_blocks_hbm"] + t["hit_blocks_dram"] + t["hit_blocks_pool"]
    assert (parts + t["hit_blocks_remote_pool"]).tolist() == t["hit_blocks"].tolist()
    assert (t["hit_blocks"] <= t["num_blocks"]).all()
    if wpr >= 4:  # a single rack: nobody to read from
        assert t["hit_blocks_remote_pool"].sum() == 0
    # replay again by hand and check every stack's invariants at the end
    trace = prepare_trace(reqs, None)
    specs = tier_specs(cfg, trace.block_size, trace.unique_blocks)
    workers = build_workers(specs, 4, 1.0, workers_per_rack=wpr, cross_rack_path=(1e9, 0.0))
    for i, r in enumerate(reqs):
        stack = workers[i % 4].stack
        res = stack.lookup(trace.hashes[i], r.arrival_s)
        stack.insert(trace.hashes[i][res.num_hit :], r.arrival_s, first_depth=res.num_hit + 1)
        for w in workers:
            w.stack.check_invariants()
    pools = {id(w.stack.tiers[2]) for w in workers}
    assert len(pools) == -(-4 // wpr)  # one pool object per rack
