"""Racks and shared pools in the cache replay: per-rack pools, cross-rack reads, remote SSD,
exact pool load times, load skew."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from cache_helpers import toy_cache_config

from helpers import make_request
from kvsim.cache import run_cache
from kvsim.errors import ConfigError

BS = 1000
BLOCK_BYTES = BS * 512  # toy model: 512 B per token
NET = {
    "network_gbytes_per_s": 10,
    "network_latency_us": 5,
    "cross_rack_gbytes_per_s": 4,
    "cross_rack_latency_us": 30,
}
POOL = {
    "name": "pool",
    "capacity": 100,
    "scope": "rack",
    "read_bandwidth_bytes_per_s": 20e9,
    "write_bandwidth_bytes_per_s": 20e9,
    "latency_us": 10,
}


def req(rid: int, t: float, hashes: list[int]):
    return make_request(rid, t, 2000, 10, hashes, hash_block_size=BS)


# 4 workers, 2 per rack, round robin: request i runs on worker i % 4 (rack (i % 4) // 2).
# r4 on worker 0 evicts blocks 1, 2 from its 2-block HBM into rack 0's pool; r5 (worker 1,
# rack 0) and r6 (worker 2, rack 1) then ask for them.
TRACE = [
    req(0, 0.0, [1, 2]),
    req(1, 1.0, [3, 4]),
    req(2, 2.0, [5, 6]),
    req(3, 3.0, [7, 8]),
    req(4, 4.0, [9, 10]),
    req(5, 5.0, [1, 2]),
    req(6, 6.0, [1, 2]),
]


def config(cross_rack: bool, **extra: Any):
    fields: dict[str, Any] = {
        "workers": 4,
        "workers_per_rack": 2,
        "router": "round_robin",
        "network": NET,
        "pool": {"cross_rack": cross_rack},
        "tiers": [{"name": "hbm", "capacity": 2}, POOL],
    }
    fields.update(extra)
    return toy_cache_config(**fields)


def test_pool_hits_are_shared_within_a_rack_not_across() -> None:
    res = run_cache(config(cross_rack=False), requests=TRACE)
    t = res.table
    assert t["worker"].tolist() == [0, 1, 2, 3, 0, 1, 2]
    assert t["hit_blocks_pool"].tolist() == [0, 0, 0, 0, 0, 2, 0]  # r6 is in rack 1: miss
    assert t["hit_blocks"].tolist() == [0, 0, 0, 0, 0, 2, 0]
    assert "hit_blocks_remote_pool" not in t.columns
    # pool hit: pool latency + intra-rack path latency + bytes / min(pool bw, path bw)
    want = 2 * BLOCK_BYTES / min(20e9, 10e9) + 10e-6 + 5e-6
    assert t["load_ms"].iloc[5] == pytest.approx(want * 1e3, rel=1e-12)
    s = res.summary
    # demotions: 1,2 (r4, rack 0), 3,4 (r5, rack 0), 5,6 (r6, rack 1)
    assert (s["num_racks"], s["hits_pool"], s["demotions_pool"]) == (2, 2, 6)


def test_cross_rack_reads_when_enabled() -> None:
    res = run_cache(config(cross_rack=True), requests=TRACE)
    t = res.table
    assert t["hit_blocks_pool"].tolist() == [0, 0, 0, 0, 0, 2, 0]
    assert t["hit_blocks_remote_pool"].tolist() == [0, 0, 0, 0, 0, 0, 2]
    assert t["hit_blocks"].tolist() == [0, 0, 0, 0, 0, 2, 2]
    # remote pool hit: pool latency + cross-rack latency + bytes / min(pool bw, cross-rack bw)
    want = 2 * BLOCK_BYTES / min(20e9, 4e9) + 10e-6 + 30e-6
    assert t["load_ms"].iloc[6] == pytest.approx(want * 1e3, rel=1e-12)
    s = res.summary
    assert s["hit_blocks_remote_pool"] == 2
    assert s["hit_ratio_blocks_remote_pool"] == 2 / 14
    assert s["hit_ratio_blocks"] == 4 / 14
    assert s["hits_pool"] == 2  # remote reads are not hits of the reader's own pool


def test_one_rack_is_the_legacy_single_shared_pool() -> None:
    res = run_cache(config(cross_rack=False, workers_per_rack=None), requests=TRACE)
    assert res.table["hit_blocks_pool"].tolist() == [0, 0, 0, 0, 0, 2, 2]
    assert res.summary["num_racks"] == 1


def test_remote_ssd_pays_the_cross_rack_path() -> None:
    ssd = {"name": "ssd", "capacity": 100, "scope": "cluster"}  # 7 GB/s read, 100 us
    res = run_cache(config(cross_rack=False, tiers=[{"name": "hbm", "capacity": 2}, ssd]),
                    requests=TRACE)  # fmt: skip
    t = res.table
    assert t["hit_blocks_ssd"].tolist() == [0, 0, 0, 0, 0, 2, 2]  # one store for all racks
    want = 2 * BLOCK_BYTES / min(7e9, 4e9) + 100e-6 + 30e-6
    assert t["load_ms"].iloc[6] == pytest.approx(want * 1e3, rel=1e-12)
    row = res.tiers.set_index("tier").loc["ssd"]
    assert (row["path_bandwidth_bytes_per_s"], row["path_latency_s"]) == (4e9, 30 / 1e6)


def test_load_skew_per_worker_and_rack() -> None:
    s = run_cache(config(cross_rack=False), requests=TRACE).summary
    # workers 0..3 serve 2, 2, 2, 1 requests; racks 0, 1 serve 4, 3
    assert (s["max_requests_per_worker"], s["mean_requests_per_worker"]) == (2, 7 / 4)
    assert s["load_skew_workers"] == 2 / (7 / 4)
    assert (s["max_requests_per_rack"], s["load_skew_racks"]) == (4, 4 / 3.5)


def test_pool_config_errors() -> None:
    with pytest.raises(ConfigError) as info:
        toy_cache_config(pool={"cross_rack": True})
    assert info.value.path == "pool.cross_rack"
    with pytest.raises(ConfigError) as info:
        toy_cache_config(tiers=[{"name": "hbm", "capacity": 2, "scope": "rack"}])
    assert info.value.path == "tiers[0].shared"
    with pytest.raises(ConfigError) as info:
        toy_cache_config(tiers=[{"name": "hbm", "capacity": 2}, {**POOL, "shared": True}])
    assert "not both" in info.value.message
    with pytest.raises(ConfigError) as info:
        toy_cache_config(network={"bogus": 1})
    assert info.value.path == "network.bogus"


def test_network_jitter_varies_only_network_loads_and_is_seeded() -> None:
    net = {**NET, "jitter_cv": 0.5, "tail_probability": 0.2, "tail_multiplier": 3.0}
    cfg = config(cross_rack=True, network=net)
    a = run_cache(cfg, requests=TRACE).table
    b = run_cache(cfg, requests=TRACE).table
    assert a["load_ms"].tolist() == b["load_ms"].tolist()  # same seed, same factors
    # the factors are the generator's first two draws: r5 (own pool), then r6 (remote pool)
    from kvsim.serving.topology import NetworkVariance

    rng = np.random.default_rng([0, 0x4E4554])
    var = NetworkVariance.from_config(cfg.network)
    f5, f6 = var.factor(rng), var.factor(rng)
    want5 = 2 * BLOCK_BYTES / min(20e9, 10e9 / max(f5, 1)) + 10e-6 + 5e-6 * f5
    want6 = 2 * BLOCK_BYTES / min(20e9, 4e9 / max(f6, 1)) + 10e-6 + 30e-6 * f6
    assert a["load_ms"].iloc[5] == pytest.approx(want5 * 1e3, rel=1e-12)
    assert a["load_ms"].iloc[6] == pytest.approx(want6 * 1e3, rel=1e-12)
    other = run_cache(config(cross_rack=True, network=net, seed=1), requests=TRACE).table
    assert other["load_ms"].iloc[5] != a["load_ms"].iloc[5]
    # hits do not depend on the network
    assert (
        a["hit_blocks"].tolist()
        == run_cache(config(cross_rack=True), requests=TRACE).table["hit_blocks"].tolist()
    )
