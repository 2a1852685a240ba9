"""Synthetic generator: exact small cases, arrival statistics, prefix sharing, sessions,
output block hashes (synthesised only for a turn that a later turn of its session follows)."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvsim.config.workload import LengthDist, SessionSpec, SharedPrefixSpec, SyntheticWorkload
from kvsim.workload.arrivals import arrival_times
from kvsim.workload.hashing import mix64, segment_block_hashes
from kvsim.workload.request import Request
from kvsim.workload.synthetic import generate


def fixed(value: int) -> LengthDist:
    return LengthDist(dist="fixed", value=value)


def common_prefix(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def conversation(r: Request) -> tuple[int, ...]:
    """Hashes of the full blocks of ``prompt + output``."""
    return r.block_hashes + r.output_block_hashes


def by_session(requests: list[Request]) -> dict[int, list[Request]]:
    """Requests per session, in turn order (arrival order is turn order within a session)."""
    out: dict[int, list[Request]] = defaultdict(list)
    for r in requests:
        out[r.session_id].append(r)
    return out


def last_turn_ids(requests: list[Request]) -> set[int]:
    """Ids of the requests no later turn follows: each session's last turn, and every
    session-less request (``session_id == -1``)."""
    last = {r.request_id for r in requests if r.session_id == -1}
    last |= {turns[-1].request_id for sid, turns in by_session(requests).items() if sid != -1}
    return last


def assert_output_lengths(requests: list[Request]) -> None:
    """Non-last turn: one output hash per full block completed by the output, so prompt +
    output hashes cover ``(p + o) // bs`` blocks. Last turn / session-less: none at all."""
    last = last_turn_ids(requests)
    for r in requests:
        bs = r.hash_block_size
        p, conv = r.prompt_tokens, r.prompt_tokens + r.output_tokens
        assert len(r.block_hashes) == p // bs
        if r.request_id in last:
            assert r.output_block_hashes == ()
        else:
            assert len(r.output_block_hashes) == conv // bs - p // bs
            assert len(conversation(r)) == conv // bs


# --- exact small workloads -------------------------------------------------------------------


def test_constant_fixed_workload_is_exact() -> None:
    cfg = SyntheticWorkload(
        num_requests=3,
        rate=4.0,
        arrival="constant",
        prompt=fixed(40),
        output=fixed(7),
        hash_block_size=16,
    )
    reqs = generate(cfg, np.random.default_rng(0))
    # segment ids: request r's message is 2r, its output 2r + 1 (no system prompts)
    expected = [
        Request(
            request_id=r,
            arrival_s=r * 0.25,
            prompt_tokens=40,
            output_tokens=7,
            session_id=-1,
            block_hashes=(mix64(2 * r, 16), mix64(2 * r, 32)),
            hash_block_size=16,
            output_block_hashes=(),  # session-less: no later turn
            synthetic_hashes=True,
        )
        for r in range(3)
    ]
    assert reqs == expected


def test_output_block_hashes_exact_without_sessions() -> None:
    cfg = SyntheticWorkload(
        num_requests=3, rate=1.0, arrival="constant", prompt=fixed(40), output=fixed(30)
    )
    reqs = generate(cfg, np.random.default_rng(0))
    # conversation = 70 tokens: the output completes the blocks ending at 48 and 64, but no
    # later turn can hit them, so they are not hashed
    assert len(reqs) == 3
    for r in reqs:
        rid = r.request_id
        assert r.session_id == -1
        assert r.block_hashes == (mix64(2 * rid, 16), mix64(2 * rid, 32))
        assert r.output_block_hashes == ()


def test_output_block_hashes_exact_sessions_only_before_a_later_turn() -> None:
    cfg = SyntheticWorkload(
        num_requests=8,
        rate=1.0,
        arrival="constant",
        prompt=fixed(40),
        output=fixed(30),
        sessions=SessionSpec(turns=fixed(3), think_time_s=0.0),
    )
    reqs = generate(cfg, np.random.default_rng(0))
    # sessions 0, 1 have 3 turns, session 2 is truncated to 2; request r (session-major =
    # arrival order here) has message segment 2r and output segment 2r + 1. Per session:
    # [msg1 0:40][out1 40:70][msg2 70:110][out2 110:140][msg3 140:180][out3 180:210]
    assert [r.session_id for r in reqs] == [0, 0, 0, 1, 1, 1, 2, 2]
    for s, first in ((0, 0), (1, 3), (2, 6)):
        t = reqs[first : first + 3]
        assert all(r.session_id == s for r in t)
        m1, o1, m2, o2, m3 = (2 * first + k for k in range(5))
        # turn 1: prompt 40 -> 2 blocks; its output completes blocks ending at 48, 64
        assert t[0].prompt_tokens == 40
        assert t[0].block_hashes == (mix64(m1, 16), mix64(m1, 32))
        assert t[0].output_block_hashes == (mix64(o1, 48), mix64(o1, 64))
        # turn 2: prompt 110 -> 6 blocks (80, 96 end in msg2)
        turn2_prompt = (
            mix64(m1, 16),
            mix64(m1, 32),
            mix64(o1, 48),
            mix64(o1, 64),
            mix64(m2, 80),
            mix64(m2, 96),
        )
        assert t[1].prompt_tokens == 110
        assert t[1].block_hashes == turn2_prompt
        if s == 2:  # truncated session: turn 2 is its last
            assert len(t) == 2
            assert t[1].output_block_hashes == ()
            continue
        # (110 + 30) // 16 = 8 blocks: those ending at 112, 128 end in out2
        assert t[1].output_block_hashes == (mix64(o2, 112), mix64(o2, 128))
        # turn 3 (last): prompt 180 -> 11 blocks; out3's blocks (192, 208) are not hashed
        assert t[2].prompt_tokens == 180
        assert t[2].block_hashes == (
            *turn2_prompt,
            mix64(o2, 112),
            mix64(o2, 128),
            mix64(m3, 144),
            mix64(m3, 160),
            mix64(m3, 176),
        )
        assert t[2].output_block_hashes == ()


def test_output_block_hashes_exact_session_with_system_prompt() -> None:
    cfg = SyntheticWorkload(
        num_requests=2,
        arrival="constant",
        prompt=fixed(20),
        output=fixed(20),
        shared_prefix=SharedPrefixSpec(num_prefixes=1, tokens=10, fraction=1.0),
        sessions=SessionSpec(turns=fixed(2), think_time_s=0.0),
    )
    t1, t2 = generate(cfg, np.random.default_rng(0))
    # stream: [P 0:10 id 0][msg1 10:30 id 1][out1 30:50 id 2][msg2 50:70 id 3][out2 70:90 id 4]
    assert (t1.prompt_tokens, t2.prompt_tokens) == (30, 70)
    assert t1.block_hashes == (mix64(1, 16),)
    assert t1.output_block_hashes == (mix64(2, 32), mix64(2, 48))
    assert t2.block_hashes == (mix64(1, 16), mix64(2, 32), mix64(2, 48), mix64(3, 64))
    assert t2.block_hashes[:3] == t1.block_hashes + t1.output_block_hashes  # (30 + 20) // 16
    # the last turn: out2 completes the block ending at 80, but nothing follows to hit it
    assert t2.output_block_hashes == ()


def test_vectorised_hash_matches_scalar_reference() -> None:
    seg = np.array([0, 1, 7, 2**40, 123456789], dtype=np.int64)
    end = np.array([16, 16, 512, 48, 2**33], dtype=np.int64)
    got = segment_block_hashes(seg, end).tolist()
    assert got == [mix64(s, e) for s, e in zip(seg.tolist(), end.tolist(), strict=True)]
    assert all(0 <= h < 2**63 for h in got)
    assert len(set(got)) == len(got)


def test_arrival_times_first_at_zero_and_constant_gaps() -> None:
    times = arrival_times("constant", 10.0, 5, np.random.default_rng(0))
    assert times.tolist() == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert arrival_times("poisson", 1.0, 0, np.random.default_rng(0)).shape == (0,)
    assert arrival_times("poisson", 1.0, 1, np.random.default_rng(0)).tolist() == [0.0]
    with pytest.raises(ValueError):
        arrival_times("weibull", 1.0, 3, np.random.default_rng(0))  # type: ignore[arg-type]


# --- determinism ------------------------------------------------------------------------------

RICH = SyntheticWorkload(
    num_requests=300,
    rate=5.0,
    arrival="gamma",
    cv=2.0,
    shared_prefix=SharedPrefixSpec(num_prefixes=3, tokens=100, fraction=0.7),
    sessions=SessionSpec(turns=LengthDist(dist="uniform", low=1, high=5), think_time_s=3.0),
)


def test_same_seed_same_requests_different_seed_different() -> None:
    a = generate(RICH, np.random.default_rng(42))
    b = generate(RICH, np.random.default_rng(42))
    c = generate(RICH, np.random.default_rng(43))
    assert a == b
    assert [r.block_hashes for r in a] == [r.block_hashes for r in b]
    assert [r.output_block_hashes for r in a] == [r.output_block_hashes for r in b]
    assert a != c


def test_ids_are_arrival_order_and_count_exact() -> None:
    reqs = generate(RICH, np.random.default_rng(1))
    assert len(reqs) == 300
    assert [r.request_id for r in reqs] == list(range(300))
    times = [r.arrival_s for r in reqs]
    assert times == sorted(times) and times[0] >= 0.0
    assert all(r.synthetic_hashes and r.hash_block_size == 16 for r in reqs)
    assert all(len(r.block_hashes) == r.prompt_tokens // 16 for r in reqs)


@pytest.mark.parametrize("bs", [1, 7, 16, 64, 512])
@pytest.mark.parametrize("with_sessions", [True, False])
def test_output_block_hash_lengths(bs: int, with_sessions: bool) -> None:
    cfg = RICH.model_copy(
        update={"hash_block_size": bs, "sessions": RICH.sessions if with_sessions else None}
    )
    reqs = generate(cfg, np.random.default_rng(3))
    assert all(r.hash_block_size == bs for r in reqs)
    assert_output_lengths(reqs)
    last = last_turn_ids(reqs)
    for r in reqs:
        assert all(0 <= h < 2**63 for h in r.output_block_hashes)
    if with_sessions:
        assert 0 < len(last) < len(reqs)
        # non-last turns do get output hashes, wherever the output completes a block
        assert any(r.output_block_hashes for r in reqs if r.request_id not in last)
    else:
        assert len(last) == len(reqs)
        assert all(r.output_block_hashes == () for r in reqs)


# --- arrival statistics -----------------------------------------------------------------------


def gaps_of(cfg: SyntheticWorkload, seed: int = 0) -> np.ndarray:
    reqs = generate(cfg, np.random.default_rng(seed))
    return np.diff([r.arrival_s for r in reqs])


def test_poisson_mean_gap_and_cv() -> None:
    gaps = gaps_of(SyntheticWorkload(num_requests=20_001, rate=8.0, prompt=fixed(10)))
    assert len(gaps) == 20_000
    assert abs(gaps.mean() * 8.0 - 1) < 0.03
    assert abs(gaps.std() / gaps.mean() - 1) < 0.03


@pytest.mark.parametrize("cv", [0.5, 2.0, 4.0])
def test_gamma_cv(cv: float) -> None:
    cfg = SyntheticWorkload(num_requests=20_001, rate=2.0, arrival="gamma", cv=cv, prompt=fixed(8))
    gaps = gaps_of(cfg)
    assert abs(gaps.mean() * 2.0 - 1) < 0.03 * cv
    assert abs(gaps.std() / gaps.mean() / cv - 1) < 0.06


def test_constant_arrivals() -> None:
    gaps = gaps_of(SyntheticWorkload(num_requests=100, rate=5.0, arrival="constant"))
    assert np.allclose(gaps, 0.2)


# --- shared system prompts --------------------------------------------------------------------


@pytest.mark.parametrize(("tokens", "bs"), [(100, 16), (96, 16), (15, 16), (512, 512), (700, 64)])
def test_same_system_prompt_shares_exactly_its_full_blocks(tokens: int, bs: int) -> None:
    cfg = SyntheticWorkload(
        num_requests=200,
        prompt=LengthDist(dist="uniform", low=1, high=300),
        shared_prefix=SharedPrefixSpec(num_prefixes=2, tokens=tokens, fraction=1.0),
        hash_block_size=bs,
    )
    reqs = generate(cfg, np.random.default_rng(5))
    full = tokens // bs
    assert all(r.prompt_tokens > tokens for r in reqs)  # prompt = prefix + sampled message
    shared = {
        common_prefix(a.block_hashes, b.block_hashes) for a in reqs for b in reqs if a is not b
    }
    if full == 0:
        assert shared == {0}
    else:
        # same system prompt -> exactly `full` blocks; different system prompt -> none
        assert shared == {0, full}


def test_prefix_fraction_and_no_sharing_without_prefix() -> None:
    cfg = SyntheticWorkload(
        num_requests=4000,
        prompt=fixed(64),
        shared_prefix=SharedPrefixSpec(num_prefixes=1, tokens=64, fraction=0.3),
    )
    reqs = generate(cfg, np.random.default_rng(0))
    with_prefix = [r for r in reqs if r.prompt_tokens == 128]
    assert abs(len(with_prefix) / 4000 - 0.3) < 0.03
    assert len({r.block_hashes[:4] for r in with_prefix}) == 1
    without = [r.block_hashes for r in reqs if r.prompt_tokens == 64]
    assert len({h for hashes in without for h in hashes}) == 4 * len(without)


# --- sessions ---------------------------------------------------------------------------------


def session_cfg(**kw: object) -> SyntheticWorkload:
    base: dict[str, object] = {
        "num_requests": 500,
        "rate": 2.0,
        "prompt": LengthDist(dist="uniform", low=1, high=200),
        "output": LengthDist(dist="uniform", low=1, high=100),
        "sessions": SessionSpec(turns=LengthDist(dist="uniform", low=1, high=6), think_time_s=5.0),
    }
    base.update(kw)
    return SyntheticWorkload.model_validate(base)


def test_session_turns_grow_by_previous_output_plus_message() -> None:
    reqs = generate(session_cfg(), np.random.default_rng(9))
    assert len(reqs) == 500
    sessions = by_session(reqs)
    assert -1 not in sessions and sorted(sessions) == list(range(len(sessions)))
    for turns in sessions.values():
        for prev, cur in itertools.pairwise(turns):
            conv = prev.prompt_tokens + prev.output_tokens
            assert cur.prompt_tokens > conv
            assert cur.arrival_s >= prev.arrival_s
            # turn k+1 starts with every full block of turn k's prompt + output
            assert len(cur.block_hashes) >= conv // 16
            assert cur.block_hashes[: len(prev.block_hashes)] == prev.block_hashes
            # ... and they are exactly turn k's prompt + output hashes
            assert cur.block_hashes[: conv // 16] == conversation(prev)


@pytest.mark.parametrize("bs", [1, 16, 64, 512])
@pytest.mark.parametrize("prefix_tokens", [None, 16, 100])
def test_next_turn_starts_with_previous_conversation(bs: int, prefix_tokens: int | None) -> None:
    prefix = (
        None
        if prefix_tokens is None
        else SharedPrefixSpec(num_prefixes=2, tokens=prefix_tokens, fraction=0.6)
    )
    reqs = generate(
        session_cfg(num_requests=2000, hash_block_size=bs, shared_prefix=prefix),
        np.random.default_rng(bs),
    )
    pairs = 0
    for turns in by_session(reqs).values():
        for prev, cur in itertools.pairwise(turns):
            conv = conversation(prev)
            assert len(conv) == (prev.prompt_tokens + prev.output_tokens) // bs
            assert cur.block_hashes[: len(conv)] == conv
            pairs += 1
        assert turns[-1].output_block_hashes == ()
    assert pairs > 500


def test_session_block_identity() -> None:
    """Within a session every turn is a prefix of one conversation: block i is the same in
    all turns that have it (non-last turns' output blocks included); across sessions (no
    system prompt) nothing is shared."""
    reqs = generate(session_cfg(), np.random.default_rng(2))
    assert_output_lengths(reqs)
    owner: dict[int, tuple[int, int]] = {}
    for r in reqs:
        for i, h in enumerate(conversation(r)):
            assert owner.setdefault(h, (r.session_id, i)) == (r.session_id, i)


def test_output_hashes_are_never_shared_between_outputs() -> None:
    """Each output is new content: no two requests share an output hash, even with system
    prompts and sessions. Within a session, turn k's output hashes reappear exactly in the
    prompts of turns k + 1 .. T (the re-sent conversation) and nowhere else; the last turn
    and session-less requests have none."""
    prefix = SharedPrefixSpec(num_prefixes=1, tokens=64, fraction=1.0)
    cfg = session_cfg(num_requests=1000, hash_block_size=4, shared_prefix=prefix)
    reqs = generate(cfg, np.random.default_rng(11))
    assert_output_lengths(reqs)
    outputs = [h for r in reqs for h in r.output_block_hashes]
    assert len(outputs) > 1000
    assert len(set(outputs)) == len(outputs)
    # every output hash vs. the prompts holding it: exactly its own session's later turns
    holders: dict[int, set[int]] = defaultdict(set)
    for r in reqs:
        for h in r.block_hashes:
            holders[h].add(r.request_id)
    for turns in by_session(reqs).values():
        for k, r in enumerate(turns):
            later = {t.request_id for t in turns[k + 1 :]}
            for h in r.output_block_hashes:
                assert holders[h] == later
        assert turns[-1].output_block_hashes == ()

    flat = generate(cfg.model_copy(update={"sessions": None}), np.random.default_rng(11))
    assert len(flat) == 1000 and all(r.session_id == -1 for r in flat)
    assert all(r.output_block_hashes == () for r in flat)


def test_session_starts_follow_arrival_process_and_truncation() -> None:
    cfg = session_cfg(
        num_requests=10,
        arrival="constant",
        rate=1.0,
        sessions=SessionSpec(turns=fixed(4), think_time_s=0.0),
    )
    reqs = generate(cfg, np.random.default_rng(0))
    assert [r.session_id for r in reqs] == [0] * 4 + [1] * 4 + [2] * 2  # last one truncated
    assert [r.arrival_s for r in reqs] == [0.0] * 4 + [1.0] * 4 + [2.0] * 2


def test_think_time_mean() -> None:
    cfg = session_cfg(num_requests=20_000, sessions=SessionSpec(turns=fixed(2), think_time_s=7.0))
    reqs = generate(cfg, np.random.default_rng(0))
    think = [t[1].arrival_s - t[0].arrival_s for t in by_session(reqs).values()]
    assert abs(np.mean(think) / 7.0 - 1) < 0.03


def test_sessions_with_system_prompt() -> None:
    cfg = session_cfg(shared_prefix=SharedPrefixSpec(num_prefixes=2, tokens=50, fraction=1.0))
    reqs = generate(cfg, np.random.default_rng(4))
    first_turn: dict[int, Request] = {}
    for r in reqs:
        first_turn.setdefault(r.session_id, r)
    heads = {r.block_hashes[:3] for r in first_turn.values()}
    assert len(heads) == 2  # every session starts with one of two system prompts


# --- property: prefix chaining ----------------------------------------------------------------


def assert_prefix_chained(reqs: list[Request]) -> None:
    """Equal hash at i implies equal hashes at every j < i: each hash has one position and
    one parent (the hash before it), which by induction fixes the whole prefix. Checked on
    prompt + output hashes, which covers the prompt hashes alone."""
    parent: dict[int, tuple[int, int | None]] = {}
    for r in reqs:
        prev: int | None = None
        for i, h in enumerate(conversation(r)):
            assert parent.setdefault(h, (i, prev)) == (i, prev)
            prev = h


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 120),
    bs=st.sampled_from([1, 4, 16, 64]),
    prefix=st.one_of(st.none(), st.tuples(st.integers(1, 4), st.integers(1, 200), st.floats(0, 1))),
    turns=st.one_of(st.none(), st.integers(1, 6)),
    think=st.floats(0.0, 10.0),
)
def test_hashes_are_prefix_chained(
    seed: int,
    n: int,
    bs: int,
    prefix: tuple[int, int, float] | None,
    turns: int | None,
    think: float,
) -> None:
    cfg = SyntheticWorkload(
        num_requests=n,
        prompt=LengthDist(dist="lognormal", mean=80, sigma=1.0, max=400),
        output=LengthDist(dist="uniform", low=1, high=50),
        hash_block_size=bs,
        shared_prefix=None
        if prefix is None
        else SharedPrefixSpec(num_prefixes=prefix[0], tokens=prefix[1], fraction=prefix[2]),
        sessions=None
        if turns is None
        else SessionSpec(turns=LengthDist(dist="uniform", low=1, high=turns), think_time_s=think),
    )
    reqs = generate(cfg, np.random.default_rng(seed))
    assert len(reqs) == n
    assert_prefix_chained(reqs)
    # non-last turns: (p + o) // bs prompt + output hashes; last / session-less: prompt only
    assert_output_lengths(reqs)
    for r in reqs:
        assert all(0 <= h < 2**63 for h in conversation(r))
    if turns is None:
        assert all(r.output_block_hashes == () for r in reqs)
    # the next turn re-sends the conversation: its leading hashes are the previous turn's
    # prompt + output hashes
    else:
        for session in by_session(reqs).values():
            for prev, cur in itertools.pairwise(session):
                conv = conversation(prev)
                assert len(conv) == (prev.prompt_tokens + prev.output_tokens) // bs
                assert cur.block_hashes[: len(conv)] == conv
            assert session[-1].output_block_hashes == ()
    # outputs are fresh content: no output hash belongs to two requests, and one appears
    # in no prompt but those of its own session's later turns
    outputs = [h for r in reqs for h in r.output_block_hashes]
    assert len(set(outputs)) == len(outputs)
    owner = {h: r for r in reqs for h in r.output_block_hashes}
    for r in reqs:
        for h in r.block_hashes:
            if h in owner:
                assert owner[h].session_id == r.session_id != -1
                assert owner[h].arrival_s <= r.arrival_s and owner[h] is not r
    # across sessions only a system prompt's full blocks can be shared
    max_shared = 0 if prefix is None else prefix[1] // bs
    heads: dict[int, tuple[int, ...]] = {}
    for r in reqs:
        key = r.session_id if turns is not None else r.request_id
        heads[key] = conversation(r)  # the last turn's prompt holds every earlier conversation
    values = list(heads.values())
    for i, a in enumerate(values):
        for b in values[i + 1 :]:
            assert common_prefix(a, b) in (0, max_shared)
    assert math.isfinite(sum(r.arrival_s for r in reqs))
