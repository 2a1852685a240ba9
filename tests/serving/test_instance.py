"""Engine tests with hand-computed timings on the toy model (see helpers.TOY_*)."""

from __future__ import annotations

import pytest

from helpers import by_id, make_request, run_engine, toy_config
from kvsim.serving.seq import SeqState

# Hand-derived coefficients of the toy model (seconds):
W = 2e9 / 1e12  # weights read per step
KV = 512 / 1e12  # one token's KV read
TOK = 2 * 1e9 / 1e14  # 2 * params FLOPs per new token
CTX = 4 * 2 * 64 / 1e14  # attention FLOPs per (new token x context token)


def prefill_time(p: int, prior: int = 0) -> float:
    """Compute-bound for the prompt sizes used here (checked in the tests)."""
    attn = p * prior + p * (p + 1) / 2
    compute = p * TOK + attn * CTX
    memory = W + (prior + p) * KV
    assert compute > memory
    return compute


def decode_time(contexts: list[int]) -> float:
    """Memory-bound decode of sequences attending to ``contexts`` tokens."""
    s = sum(contexts)
    compute = len(contexts) * TOK + s * CTX
    memory = W + s * KV
    assert memory > compute
    return memory


def test_single_request_ttft_and_latency() -> None:
    run = run_engine(toy_config(), [make_request(0, 0.0, 1000, 3)])
    seq = by_id(run)[0]
    t0 = prefill_time(1000)
    assert seq.first_token_s == pytest.approx(t0, rel=1e-12)
    # two decode steps feed tokens 1 and 2 (contexts 1001 and 1002)
    assert seq.finish_s == pytest.approx(t0 + decode_time([1001]) + decode_time([1002]), rel=1e-12)
    assert seq.state is SeqState.FINISHED
    assert run.num_events <= 4


def test_two_simultaneous_requests_share_the_prefill_step() -> None:
    reqs = [make_request(0, 0.0, 1000, 2), make_request(1, 0.0, 500, 2)]
    run = run_engine(toy_config(), reqs)
    s = by_id(run)
    step = 1500 * TOK + (1000 * 1001 / 2 + 500 * 501 / 2) * CTX
    assert s[0].first_token_s == pytest.approx(step, rel=1e-12)
    assert s[1].first_token_s == pytest.approx(step, rel=1e-12)
    fin = step + decode_time([1001, 501])
    assert s[0].finish_s == pytest.approx(fin, rel=1e-12)
    assert s[1].finish_s == pytest.approx(fin, rel=1e-12)


def test_arrival_mid_decode_waits_for_the_step_boundary() -> None:
    t0 = prefill_time(1000)
    d1 = decode_time([1001])
    arrive = t0 + 0.5 * d1  # inside the first decode step of request 0
    reqs = [make_request(0, 0.0, 1000, 4), make_request(1, arrive, 100, 2)]
    for exact in (False, True):
        s = by_id(run_engine(toy_config(), reqs, exact=exact))
        # request 1 joins at the end of request 0's first decode step: a mixed step
        start = t0 + d1
        mixed = 101 * TOK + (1002 + 100 * 101 / 2) * CTX  # decode (ctx 1002) + 100 prompt tokens
        mem = W + (1002 + 100) * KV
        assert mixed > mem
        assert s[1].first_scheduled_s == pytest.approx(start, rel=1e-12)
        assert s[1].first_token_s == pytest.approx(start + mixed, rel=1e-12)
        # then both decode together: contexts 1003 (req 0) and 101 (req 1) -> req 1 finishes
        both = decode_time([1003, 101])
        assert s[1].finish_s == pytest.approx(start + mixed + both, rel=1e-12)
        assert s[0].finish_s == pytest.approx(start + mixed + both, rel=1e-12)


def test_prefix_cache_hit_skips_cached_blocks() -> None:
    hashes = list(range(100, 162))  # 62 full blocks of 16 tokens = 992 tokens
    reqs = [make_request(0, 0.0, 1000, 2, hashes), make_request(1, 1.0, 1000, 2, hashes)]
    s = by_id(run_engine(toy_config(), reqs))
    assert s[0].cached_tokens == 0
    assert s[1].cached_tokens == 992
    # request 1 computes only the last 8 tokens, attending to the 992 cached ones
    compute = 8 * TOK + (8 * 992 + 8 * 9 / 2) * CTX
    memory = W + 1000 * KV
    assert s[1].first_token_s - 1.0 == pytest.approx(max(compute, memory), rel=1e-12)


def test_full_prompt_hit_still_computes_one_block() -> None:
    hashes = list(range(64))  # prompt of exactly 64 blocks: the last block is recomputed
    reqs = [make_request(0, 0.0, 1024, 2, hashes), make_request(1, 1.0, 1024, 2, hashes)]
    s = by_id(run_engine(toy_config(), reqs))
    assert s[1].cached_tokens == 63 * 16


def test_preemption_by_recompute_when_blocks_run_out() -> None:
    # 10 blocks of 16 tokens: two 64-token prompts take 8 blocks; growth forces a preemption
    cfg = toy_config(scheduler={"kv_capacity_blocks": 10, "admission": "lazy"})
    reqs = [make_request(0, 0.0, 64, 60), make_request(1, 0.0, 64, 60)]
    for exact in (False, True):
        run = run_engine(cfg, reqs, exact=exact)
        s = by_id(run)
        assert s[0].num_preemptions == 0
        assert s[1].num_preemptions >= 1
        assert all(q.state is SeqState.FINISHED for q in s.values())
        assert run.instances[0].pool.num_free_blocks == 10


def test_safe_admission_never_preempts() -> None:
    cfg = toy_config(scheduler={"kv_capacity_blocks": 10, "admission": "safe"})
    reqs = [make_request(0, 0.0, 64, 60), make_request(1, 0.0, 64, 60)]
    s = by_id(run_engine(cfg, reqs))
    assert s[0].num_preemptions == s[1].num_preemptions == 0
    # request 1 can only start after request 0 released its 8 reserved blocks
    assert s[1].first_scheduled_s == pytest.approx(s[0].finish_s, rel=1e-12)


def test_request_larger_than_kv_capacity_is_rejected() -> None:
    cfg = toy_config(scheduler={"kv_capacity_blocks": 4})
    s = by_id(run_engine(cfg, [make_request(0, 0.0, 100, 10)]))
    assert s[0].state is SeqState.REJECTED
    assert s[0].reject_reason == "kv_capacity"


def test_chunked_prefill_splits_long_prompt() -> None:
    cfg = toy_config(scheduler={"max_num_batched_tokens": 512, "max_num_seqs": 4})
    s = by_id(run_engine(cfg, [make_request(0, 0.0, 1000, 2)]))
    expect = prefill_time(512) + prefill_time(488, prior=512)
    assert s[0].first_token_s == pytest.approx(expect, rel=1e-12)


def test_swap_preemption_keeps_computed_tokens() -> None:
    cfg = toy_config(scheduler={"kv_capacity_blocks": 10, "preemption": "swap"})
    reqs = [make_request(0, 0.0, 64, 60), make_request(1, 0.0, 64, 60)]
    run = run_engine(cfg, reqs)
    s = by_id(run)
    assert s[1].num_preemptions >= 1
    assert all(q.state is SeqState.FINISHED for q in s.values())


def test_next_turn_hits_blocks_filled_by_decode() -> None:
    from kvsim.workload.request import Request

    turn1 = Request(0, 0.0, 64, 40, 7, (1, 2, 3, 4), 16, output_block_hashes=(5, 6))
    turn2 = Request(1, 5.0, 124, 2, 7, (1, 2, 3, 4, 5, 6, 8), 16)
    for exact in (False, True):
        run = run_engine(toy_config(), [turn1, turn2], exact=exact)
        s = by_id(run)
        # turn 1 stored 64 + 40 - 1 = 103 tokens: 6 full blocks, all registered
        assert s[1].cached_tokens == 6 * 16
        inst = run.instances[0]
        assert inst.num_prefix_hit_blocks == 6
        assert inst.num_prefix_query_blocks == 4 + 7  # prompt blocks only


def test_round_robin_and_least_loaded_routing() -> None:
    reqs = [make_request(i, 0.001 * i, 100, 50) for i in range(6)]
    rr = by_id(run_engine(toy_config(cluster={"num_instances": 3}), reqs))
    assert [rr[i].instance for i in range(6)] == [0, 1, 2, 0, 1, 2]
    # least_loaded: instance 0 is busy with a long request, so the next ones go elsewhere
    reqs = [make_request(0, 0.0, 100, 5000)] + [make_request(i, 0.5 + i, 100, 5) for i in (1, 2)]
    ll = by_id(run_engine(toy_config(cluster={"num_instances": 2, "router": "least_loaded"}), reqs))
    assert [ll[i].instance for i in range(3)] == [0, 1, 1]


def test_max_waiting_rejects_when_the_queue_is_full() -> None:
    cfg = toy_config(scheduler={"max_num_seqs": 1, "max_waiting": 1})
    reqs = [make_request(i, 0.001 * i, 100, 50) for i in range(3)]
    s = by_id(run_engine(cfg, reqs))
    # request 0 runs, request 1 waits, request 2 finds the waiting queue full
    assert [s[i].state for i in range(3)] == [
        SeqState.FINISHED,
        SeqState.FINISHED,
        SeqState.REJECTED,
    ]
    assert s[2].reject_reason == "max_waiting"
    assert s[1].first_scheduled_s == pytest.approx(s[0].finish_s, rel=1e-12)


def test_max_model_len_rejection() -> None:
    from helpers import TOY_MODEL

    cfg = toy_config(model={**TOY_MODEL.model_dump(), "max_model_len": 128})
    s = by_id(run_engine(cfg, [make_request(0, 0.0, 100, 29), make_request(1, 0.0, 100, 28)]))
    assert s[0].state is SeqState.REJECTED and s[0].reject_reason == "max_model_len"
    assert s[1].state is SeqState.FINISHED


def test_non_chunked_prefill_waits_for_budget() -> None:
    cfg = toy_config(scheduler={"chunked_prefill": False, "max_num_batched_tokens": 1000})
    reqs = [make_request(0, 0.0, 800, 2), make_request(1, 0.0, 800, 2)]
    s = by_id(run_engine(cfg, reqs))
    # both cannot share one 1000-token step: request 1 prefills in the next step
    assert s[0].first_token_s == pytest.approx(prefill_time(800), rel=1e-12)
    assert s[1].first_scheduled_s == pytest.approx(s[0].first_token_s, rel=1e-12)
