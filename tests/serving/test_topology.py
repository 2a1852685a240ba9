"""Topology: explicit links, Floyd–Warshall best paths, defaults by level."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from kvsim.config.topology import LinkSpec, TopologyConfig
from kvsim.errors import ConfigError
from kvsim.serving.topology import HOST, Topology, node_ids


def link(src: int, dst: int, gbs: float, us: float = 0.0, bidir: bool = True) -> LinkSpec:
    return LinkSpec(
        src=src, dst=dst, bandwidth_gbytes_per_s=gbs, latency_us=us, bidirectional=bidir
    )


def test_single_explicit_link_time_is_latency_plus_bytes_over_bandwidth() -> None:
    topo = Topology.build([0, 0], TopologyConfig(links=[link(0, 1, 10, 5)]))
    p = topo.path(0, 1)
    assert (p.bandwidth_bytes_per_s, p.latency_s, p.hops, p.kind) == (
        10e9,
        5e-6,
        (0, 1),
        "explicit",
    )
    assert topo.transfer_time_s(0, 1, 2e9) == 5e-6 + 2e9 / 10e9
    assert topo.transfer_time_s(1, 0, 2e9) == 5e-6 + 2e9 / 10e9  # bidirectional by default


def test_defaults_by_level() -> None:
    cfg = TopologyConfig(gpus_per_node=2)
    topo = Topology.build(node_ids([None] * 4, 2), cfg)
    same = topo.path(1, 1)
    assert (same.bandwidth_bytes_per_s, same.latency_s, same.hops, same.kind) == (
        math.inf,
        0.0,
        (1,),
        "same",
    )
    assert topo.transfer_time_s(1, 1, 1e12) == 0.0
    nv = topo.path(0, 1)
    assert (nv.bandwidth_bytes_per_s, nv.latency_s, nv.kind) == (450e9, 3e-6, "nvlink")
    net = topo.path(1, 2)
    assert (net.bandwidth_bytes_per_s, net.latency_s, net.kind) == (50e9, 10e-6, "network")
    d2h, h2d = topo.path(3, HOST), topo.path(HOST, 3)
    assert (d2h.bandwidth_bytes_per_s, d2h.latency_s, d2h.hops) == (64e9, 5e-6, (3, HOST))
    assert (h2d.hops, h2d.kind) == ((HOST, 3), "pcie")
    assert d2h.links != h2d.links  # the two PCIe directions are separate resources
    assert topo.transfer_time_s(0, 3, 1e9) == 10e-6 + 1e9 / 50e9


def test_node_ids_explicit_and_derived() -> None:
    assert node_ids([None, None, 7, None, None], 2) == [0, 0, 7, 1, 2]
    with pytest.raises(ConfigError, match="gpus_per_node"):
        node_ids([None], 0)


def test_floyd_warshall_prefers_fast_two_hop_over_slow_direct_link() -> None:
    cfg = TopologyConfig(links=[link(0, 1, 10, 1), link(0, 2, 100, 1), link(2, 1, 100, 1)])
    topo = Topology.build([0, 0, 0], cfg)
    big = topo.path(0, 1, 1e9)
    assert big.hops == (0, 2, 1)
    assert (big.bandwidth_bytes_per_s, big.latency_s) == (100e9, 2e-6)
    assert topo.transfer_time_s(0, 1, 1e9) == 2e-6 + 1e9 / 100e9
    assert topo.path(0, 1).hops == (0, 2, 1)  # nbytes=None: the widest path
    # a 1-byte message is latency-bound: the direct link (1 us) beats two hops (2 us)
    assert topo.path(0, 1, 1).hops == (0, 1)
    assert topo.transfer_time_s(0, 1, 1) == 1e-6 + 1 / 10e9


def test_widest_path_breaks_ties_by_latency() -> None:
    # two equally wide routes 0->1->3 (lat 2+2) and 0->2->3 (lat 1+1)
    cfg = TopologyConfig(
        links=[link(0, 1, 50, 2), link(1, 3, 50, 2), link(0, 2, 50, 1), link(2, 3, 50, 1)]
    )
    p = Topology.build([0] * 4, cfg).path(0, 3)
    assert (p.hops, p.latency_s) == ((0, 2, 3), 2e-6)


def test_bottleneck_fw_not_fooled_by_wide_slow_prefix() -> None:
    # Plain (bottleneck, latency) FW keeps only the widest 0->1 (100 GB/s, 10 us) and so finds
    # 0->1->2 at 11 us; the per-threshold FW also sees the narrow fast 0->3->1 prefix.
    cfg = TopologyConfig(
        links=[link(0, 1, 100, 10), link(0, 3, 50, 0.5), link(3, 1, 50, 0.5), link(1, 2, 50, 1)]
    )
    p = Topology.build([0] * 4, cfg).path(0, 2)
    assert (p.hops, p.bandwidth_bytes_per_s, p.latency_s) == ((0, 3, 1, 2), 50e9, 2e-6)


def test_slower_direction_is_honoured_and_last_declaration_wins() -> None:
    cfg = TopologyConfig(links=[link(0, 1, 100, 1), link(1, 0, 10, 4, bidir=False)])
    topo = Topology.build([0, 0], cfg)
    assert topo.path(0, 1).bandwidth_bytes_per_s == 100e9
    back = topo.path(1, 0)
    assert (back.bandwidth_bytes_per_s, back.latency_s) == (10e9, 4e-6)
    assert topo.link_capacity(back.links[0]) == 10e9
    # slower than the NVLink default, still used: explicit links override defaults
    assert back.kind == "explicit"


def test_one_way_link_other_direction_falls_back_to_default() -> None:
    topo = Topology.build([0, 1], TopologyConfig(links=[link(0, 1, 5, 1, bidir=False)]))
    assert topo.path(0, 1).kind == "explicit"
    assert topo.path(1, 0).kind == "network"


def test_link_to_missing_gpu_is_a_config_error_with_key_path() -> None:
    cfg = TopologyConfig(links=[link(0, 1, 10), link(1, 5, 10)])
    with pytest.raises(ConfigError, match=r"cluster\.topology\.links\[1\]\.dst: GPU 5"):
        Topology.build([0, 0, 0], cfg)


def test_link_spec_validation() -> None:
    with pytest.raises(ValidationError, match="two different GPUs"):
        LinkSpec(src=2, dst=2, bandwidth_gbytes_per_s=1)
    with pytest.raises(ValidationError):
        LinkSpec(src=0, dst=1, bandwidth_gbytes_per_s=0)
    with pytest.raises(ValidationError):
        TopologyConfig.model_validate({"links": [], "nvlink_gbps": 3})  # extra="forbid"


def test_per_gpu_port_bandwidths_and_host_bounce() -> None:
    cfg = TopologyConfig(pcie_latency_us=4)
    topo = Topology.build(
        [0, 0, 0], cfg, nvlink_bytes_per_s=[450e9, 300e9, 0.0], pcie_bytes_per_s=[64e9, 32e9, 16e9]
    )
    assert topo.path(0, 1).bandwidth_bytes_per_s == 300e9  # min of the two ports
    bounce = topo.path(0, 2)
    assert (bounce.kind, bounce.hops, bounce.latency_s) == ("host-bounce", (0, HOST, 2), 8e-6)
    assert bounce.bandwidth_bytes_per_s == 16e9
    assert topo.path(1, HOST).bandwidth_bytes_per_s == 32e9


def test_explicit_config_bandwidth_beats_per_gpu_values() -> None:
    cfg = TopologyConfig(nvlink_gbytes_per_s=100)
    topo = Topology.build([0, 0], cfg, nvlink_bytes_per_s=[450e9, 0.0], pcie_bytes_per_s=[1, 1])
    assert (topo.path(0, 1).kind, topo.path(0, 1).bandwidth_bytes_per_s) == ("nvlink", 100e9)
    assert topo.path(0, HOST).bandwidth_bytes_per_s == 1.0  # pcie not set: per-GPU value


def test_too_many_distinct_bandwidths_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import kvsim.serving.topology as topology_mod

    monkeypatch.setattr(topology_mod, "MAX_FW_ENTRIES", 3 * 3 * 3 - 1)
    cfg = TopologyConfig(links=[link(0, 1, 1), link(1, 2, 2), link(0, 2, 3)])
    with pytest.raises(ConfigError, match="3 linked GPUs with 3 distinct bandwidths"):
        Topology.build([0, 0, 0], cfg)
    monkeypatch.setattr(topology_mod, "MAX_FW_ENTRIES", 3 * 3 * 3)
    assert Topology.build([0, 0, 0], cfg).path(0, 2, 1e9).hops == (0, 2)


def test_large_cluster_without_links_builds_without_pair_matrices() -> None:
    topo = Topology.build(node_ids([None] * 10240, 8), TopologyConfig())
    assert topo.path(0, 7).kind == "nvlink"
    assert topo.path(0, 63).kind == "network"  # same rack (8 nodes x 8 GPUs)
    assert topo.path(0, 10239).kind == "cross-rack"
    # cross-rack defaults to the network figures: same time as before the hierarchy
    assert topo.transfer_time_s(0, 10239, 1e9) == topo.transfer_time_s(0, 63, 1e9)
    assert topo.num_racks == 160
    assert topo.num_links == 8 * 10240 + 2 * 160


def _brute_force_time(
    edges: dict[tuple[int, int], tuple[float, float]], src: int, dst: int, nbytes: float, n: int
) -> float:
    best = math.inf
    others = [g for g in range(n) if g not in (src, dst)]
    for k in range(len(others) + 1):
        for mid in itertools.permutations(others, k):
            hops = (src, *mid, dst)
            pairs = list(itertools.pairwise(hops))
            if all(p in edges for p in pairs):
                bw = min(edges[p][0] for p in pairs)
                lat = sum(edges[p][1] for p in pairs)
                best = min(best, lat + nbytes / bw)
    return best


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 4),
            st.integers(0, 4),
            st.sampled_from([1.0, 10.0, 25.0, 100.0, 450.0]),
            st.integers(0, 20),
            st.booleans(),
        ),
        min_size=1,
        max_size=10,
    ),
    st.sampled_from([0.0, 1.0, 1e3, 1e6, 1e9]),
)
def test_best_path_matches_brute_force_over_simple_paths(
    raw: list[tuple[int, int, float, int, bool]], nbytes: float
) -> None:
    links = [link(a, b, bw, us, bd) for a, b, bw, us, bd in raw if a != b]
    if not links:
        return
    n = 5
    topo = Topology.build([0] * n, TopologyConfig(links=links))
    edges: dict[tuple[int, int], tuple[float, float]] = {}
    for lk in links:
        fig = (lk.bandwidth_gbytes_per_s * 1e9, lk.latency_us / 1e6)
        edges[(lk.src, lk.dst)] = fig
        if lk.bidirectional:
            edges[(lk.dst, lk.src)] = fig
    for s, d in itertools.permutations(range(n), 2):
        want = _brute_force_time(edges, s, d, nbytes, n)
        p = topo.path(s, d, nbytes)
        if math.isinf(want):
            assert p.kind == "nvlink"  # no explicit path: the same-node default
            continue
        assert topo.transfer_time_s(s, d, nbytes) == pytest.approx(want, rel=1e-12, abs=1e-18)
        # the reported path is a real path whose figures match its hops
        pairs = list(itertools.pairwise(p.hops))
        assert (p.hops[0], p.hops[-1]) == (s, d)
        assert p.bandwidth_bytes_per_s == min(edges[q][0] for q in pairs)
        assert p.latency_s == pytest.approx(sum(edges[q][1] for q in pairs), abs=1e-18)
        assert [topo.link_capacity(r) for r in p.links] == [edges[q][0] for q in pairs]
        assert p.transfer_time_s(nbytes) == pytest.approx(want, rel=1e-12, abs=1e-18)
