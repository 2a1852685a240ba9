"""Hierarchical topology (racks x nodes x GPUs), rack uplink contention, network variance."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvsim.config.topology import TopologyConfig
from kvsim.errors import ConfigError
from kvsim.serving.topology import NetworkVariance, Topology
from kvsim.serving.transfer import TransferManager

# 2 GPUs per node, 2 nodes per rack: GPU g is on node g // 2, rack g // 4.
CFG = TopologyConfig(
    gpus_per_node=2,
    nodes_per_rack=2,
    racks=2,
    nvlink_gbytes_per_s=100,
    nvlink_latency_us=1,
    network_gbytes_per_s=50,
    network_latency_us=5,
    cross_rack_gbytes_per_s=20,
    cross_rack_latency_us=20,
)


def test_exact_time_for_each_level() -> None:
    topo = Topology.hierarchical(CFG)
    assert topo.num_gpus == 8 and topo.num_racks == 2
    cases = {
        (0, 0): ("same", 0.0),
        (0, 1): ("nvlink", 1 / 1e6 + 1e9 / 100e9),
        (0, 2): ("network", 5 / 1e6 + 1e9 / 50e9),
        (3, 0): ("network", 5 / 1e6 + 1e9 / 50e9),
        (0, 4): ("cross-rack", 20 / 1e6 + 1e9 / 20e9),
        (7, 1): ("cross-rack", 20 / 1e6 + 1e9 / 20e9),
    }
    for (a, b), (kind, t) in cases.items():
        assert topo.path(a, b).kind == kind
        assert topo.level(a, b) == kind
        assert topo.transfer_time_s(a, b, 1e9) == t
    xr = topo.path(0, 4)
    assert (xr.bandwidth_bytes_per_s, xr.latency_s, xr.hops) == (20e9, 20 / 1e6, (0, 4))
    names = [topo.describe_link(r) for r in xr.links]
    assert names == ["gpu0 net-tx", "gpu0 cross-rack-tx", "gpu4 cross-rack-rx", "gpu4 net-rx"]
    assert [topo.rack_of(g) for g in range(8)] == [0, 0, 0, 0, 1, 1, 1, 1]


def test_cross_rack_defaults_to_network_figures() -> None:
    cfg = TopologyConfig(gpus_per_node=1, nodes_per_rack=1)
    topo = Topology.build([0, 1], cfg)
    p = topo.path(0, 1)
    assert (p.kind, p.bandwidth_bytes_per_s, p.latency_s) == ("cross-rack", 50e9, 10 / 1e6)


def test_too_few_racks_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        Topology.build([0, 0, 1, 1, 2], CFG)  # node 2 is in rack 1: fine
        Topology.build([0, 4], CFG)  # node 4 is in rack 2: needs 3 racks
    assert info.value.path == "cluster.topology.racks"
    with pytest.raises(ConfigError):
        Topology.hierarchical(TopologyConfig())  # no racks, no num_gpus


def test_default_cluster_is_160_racks_of_64_gpus() -> None:
    cfg = TopologyConfig(racks=160)
    assert cfg.num_gpus == 10_240 and cfg.gpus_per_rack == 64
    topo = Topology.hierarchical(cfg)
    assert topo.num_racks == 160
    assert topo.path(0, 7).kind == "nvlink"
    assert topo.path(0, 8).kind == "network"
    assert topo.path(63, 64).kind == "cross-rack"
    assert topo.describe_link(topo.rack_uplink(159) + 1) == "rack159 downlink"


@settings(max_examples=60, deadline=None)
@given(
    gpn=st.integers(1, 4),
    npr=st.integers(1, 4),
    n=st.integers(2, 40),
    pairs=st.lists(st.tuples(st.integers(0, 39), st.integers(0, 39)), max_size=30),
)
def test_level_matches_reference(gpn: int, npr: int, n: int, pairs: list[tuple[int, int]]) -> None:
    cfg = TopologyConfig(gpus_per_node=gpn, nodes_per_rack=npr, cross_rack_latency_us=30)
    topo = Topology.build([g // gpn for g in range(n)], cfg)
    for a, b in pairs:
        a, b = a % n, b % n
        if a == b:
            want = "same"
        elif a // gpn == b // gpn:
            want = "nvlink"
        elif a // gpn // npr == b // gpn // npr:
            want = "network"
        else:
            want = "cross-rack"
        assert topo.path(a, b).kind == want
        lat = {"same": 0.0, "nvlink": 3 / 1e6, "network": 10 / 1e6, "cross-rack": 30 / 1e6}
        assert topo.path(a, b).latency_s == lat[want]


def _finish_times(tm: TransferManager) -> dict[int, float]:
    out: dict[int, float] = {}
    while (nxt := tm.next_completion()) is not None:
        t, tid = nxt
        tm.complete(tid, t)
        out[tid] = t
    return out


def test_rack_uplink_contention_exact_times() -> None:
    # uplink 40 GB/s, per-flow cross-rack cap 20 GB/s: the uplink carries 2 flows at full speed
    cfg = CFG.model_copy(update={"rack_uplink_gbytes_per_s": 40.0})
    topo = Topology.hierarchical(cfg)
    assert len(topo.path(0, 4).links) == 6
    two = TransferManager(topo)
    for src, dst in ((0, 4), (2, 5)):
        two.start(0.0, src, dst, 1e9)
    assert _finish_times(two) == pytest.approx({0: 20e-6 + 0.05, 1: 20e-6 + 0.05}, rel=1e-12)
    three = TransferManager(topo)
    for src, dst in ((0, 4), (1, 5), (2, 6)):
        three.start(0.0, src, dst, 1e9)
    want = 20e-6 + 3e9 / 40e9  # each gets 40/3 GB/s < 20
    assert _finish_times(three) == pytest.approx({0: want, 1: want, 2: want}, rel=1e-12)
    # traffic inside rack 1 does not touch rack 0's uplink
    mixed = TransferManager(topo)
    mixed.start(0.0, 0, 4, 1e9)
    mixed.start(0.0, 5, 6, 1e9)
    assert _finish_times(mixed) == pytest.approx({0: 20e-6 + 0.05, 1: 5e-6 + 0.02}, rel=1e-12)


def test_variance_statistics_on_100k_draws() -> None:
    var = NetworkVariance(cv=0.5)
    x = var.factors(np.random.default_rng(1), 100_000)
    assert abs(x.mean() - 1.0) < 0.01
    assert abs(x.std() / x.mean() - 0.5) < 0.02
    same = var.factors(np.random.default_rng(1), 100_000)
    assert np.array_equal(x, same)
    assert not np.array_equal(x, var.factors(np.random.default_rng(2), 100_000))
    tail = NetworkVariance(tail_probability=0.01, tail_multiplier=10.0)
    y = tail.factors(np.random.default_rng(3), 100_000)
    assert set(np.unique(y).tolist()) == {1.0, 10.0}
    assert abs((y == 10.0).mean() - 0.01) < 0.002
    assert abs(y.mean() - 1.09) < 0.02
    assert not NetworkVariance().enabled
    assert np.array_equal(NetworkVariance().factors(np.random.default_rng(0), 3), np.ones(3))


def test_transfer_with_jitter_takes_factor_times_nominal() -> None:
    cfg = CFG.model_copy(update={"jitter_cv": 0.3, "tail_probability": 0.5, "tail_multiplier": 4})
    topo = Topology.hierarchical(cfg)
    with pytest.raises(ConfigError) as info:
        TransferManager(topo)
    assert info.value.path == "cluster.topology.jitter_cv"
    tm = TransferManager(topo, np.random.default_rng(7))
    ref = np.random.default_rng(7)
    seen: list[float] = []
    for k, (src, dst) in enumerate(((0, 4), (1, 2), (3, 7))):
        f = topo.variance.factor(ref)
        tid = tm.start(10.0 * k, src, dst, 1e9)
        t, got = tm.next_completion()  # type: ignore[misc]
        assert got == tid
        path = topo.path(src, dst)
        # F * latency, and bytes at min(path bw, path bw / F): a factor < 1 cannot push bytes
        # faster than the ports carry
        bw = min(path.bandwidth_bytes_per_s, path.bandwidth_bytes_per_s / f)
        assert t - 10.0 * k == pytest.approx(f * path.latency_s + 1e9 / bw, rel=1e-12)
        seen.append(f)
        tm.complete(tid, t)
    assert min(seen) < 1 < max(seen)  # both branches exercised


def test_explicit_slowdown_caps_only_its_transfer() -> None:
    topo = Topology.hierarchical(CFG.model_copy(update={"network_latency_us": 0}))
    tm = TransferManager(topo)
    slow = tm.start(0.0, 0, 2, 1e9, slowdown=4.0)  # capped at 50/4 = 12.5 GB/s
    fast = tm.start(0.0, 0, 3, 1e9)  # shares gpu0 net-tx: gets 50 - 12.5 = 37.5 GB/s
    rates = tm.rates()
    assert rates == {slow: 12.5e9, fast: 37.5e9}
    done = _finish_times(tm)
    t_fast = 1e9 / 37.5e9
    # after the fast one finishes the slow one stays at its cap of 12.5 GB/s
    assert done == pytest.approx({fast: t_fast, slow: 1e9 / 12.5e9}, rel=1e-12)
