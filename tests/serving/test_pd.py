"""Prefill/decode disaggregation (kvsim.serving.pd): TTFT maths, capacity, terminal states,
fairness of the unified baseline, FF == exact steps, and the P:D sweep."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_multi_gpu_fuzz import random_cluster_scenario

from helpers import TOY_GPU, TOY_MODEL, by_id, make_request, run_engine, toy_config
from kvsim.config.schema import PDConfig
from kvsim.serving.cluster import ServingSimulation
from kvsim.serving.pd import split_pools
from kvsim.serving.seq import SeqState

BW = 10e9  # bytes/s of the network link between the two toy GPUs
LAT = 10e-6


def _two_gpu_cfg(**pd: Any) -> Any:
    """GPU 0 prefills, GPU 1 decodes; they are on different nodes of one rack."""
    return toy_config(
        scheduler={"max_num_batched_tokens": 4096, "max_num_seqs": 8},
        cluster={
            "instances": [
                {"gpu": TOY_GPU.model_dump(), "node": 0},
                {"gpu": TOY_GPU.model_dump(), "node": 1},
            ],
            "topology": {
                "gpus_per_node": 1,
                "network_gbytes_per_s": BW / 1e9,
                "network_latency_us": LAT * 1e6,
            },
            "pd": {"enabled": True, "prefill_instances": 1, "placement": "any", **pd},
        },
    )


def _one_request_ttft(**pd: Any) -> tuple[float, Any]:
    run = run_engine(_two_gpu_cfg(**pd), [make_request(0, 0.0, 1000, 5)])
    (seq,) = run.seqs
    assert seq.state is SeqState.FINISHED
    assert (seq.prefill_instance, seq.instance) == (0, 1)
    return seq.first_token_s - seq.req.arrival_s, run


def test_ttft_formula_and_pipelining_saves_exactly_the_later_chunks() -> None:
    prompt, chunks = 1000, 4
    nbytes = prompt * TOY_MODEL.kv_bytes_per_token
    plain, run = _one_request_ttft()
    piped, _ = _one_request_ttft(pipelined=True, layer_chunks=chunks)
    tm = run.instances[0].tm
    prefill = tm.step_time(prompt, prompt * (prompt + 1) / 2.0, prompt)
    first_decode = tm.step_time(1, float(prompt + 1), prompt + 1)
    # TTFT = queue (0) + prefill + transfer (all of it) + first decode step
    assert math.isclose(plain, prefill + LAT + nbytes / BW + first_decode, rel_tol=1e-12)
    assert math.isclose(piped, prefill + LAT + nbytes / chunks / BW + first_decode, rel_tol=1e-12)
    assert math.isclose(plain - piped, (chunks - 1) / chunks * nbytes / BW, rel_tol=1e-9)
    # the prefill copy is freed only after all chunks arrived
    assert run.diagnostics["pd_transfers"] == 1
    assert run.diagnostics["pd_mean_transfer_ms"] == pytest.approx((LAT + nbytes / BW) * 1e3)


def test_pull_pays_the_request_message_and_on_demand_too() -> None:
    push, _ = _one_request_ttft()
    pull, _ = _one_request_ttft(transfer="pull", pull_request_us=25.0)
    lazy, _ = _one_request_ttft(transfer="pull_on_demand", pull_request_us=25.0)
    assert math.isclose(pull - push, 25e-6, rel_tol=1e-6)
    assert math.isclose(lazy - push, 25e-6, rel_tol=1e-6)


def test_decode_without_room_waits_holding_prefill_kv() -> None:
    """Decode GPU holds 40 blocks; each request needs 32 under safe admission, so the second
    waits (its KV stays on the prefill GPU) until the first finishes: never over-committed."""
    cfg = _two_gpu_cfg()
    cfg = cfg.model_copy(
        update={
            "scheduler": cfg.scheduler.model_copy(
                update={"kv_capacity_blocks": 40, "admission": "safe"}
            )
        }
    )
    reqs = [make_request(0, 0.0, 500, 13), make_request(1, 0.0, 500, 13)]
    run = run_engine(cfg, reqs)
    a, b = by_id(run)[0], by_id(run)[1]
    assert a.state is b.state is SeqState.FINISHED
    assert b.handoff_s >= a.finish_s  # b's transfer could start only after a freed its blocks
    assert run.diagnostics["pd_decode_waits"] == 1
    assert run.diagnostics["pd_max_pending"] == 1
    for inst in run.instances:
        assert inst.peak_blocks <= inst.pool.num_blocks


def test_split_pools_per_rack_and_any() -> None:
    rack_of = [0] * 8 + [1] * 8
    per_rack = split_pools(16, rack_of, PDConfig(enabled=True, ratio="1:3"))
    assert [i for i, p in enumerate(per_rack) if p] == [0, 1, 8, 9]
    anyp = split_pools(16, rack_of, PDConfig(enabled=True, prefill_instances=3, placement="any"))
    assert [i for i, p in enumerate(anyp) if p] == [0, 1, 2]
    # 2,560 P + 7,680 D on 160 racks of 64: 16 prefill GPUs per rack
    big = split_pools(
        10240, [g // 64 for g in range(10240)], PDConfig(enabled=True, prefill_instances=2560)
    )
    assert sum(big) == 2560 and all(sum(big[r * 64 : r * 64 + 64]) == 16 for r in range(160))


# ---------------------------------------------------------------------- random PD scenarios
def _pd_scenario(seed: int) -> tuple[Any, list[Any]]:
    cfg, reqs = random_cluster_scenario(seed)
    rng = np.random.default_rng(seed + 31_000_000)
    n = len(cfg.cluster.instances)
    pd = {
        "enabled": True,
        "prefill_instances": int(rng.integers(1, n)),
        "placement": str(rng.choice(["per_rack", "any"])),
        "transfer": str(rng.choice(["push", "pull", "pull_on_demand"])),
        "pipelined": bool(rng.random() < 0.5),
        "layer_chunks": int(rng.integers(1, 5)),
        "decode_candidates": int(rng.integers(1, 3)),
        "transfer_weight": float(rng.choice([0.0, 1.0])),
    }
    cluster = cfg.cluster.model_dump()
    cluster["decode_routing"] = {"enabled": False}
    cluster["pd"] = pd
    cluster["topology"]["nodes_per_rack"] = 1  # two GPUs per node, one node per rack
    cfg = cfg.model_validate({**cfg.model_dump(), "cluster": cluster})
    return cfg, reqs


@pytest.mark.parametrize("seed", range(60))
def test_pd_fast_forward_equals_exact_steps(seed: int) -> None:
    cfg, reqs = _pd_scenario(seed)
    ff = run_engine(cfg, reqs, exact=False)
    ex = run_engine(cfg, reqs, exact=True)
    a, b = by_id(ff), by_id(ex)
    assert a.keys() == b.keys()
    for rid in a:
        x, y = a[rid], b[rid]
        assert (x.state, x.reject_reason) == (y.state, y.reject_reason), (seed, rid)
        assert (x.instance, x.prefill_instance) == (y.instance, y.prefill_instance), (seed, rid)
        assert (x.num_preemptions, x.cached_tokens) == (y.num_preemptions, y.cached_tokens)
        for fld in ("first_scheduled_s", "first_token_s", "finish_s", "handoff_s"):
            u, v = getattr(x, fld), getattr(y, fld)
            assert math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-12), (seed, rid, fld, u, v)
    assert ff.stats == ex.stats
    assert ff.diagnostics["pd_transfers"] == ex.diagnostics["pd_transfers"]


def test_pd_scenarios_exercise_transfers_and_waits() -> None:
    transfers = waits = 0
    for seed in range(30):
        run = run_engine(*_pd_scenario(seed))
        transfers += run.diagnostics["pd_transfers"] > 0
        waits += run.diagnostics["pd_decode_waits"] > 0
    assert transfers >= 25
    assert waits >= 2


def _run_checked(cfg: Any, reqs: list[Any]) -> Any:
    """Exact-steps run that checks HBM capacity on every GPU before every clock move."""
    assert not isinstance(cfg.model, str) and not isinstance(cfg.gpu, str)
    sim = ServingSimulation(cfg, cfg.model, cfg.gpu, reqs, exact_steps=True)
    sample = sim.collector.sample_before
    checks = [0]

    def check(t: float) -> None:
        for inst in sim.instances:
            pool = inst.pool
            assert 0 <= pool.num_used_blocks <= pool.num_blocks
            assert inst.free_blocks_at(sim.loop.now) >= 0
            held = sum(len(s.blocks) for s in inst.running)
            assert held <= pool.num_blocks + sum(s.num_cached_blocks for s in inst.running)
        checks[0] += 1
        sample(t)

    sim.collector.sample_before = check  # type: ignore[method-assign]
    run = sim.run()
    assert checks[0] > 0
    return run


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=0, max_value=10**6))
def test_pd_capacity_and_terminal_states(seed: int) -> None:
    cfg, reqs = _pd_scenario(seed)
    run = _run_checked(cfg, reqs)
    assert sorted(s.req.request_id for s in run.seqs) == sorted(r.request_id for r in reqs)
    for s in run.seqs:
        assert s.state in (SeqState.FINISHED, SeqState.REJECTED)
        if s.state is SeqState.FINISHED:
            assert s.num_output == s.req.output_tokens
            assert s.req.arrival_s <= s.first_token_s <= s.finish_s
    for inst in run.instances:
        assert inst.peak_blocks <= inst.pool.num_blocks
        assert inst.pool.num_free_blocks == inst.pool.num_blocks
        assert inst.num_incoming == inst.num_outgoing == 0
    # every request that finished after a transfer was transferred at least once
    moved = [s for s in run.seqs if s.prefill_instance >= 0]
    assert run.diagnostics["pd_transfers"] >= len(moved)
    assert all(s.instance not in (-1, s.prefill_instance) for s in moved)


def test_pd_and_unified_use_identical_instance_models() -> None:
    cfg, reqs = _pd_scenario(3)
    unified = cfg.model_validate(
        {**cfg.model_dump(), "cluster": {**cfg.cluster.model_dump(), "pd": {"enabled": False}}}
    )
    assert isinstance(cfg.model, type(TOY_MODEL)) and not isinstance(cfg.gpu, str)
    a = ServingSimulation(cfg, cfg.model, cfg.gpu, reqs)
    b = ServingSimulation(unified, unified.model, unified.gpu, reqs)  # type: ignore[arg-type]
    assert a.pd is not None and b.pd is None
    assert [i.setup for i in a.instances] == [i.setup for i in b.instances]
    for x, y in zip(a.instances, b.instances, strict=True):
        assert x.tm.describe() == y.tm.describe()
        for attr in (
            "block_size",
            "max_num_seqs",
            "max_num_batched_tokens",
            "chunked_prefill",
            "safe",
            "swap",
            "caching",
            "memory_pressure",
        ):
            assert getattr(x, attr) == getattr(y, attr), attr
    assert cfg.scheduler == unified.scheduler and cfg.perf == unified.perf
    assert cfg.cache == unified.cache


def test_pd_ratio_sweep_output_shape(tmp_path: Any) -> None:
    from kvsim.sweep import load_sweep_spec, run_sweep

    spec, d = load_sweep_spec("pd-ratio")
    spec = spec.model_copy(
        update={"set_": {**spec.set_, "workload.num_requests": 40}, "replicates": 1}
    )
    out = run_sweep(spec, tmp_path / "sw", spec_dir=d, workers=1, plots=False)
    ratios = spec.grid["cluster.pd.ratio"]
    assert len(out.table) == len(ratios) * len(spec.grid.get("cluster.pd.enabled", [1]))
    assert set(out.table["status"]) == {"ok"}
    assert {"p99_ttft_ms", "p99_tpot_ms", "pd_transfers"} <= set(out.table.columns)
