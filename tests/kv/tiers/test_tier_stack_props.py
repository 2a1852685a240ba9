"""Hypothesis invariants of TierStack, and differential checks against plain caches."""

from __future__ import annotations

from collections import OrderedDict

from hypothesis import given, settings
from hypothesis import strategies as st

from kvsim.kv.policies import create_policy, simulate_misses
from kvsim.kv.tiers import Tier, TierSpec, TierStack

POLICIES = ["lru", "fifo", "lfu", "clock", "sieve", "arc", "s3fifo", "2q", "mru"]
KEYS = range(12)

configs = st.fixed_dictionaries(
    {
        "caps": st.lists(st.integers(1, 5), min_size=1, max_size=3),
        "policy": st.sampled_from(POLICIES),
        "mode": st.sampled_from(["exclusive", "inclusive", "inclusive-wt", "selective"]),
    }
)
ops = st.lists(
    st.tuples(
        st.sampled_from(["access", "prefetch"]),
        st.lists(st.integers(0, 11), min_size=1, max_size=6, unique=True),
    ),
    max_size=40,
)


def build(cfg: dict) -> TierStack:
    tiers = [Tier(TierSpec(f"t{k}", c, policy=cfg["policy"])) for k, c in enumerate(cfg["caps"])]
    mode = cfg["mode"]
    kw: dict = {"inclusive": mode.startswith("inclusive")}
    if mode == "inclusive-wt":
        kw["write_policy"] = "write_through"
    if mode == "selective":
        kw.update(write_policy="selective", max_depth=2, min_hits=2)
    return TierStack(tiers, block_bytes=1.0, **kw)


def check(stack: TierStack) -> None:
    stack.check_invariants()
    for tier in stack.tiers:
        assert tier.policy.used <= tier.capacity
        assert tier.policy.used == len(tier.policy)
    if not stack.inclusive:
        for key in KEYS:
            assert sum(key in t.policy for t in stack.tiers) <= 1
    assert stack.num_hits + stack.num_misses == stack.num_accesses
    assert sum(t.counters.hits for t in stack.tiers) == stack.num_hits
    for upper, lower in zip(stack.tiers, stack.tiers[1:], strict=False):
        assert lower.counters.hits + lower.counters.misses == upper.counters.misses
    assert stack.num_prefetch_used + stack.num_prefetch_wasted <= stack.num_prefetch_issued


@settings(max_examples=150, deadline=None)
@given(configs, ops)
def test_invariants_after_every_operation(cfg: dict, seq: list) -> None:
    stack = build(cfg)
    for now, (op, hashes) in enumerate(seq):
        if op == "prefetch":
            stack.prefetch(hashes, float(now))
        else:
            res = stack.lookup(hashes, float(now))
            assert sum(res.hits_per_tier) == res.num_hit <= len(hashes)
            stack.insert(hashes[res.num_hit :], float(now), first_depth=res.num_hit + 1)
            # LRU: a request that fits in the top tier is there afterwards, whole
            if len(hashes) <= stack.tiers[0].capacity and cfg["policy"] == "lru":
                assert all(h in stack.tiers[0].policy for h in hashes)
        check(stack)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(POLICIES),
    st.integers(1, 6),
    st.lists(st.integers(0, 15), min_size=1, max_size=80),
)
def test_one_tier_single_blocks_match_the_policy_replay(
    policy: str, cap: int, trace: list[int]
) -> None:
    stack = TierStack([Tier(TierSpec("t0", cap, policy=policy))], block_bytes=1.0)
    for now, key in enumerate(trace):
        if stack.lookup([key], float(now)).num_hit == 0:
            stack.insert([key], float(now))
    expected = simulate_misses(create_policy(policy, capacity=cap), trace, cap)
    assert stack.num_misses == expected


def lru_hits(trace: list[int], cap: int) -> list[bool]:
    cache: OrderedDict[int, None] = OrderedDict()
    out = []
    for key in trace:
        hit = key in cache
        out.append(hit)
        cache[key] = None
        cache.move_to_end(key)
        if len(cache) > cap:
            cache.popitem(last=False)
    return out


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.lists(st.integers(0, 12), max_size=80))
def test_exclusive_lru_stack_is_one_lru_of_the_summed_capacity(
    c0: int, c1: int, trace: list[int]
) -> None:
    """Exclusive LRU tiers with promotion to the top and demotion of victims keep the
    c0 + c1 most recent keys (the top tier the c0 most recent): hit for hit, the top tier
    behaves like LRU(c0) and the stack like LRU(c0 + c1)."""
    stack = TierStack([Tier(TierSpec("t0", c0)), Tier(TierSpec("t1", c1))], block_bytes=1.0)
    small, big = lru_hits(trace, c0), lru_hits(trace, c0 + c1)
    for now, key in enumerate(trace):
        res = stack.lookup([key], float(now))
        assert res.hits_per_tier[0] == small[now]
        assert res.num_hit == big[now]
        if not res.num_hit:
            stack.insert([key], float(now))
