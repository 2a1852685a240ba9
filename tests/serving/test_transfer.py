"""TransferManager: exact finish times under max-min fair sharing, engine protocol, invariants."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvsim.config.topology import LinkSpec, TopologyConfig
from kvsim.errors import SimulationError
from kvsim.serving.topology import HOST, Topology
from kvsim.serving.transfer import TransferManager, max_min_rates

GB = 1e9


def two_gpus(gbs: float = 10.0, us: float = 0.0) -> Topology:
    cfg = TopologyConfig(links=[LinkSpec(src=0, dst=1, bandwidth_gbytes_per_s=gbs, latency_us=us)])
    return Topology.build([0, 0], cfg)


def drain(tm: TransferManager) -> dict[object, float]:
    """Collect every transfer the way an engine would; tag -> finish time."""
    out: dict[object, float] = {}
    while (nxt := tm.next_completion()) is not None:
        t, tid = nxt
        out[tm.complete(tid, t)] = t
    return out


def test_one_transfer_takes_latency_plus_bytes_over_bandwidth() -> None:
    tm = TransferManager(two_gpus(10, 5))
    tm.start(1.0, 0, 1, 4e9, "a")
    assert tm.next_completion() == (1.0 + 5e-6 + 4e9 / 10e9, 0)
    assert drain(tm) == {"a": 1.0 + 5e-6 + 4e9 / 10e9}


def test_two_equal_concurrent_transfers_each_take_twice_as_long() -> None:
    tm = TransferManager(two_gpus(10, 5))
    tm.start(0.0, 0, 1, 1e9, "a")
    tm.start(0.0, 0, 1, 1e9, "b")
    want = 5e-6 + 2 * 1e9 / 10e9
    assert drain(tm) == pytest.approx({"a": want, "b": want}, rel=1e-12)


def test_transfer_starting_halfway_gets_exact_finish_times() -> None:
    # A (10 GB at 10 GB/s) runs alone for 0.5 s, then B (10 GB) joins: both at 5 GB/s.
    # A has 5 GB left -> 1 s more -> 1.5 s. B sent 5 GB by then; 5 GB alone at 10 GB/s -> 2.0 s.
    tm = TransferManager(two_gpus(10))
    tm.start(0.0, 0, 1, 10e9, "a")
    assert tm.next_completion() == (1.0, 0)
    tm.start(0.5, 0, 1, 10e9, "b")
    assert tm.next_completion() == pytest.approx((1.5, 0))
    assert drain(tm) == pytest.approx({"a": 1.5, "b": 2.0}, rel=1e-12)


def test_latency_phase_uses_no_bandwidth() -> None:
    # B waits 0.25 s of latency (a 250,000 us link) before its bytes compete with A.
    tm = TransferManager(two_gpus(10, 250_000))
    tm.start(0.0, 0, 1, 10e9, "a")  # flows at 0.25, alone until B flows at 0.75
    tm.start(0.5, 0, 1, 10e9, "b")
    # A: 5 GB alone in [0.25, 0.75], 5 GB at 5 GB/s -> 1.75. B: 5 GB shared, 5 GB alone -> 2.25
    assert drain(tm) == pytest.approx({"a": 1.75, "b": 2.25}, rel=1e-12)


def test_slow_link_in_one_direction_only_slows_that_direction() -> None:
    cfg = TopologyConfig(
        links=[
            LinkSpec(src=0, dst=1, bandwidth_gbytes_per_s=100),
            LinkSpec(src=1, dst=0, bandwidth_gbytes_per_s=10, bidirectional=False),
        ]
    )
    tm = TransferManager(Topology.build([0, 0], cfg))
    tm.start(0.0, 0, 1, 1e9, "fwd")
    tm.start(0.0, 1, 0, 1e9, "back")
    assert drain(tm) == pytest.approx({"fwd": 0.01, "back": 0.1}, rel=1e-12)


def test_max_min_rates_progressive_filling() -> None:
    caps = {0: 10.0, 1: 4.0}
    # f2 crosses both links; link 1 (4) is the bottleneck of f2 and f3 -> 2 each; f1 gets 8
    rates = max_min_rates([(1, (0,)), (2, (0, 1)), (3, (1,)), (4, ())], caps.__getitem__)
    assert rates == {1: 8.0, 2: 2.0, 3: 2.0, 4: math.inf}


def test_default_paths_share_the_senders_nvlink_port() -> None:
    topo = Topology.build([0, 0, 0], TopologyConfig(nvlink_latency_us=0))
    tm = TransferManager(topo)
    tm.start(0.0, 0, 1, 450e9, "to1")
    tm.start(0.0, 0, 2, 450e9, "to2")
    assert tm.rates() == {0: 225e9, 1: 225e9}
    assert drain(tm) == pytest.approx({"to1": 2.0, "to2": 2.0}, rel=1e-12)


def test_same_gpu_is_instant_and_zero_bytes_pay_latency_only() -> None:
    topo = Topology.build([0, 0], TopologyConfig(pcie_latency_us=7))
    tm = TransferManager(topo)
    tm.start(3.0, 1, 1, 1e12, "same")
    tm.start(3.0, 0, HOST, 0, "empty")
    assert drain(tm) == {"same": 3.0, "empty": 3.0 + 7e-6}


def test_version_protocol_and_stale_wakeups() -> None:
    tm = TransferManager(two_gpus(10))
    v0 = tm.version
    tm.start(0.0, 0, 1, 10e9, "a")
    v1 = tm.version
    assert v1 != v0
    first = tm.next_completion()
    assert first == (1.0, 0)
    tm.start(0.5, 0, 1, 10e9, "b")
    assert tm.version != v1  # the wake-up scheduled for 1.0 is now stale
    with pytest.raises(SimulationError, match="completes at"):
        tm.complete(0, 1.0)  # A now finishes at 1.5


def test_cancel_returns_delivered_bytes_and_frees_bandwidth() -> None:
    tm = TransferManager(two_gpus(10))
    tm.start(0.0, 0, 1, 10e9, "a")
    b = tm.start(0.0, 0, 1, 10e9, "b")
    assert tm.cancel(b, 0.5) == pytest.approx(2.5e9)
    # A: 2.5 GB sent by 0.5, 7.5 GB alone at 10 GB/s -> 1.25
    assert drain(tm) == pytest.approx({"a": 1.25}, rel=1e-12)
    with pytest.raises(SimulationError):
        tm.cancel(b, 2.0)


def test_estimate_finish_matches_the_real_start() -> None:
    tm = TransferManager(two_gpus(10, 1))
    tm.start(0.0, 0, 1, 10e9, "a")
    est = tm.estimate_finish_s(0.5, 0, 1, 10e9)
    assert tm.next_completion() == pytest.approx((1.0 + 1e-6, 0), rel=1e-12)  # unchanged
    tm.start(0.5, 0, 1, 10e9, "b")
    assert drain(tm)["b"] == pytest.approx(est, rel=1e-12)


def test_estimate_on_an_idle_path_is_the_closed_form() -> None:
    tm = TransferManager(two_gpus(10, 5))
    assert tm.estimate_finish_s(1.0, 0, 1, 4e9) == 1.0 + 5e-6 + 4e9 / 10e9
    tm.start(1.0, 0, 1, 4e9, "fwd")  # busy 0 -> 1 does not touch the 1 -> 0 direction
    assert tm.estimate_finish_s(1.0, 1, 0, 4e9) == 1.0 + 5e-6 + 4e9 / 10e9
    assert tm.estimate_finish_s(1.0, 0, 1, 4e9) == pytest.approx(1.0 + 5e-6 + 8e9 / 10e9)
    drain(tm)
    assert tm.estimate_finish_s(2.0, 0, 1, 0) == 2.0 + 5e-6


def test_quick_estimate_assumes_equal_shares() -> None:
    tm = TransferManager(two_gpus(10, 5))
    assert tm.estimate_quick_s(1.0, 0, 1, 4e9) == 1.0 + 5e-6 + 4e9 / 10e9
    tm.start(1.0, 0, 1, 4e9, "a")
    tm.start(1.0, 0, 1, 4e9, "b")
    assert tm.estimate_quick_s(1.0, 0, 1, 3e9) == 1.0 + 5e-6 + 3e9 / (10e9 / 3)
    assert tm.estimate_quick_s(1.0, 1, 1, 3e9) == 1.0


def test_clock_cannot_go_back() -> None:
    tm = TransferManager(two_gpus())
    tm.advance(2.0)
    with pytest.raises(SimulationError, match="go back"):
        tm.start(1.0, 0, 1, 1.0)


def _topology_for_props() -> Topology:
    cfg = TopologyConfig(
        gpus_per_node=2,
        links=[
            LinkSpec(src=0, dst=1, bandwidth_gbytes_per_s=8, latency_us=3),
            LinkSpec(src=1, dst=2, bandwidth_gbytes_per_s=2, latency_us=1),
            LinkSpec(src=2, dst=0, bandwidth_gbytes_per_s=5, bidirectional=False),
        ],
        nvlink_gbytes_per_s=6,
        network_gbytes_per_s=1,
        pcie_gbytes_per_s=3,
    )
    return Topology.build([0, 0, 1, 1], cfg)


_GPU = st.sampled_from([0, 1, 2, 3, HOST])


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 2, allow_nan=False), _GPU, _GPU, st.floats(0, 5e9, allow_nan=False)),
        min_size=1,
        max_size=12,
    ),
    st.lists(st.floats(0, 6, allow_nan=False), max_size=5),
)
def test_invariants_under_random_transfers(
    starts: list[tuple[float, int, int, float]], probes: list[float]
) -> None:
    topo = _topology_for_props()
    tm = TransferManager(topo)
    todo = sorted((s for s in starts if not (s[1] == HOST and s[2] == HOST)), key=lambda s: s[0])
    extra = sorted(probes)
    begun: dict[int, tuple[float, float, float]] = {}  # tid -> start, nbytes, lower bound
    finished: dict[int, float] = {}
    while True:
        nxt = tm.next_completion()
        t_start = todo[0][0] if todo else math.inf
        t_probe = extra[0] if extra else math.inf
        t_done = nxt[0] if nxt else math.inf
        if math.isinf(min(t_start, t_probe, t_done)):
            break
        if t_probe < min(t_start, t_done):  # an unrelated engine event: accounting only
            tm.advance(max(extra.pop(0), tm.now))
        elif t_done <= t_start:
            assert nxt is not None
            tid = nxt[1]
            tm.advance(t_done)
            assert tm.bytes_sent(tid) == pytest.approx(begun[tid][1], rel=1e-9, abs=1e-3)
            tm.complete(tid, t_done)
            finished[tid] = t_done
        else:
            t, src, dst, nbytes = todo.pop(0)
            p = topo.path(src, dst, nbytes)
            tid = tm.start(t, src, dst, nbytes, tag=None)
            begun[tid] = (t, nbytes, t + p.transfer_time_s(nbytes))
        _check_capacity(tm, topo)
        for tid in tm.transfers:
            assert -1e-3 <= tm.bytes_sent(tid) <= begun[tid][1] * (1 + 1e-12) + 1e-3
    assert set(finished) == set(begun)
    for tid, (start, _nbytes, lower) in begun.items():
        assert finished[tid] >= start
        assert finished[tid] >= lower * (1 - 1e-12) - 1e-12


def _check_capacity(tm: TransferManager, topo: Topology) -> None:
    load: dict[int, float] = {}
    for tr in tm.transfers.values():
        if tr.flowing:
            for r in tr.links:
                load[r] = load.get(r, 0.0) + tr.rate
    for r, total in load.items():
        assert total <= topo.link_capacity(r) * (1 + 1e-9)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 1), st.floats(1, 1e9)), min_size=1, max_size=8),
    st.lists(st.floats(0, 3), max_size=6),
)
def test_extra_advance_calls_do_not_change_finish_times(
    starts: list[tuple[float, float]], probes: list[float]
) -> None:
    def run(advance_at: list[float]) -> dict[object, float]:
        tm = TransferManager(two_gpus(1, 2))
        events = sorted(
            [(t, "start", i, nb) for i, (t, nb) in enumerate(starts)]
            + [(t, "advance", -1, 0.0) for t in advance_at]
        )
        out: dict[object, float] = {}
        for t, kind, i, nb in events:
            while (nxt := tm.next_completion()) is not None and nxt[0] <= t:
                out[tm.complete(nxt[1], nxt[0])] = nxt[0]
            if kind == "start":
                tm.start(t, 0, 1, nb, tag=i)
            else:
                tm.advance(t)
        out.update(drain(tm))
        return out

    base = run([])
    assert run(probes) == pytest.approx(base, rel=1e-9)
    # work conservation on one link: the last finish is no earlier than total bytes / bw
    assert max(base.values()) >= sum(nb for _, nb in starts) / 1e9 * (1 - 1e-9)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(0, 4), min_size=0, max_size=3, unique=True), min_size=1, max_size=8
    ),
    st.lists(st.sampled_from([1.0, 2.0, 3.0, 7.5]), min_size=5, max_size=5),
)
def test_max_min_rates_are_feasible_and_every_flow_has_a_bottleneck(
    routes: list[list[int]], caps: list[float]
) -> None:
    """Bertsekas–Gallager: a feasible allocation is max-min fair iff every flow crosses a
    saturated link on which no other flow gets more."""
    rates = max_min_rates([(f, tuple(r)) for f, r in enumerate(routes)], caps.__getitem__)
    load = [0.0] * 5
    for f, r in enumerate(routes):
        for link_id in r:
            load[link_id] += rates[f]
    assert all(load[k] <= caps[k] * (1 + 1e-12) for k in range(5))
    for f, r in enumerate(routes):
        if not r:
            assert rates[f] == math.inf
            continue
        assert any(
            load[k] >= caps[k] * (1 - 1e-12)
            and all(rates[g] <= rates[f] * (1 + 1e-12) for g, rg in enumerate(routes) if k in rg)
            for k in r
        )


def _fluid_reference(
    topo: Topology, jobs: list[tuple[float, int, int, float]], dt: float
) -> list[float]:
    """Time-stepped fluid simulation (obviously correct, approximate to about dt)."""
    paths = [topo.path(s, d, nb) for _, s, d, nb in jobs]
    left = [nb for *_, nb in jobs]
    done: list[float | None] = [None] * len(jobs)
    t = 0.0
    while any(x is None for x in done):
        active = [
            i
            for i, (t0, *_rest) in enumerate(jobs)
            if done[i] is None and t >= t0 + paths[i].latency_s
        ]
        rates = max_min_rates([(i, paths[i].links) for i in active], topo.link_capacity)
        for i in active:
            if left[i] <= rates[i] * dt:
                done[i] = t + left[i] / rates[i]
            left[i] -= rates[i] * dt
        t += dt
    return [x for x in done if x is not None]


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0.0, 0.1, 0.25, 0.5]),
            st.sampled_from([0, 1, 2, 3]),
            st.sampled_from([0, 1, 2, 3]),
            st.sampled_from([1e8, 3e8, 1e9]),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_event_driven_finish_times_match_a_fluid_reference(
    jobs: list[tuple[float, int, int, float]],
) -> None:
    jobs = [j for j in jobs if j[1] != j[2]]
    if not jobs:
        return
    cfg = TopologyConfig(
        gpus_per_node=2,
        links=[LinkSpec(src=0, dst=1, bandwidth_gbytes_per_s=2, latency_us=50_000)],
        nvlink_gbytes_per_s=4,
        nvlink_latency_us=0,
        network_gbytes_per_s=1,
        network_latency_us=20_000,
    )
    topo = Topology.build([0, 0, 1, 1], cfg)
    tm = TransferManager(topo)
    got: dict[object, float] = {}
    for i, (t0, s, d, nb) in sorted(enumerate(jobs), key=lambda x: x[1][0]):
        while (nxt := tm.next_completion()) is not None and nxt[0] <= t0:
            got[tm.complete(nxt[1], nxt[0])] = nxt[0]
        tm.start(t0, s, d, nb, tag=i)
    got.update(drain(tm))
    dt = 5e-4
    want = _fluid_reference(topo, jobs, dt)
    for i, w in enumerate(want):
        assert got[i] == pytest.approx(w, abs=4 * dt * len(jobs)), i
