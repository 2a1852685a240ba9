"""Fast-forward must reproduce exact-steps per-request results (DESIGN.md §4)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import by_id, make_request, run_engine, toy_config
from kvsim.serving.seq import SeqState


def random_scenario(seed: int):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 60))
    rate = float(rng.uniform(5, 200))
    arrivals = np.cumsum(rng.exponential(1 / rate, n))
    shared = [list(range(1000 * k, 1000 * k + 40)) for k in range(3)]
    reqs = []
    prev_conv: list[int] = []
    prev_tokens = 0
    for i in range(n):
        prompt = int(rng.integers(1, 700))
        output = int(rng.integers(1, 300))
        fresh = [10**6 + i * 1000 + j for j in range(100)]
        roll = rng.random()
        if roll < 0.25 and prev_tokens:  # next turn of the previous conversation
            prompt += prev_tokens
            conv = prev_conv + fresh
        elif roll < 0.6:
            conv = shared[int(rng.integers(0, 3))] + fresh
        else:
            conv = fresh
        conv = conv[: (prompt + output) // 16]
        req = make_request(i, float(arrivals[i]), prompt, output, conv[: prompt // 16])
        if rng.random() < 0.5:  # the conversation continues past the prompt
            req = dataclasses.replace(req, output_block_hashes=tuple(conv[prompt // 16 :]))
        reqs.append(req)
        prev_conv, prev_tokens = conv, prompt + output
    sched = {
        "block_size": int(rng.choice([8, 16, 32])),
        "kv_capacity_blocks": int(rng.integers(40, 400)),
        "max_num_seqs": int(rng.integers(2, 64)),
        "max_num_batched_tokens": int(rng.choice([256, 1024, 4096])),
        "chunked_prefill": bool(rng.random() < 0.7),
        "admission": str(rng.choice(["lazy", "lazy", "safe"])),
        "preemption": str(rng.choice(["recompute", "swap"])),
    }
    if not sched["chunked_prefill"]:
        sched["max_num_batched_tokens"] = 4096
    cfg = toy_config(
        scheduler=sched,
        cluster={"num_instances": int(rng.integers(1, 4))},
        cache={"prefix_caching": bool(rng.random() < 0.7)},
        perf={"iteration_overhead_ms": float(rng.choice([0.0, 0.5]))},
        outputs={"timeseries_dt_s": 0.05, "plots": False},
    )
    return cfg, reqs


def assert_same_results(seed: int) -> tuple[int, int]:
    cfg, reqs = random_scenario(seed)
    ff = run_engine(cfg, reqs, exact=False)
    ex = run_engine(cfg, reqs, exact=True)
    a, b = by_id(ff), by_id(ex)
    assert a.keys() == b.keys()
    for rid in a:
        x, y = a[rid], b[rid]
        assert x.state == y.state, rid
        assert x.num_preemptions == y.num_preemptions, rid
        assert x.cached_tokens == y.cached_tokens, rid
        assert x.instance == y.instance, rid
        for fld in ("first_scheduled_s", "first_token_s", "finish_s"):
            u, v = getattr(x, fld), getattr(y, fld)
            assert math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-12), (seed, rid, fld, u, v)
    # dt-grid samples (KV blocks, tokens, queues) agree too, mid-span included
    rows_ff, rows_ex = ff.collector.rows, ex.collector.rows
    assert len(rows_ff) == len(rows_ex)
    for r1, r2 in zip(rows_ff, rows_ex, strict=True):
        assert r1 == pytest.approx(r2, rel=1e-9), (seed, r1, r2)
    return ff.num_events, ex.num_events


@pytest.mark.parametrize("seed", range(200))
def test_fast_forward_equals_exact_steps(seed: int) -> None:
    assert_same_results(seed)


def test_scenarios_exercise_preemption_and_fast_forward() -> None:
    """The seeds above must really cover preemption and multi-step spans."""
    preempted = 0
    saved = 0
    for seed in range(60):
        cfg, reqs = random_scenario(seed)
        ff = run_engine(cfg, reqs)
        ex = run_engine(cfg, reqs, exact=True)
        preempted += sum(s.num_preemptions for s in ff.seqs) > 0
        saved += ff.num_events < ex.num_events
    assert preempted >= 10
    assert saved >= 50


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1000, max_value=10**6))
def test_invariants_hold_on_random_scenarios(seed: int) -> None:
    cfg, reqs = random_scenario(seed)
    run = run_engine(cfg, reqs)
    # every request ends in exactly one terminal state
    assert len(run.seqs) == len(reqs)
    assert {s.req.request_id for s in run.seqs} == {r.request_id for r in reqs}
    for s in run.seqs:
        assert s.state in (SeqState.FINISHED, SeqState.REJECTED)
        if s.state is SeqState.FINISHED:
            assert s.num_output == s.req.output_tokens
            assert s.req.arrival_s <= s.first_scheduled_s <= s.first_token_s <= s.finish_s
    for inst in run.instances:
        # blocks never exceed capacity, and all are returned at the end
        assert inst.peak_blocks <= inst.pool.num_blocks
        assert inst.pool.num_free_blocks == inst.pool.num_blocks
        assert all(b.ref_cnt == 0 for b in inst.pool.blocks)


def _events(cfg, reqs, exact: bool) -> list[dict]:
    from kvsim.serving.cluster import ServingSimulation

    out: list[dict] = []
    ServingSimulation(
        cfg, cfg.model, cfg.gpu, list(reqs), exact_steps=exact, event_sink=out.append
    ).run()
    return out


@pytest.mark.parametrize("seed", range(40))
def test_event_stream_is_time_ordered_and_equals_exact_steps(seed: int) -> None:
    """With an event stream, first tokens of a span's mixed step 0 are reported at their
    time (the stream stays ordered) and the stream holds the same records as exact stepping."""
    cfg, reqs = random_scenario(seed)
    ff, ex = _events(cfg, reqs, False), _events(cfg, reqs, True)
    times = [e["time_ms"] for e in ff]
    assert times == sorted(times)

    def key(e: dict) -> tuple:
        return (e["request_id"], e["event"], e["gpu_index"], round(e["time_ms"], 6))

    assert sorted(map(key, ff)) == sorted(map(key, ex))
    assert sum(e["event"] == "first_token" for e in ff) > 0


def test_mixed_step_opens_a_span() -> None:
    """Two requests on one instance: the second arrives while the first decodes; its prefill
    step becomes step 0 of the next span (no separate event for it)."""
    cfg = toy_config(
        scheduler={"block_size": 16, "kv_capacity_blocks": 100, "max_num_seqs": 8},
        outputs={"timeseries_dt_s": 0.05, "plots": False},
    )
    reqs = [make_request(0, 0.0, 100, 50), make_request(1, 0.02, 100, 30)]
    ff = run_engine(cfg, reqs)
    ex = run_engine(cfg, reqs, exact=True)
    for a, b in zip(ff.seqs, ex.seqs, strict=True):
        assert math.isclose(a.first_token_s, b.first_token_s, rel_tol=1e-12)
        assert math.isclose(a.finish_s, b.finish_s, rel_tol=1e-12)
    # arrival x2; spans: [prefill 0 + decode to arrival's boundary], [prefill 1 + decode to
    # 1's finish], [0 decodes alone to its finish]; no schedule events (the loop was idle)
    assert ff.num_events == 5


@pytest.mark.parametrize("seed", range(30))
def test_clock_limit_mid_span_equals_exact_steps(seed: int) -> None:
    """Stopping the clock inside a span (its mixed step 0 included) gives the same terminal
    states and lifecycle times as exact stepping: no first token after the limit. (Token
    counts of unfinished requests may differ: a span in flight is not applied.)"""
    cfg, reqs = random_scenario(seed)
    full = run_engine(cfg, reqs, exact=True)
    limit = full.end_s * (0.2 + 0.6 * ((seed * 7919) % 100) / 100)
    cfg = cfg.model_copy(update={"limits": cfg.limits.model_copy(update={"max_sim_time_s": limit})})
    ff, ex = by_id(run_engine(cfg, reqs)), by_id(run_engine(cfg, reqs, exact=True))
    for rid, x in ff.items():
        y = ex[rid]
        assert x.state == y.state, rid
        for fld in ("first_scheduled_s", "first_token_s", "finish_s"):
            u, v = getattr(x, fld), getattr(y, fld)
            assert math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-12), (seed, rid, fld, u, v)
