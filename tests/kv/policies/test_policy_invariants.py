"""Protocol invariants of every registered policy (a new policy is tested for free), the
registry's errors, and the policy-specific guarantees: pins, tenant quotas, TTL expiry,
Belady's optimality and its refusal to run blind."""

from __future__ import annotations

from collections.abc import Hashable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_refs import can_create, make_policy

from kvsim.errors import ConfigError, SimulationError
from kvsim.kv.policies import (
    NEVER,
    EvictionPolicy,
    annotate_next_use,
    create_policy,
    policy_class,
    policy_names,
    register_eviction,
    simulate_misses,
    simulate_split,
)

ALL = policy_names()
CAPACITY = 8

# an op: ("ins", key, size) | ("acc", key) | ("rem", key) | ("evict",)
ops_strategy = st.lists(
    st.one_of(
        st.tuples(st.just("ins"), st.integers(0, 9), st.integers(1, 4)),
        st.tuples(st.just("acc"), st.integers(0, 9)),
        st.tuples(st.just("rem"), st.integers(0, 9)),
        st.tuples(st.just("evict")),
    ),
    max_size=120,
)


def _check(policy: EvictionPolicy, model: dict[Hashable, int]) -> None:
    assert len(policy) == len(model)
    assert policy.used == sum(model.values())
    for key in range(10):
        assert (key in policy) == (key in model)


def _apply(policy: EvictionPolicy, op: tuple, model: dict[Hashable, int], now: int) -> None:
    kind, *args = op
    if kind == "evict":
        victim = policy.evict()
        if model:
            assert victim in model, f"victim {victim!r} was not resident"
            del model[victim]
        else:
            assert victim is None
        return
    key = args[0]
    if kind == "ins" and key not in model:
        policy.on_insert(key, args[1], now, next_use=now + 1 + key)
        model[key] = args[1]
    elif kind == "acc" and key in model:
        policy.on_access(key, now, next_use=now + 1 + key)
    elif kind == "rem" and key in model:
        policy.on_remove(key)
        del model[key]
    else:  # misuse: must raise and change nothing
        with pytest.raises(SimulationError):
            if kind == "ins":
                policy.on_insert(key, args[1], now, next_use=now)
            elif kind == "acc":
                policy.on_access(key, now, next_use=now)
            else:
                policy.on_remove(key)


@pytest.mark.parametrize("name", ALL)
@settings(max_examples=120, deadline=None)
@given(ops=ops_strategy)
def test_protocol_invariants(name: str, ops: list[tuple]) -> None:
    """len/used/contains track a model; evict returns a resident key, None only when empty."""
    policy = make_policy(name, CAPACITY)
    model: dict[Hashable, int] = {}
    for now, op in enumerate(ops):
        _apply(policy, op, model, now)
        _check(policy, model)
    while model:  # drain: every key comes out exactly once, then None
        victim = policy.evict()
        assert victim in model
        del model[victim]
        _check(policy, model)
    assert policy.evict() is None


@pytest.mark.parametrize("name", ALL)
@settings(max_examples=80, deadline=None)
@given(
    trace=st.lists(st.integers(0, 25), max_size=200),
    sizes=st.lists(st.integers(1, 7), min_size=26, max_size=26),
    capacity=st.integers(7, 20),
)
def test_never_over_capacity_with_variable_sizes(
    name: str, trace: list[int], sizes: list[int], capacity: int
) -> None:
    """The eviction loop always terminates (no livelock) and ``used`` stays <= capacity."""
    policy = make_policy(name, capacity)
    next_use = annotate_next_use(trace)
    for i, key in enumerate(trace):
        if key in policy:
            policy.on_access(key, i, next_use=next_use[i])
            continue
        for _ in range(len(policy) + 1):
            if policy.used + sizes[key] <= capacity:
                break
            before = len(policy)
            victim = policy.evict(key)
            assert victim is not None and victim not in policy and len(policy) == before - 1
        policy.on_insert(key, sizes[key], i, next_use=next_use[i])
        assert policy.used <= capacity


@settings(max_examples=150, deadline=None)
@given(trace=st.lists(st.integers(0, 15), max_size=250), capacity=st.integers(1, 10))
def test_belady_is_a_lower_bound(trace: list[int], capacity: int) -> None:
    next_use = annotate_next_use(trace)
    best = simulate_misses(create_policy("belady", capacity=capacity), trace, capacity, next_use)
    for name in filter(can_create, ALL):  # trained policies fitted on a fixed warm-up trace
        misses = simulate_misses(make_policy(name, capacity), trace, capacity)
        assert best <= misses, f"belady {best} > {name} {misses}"


def test_belady_refuses_without_annotations() -> None:
    policy = create_policy("belady", capacity=4)
    with pytest.raises(ConfigError, match="annotate_next_use"):
        policy.on_insert("a")
    assert len(policy) == 0 and policy.used == 0
    policy.on_insert("a", next_use=NEVER)
    with pytest.raises(ConfigError, match="annotate_next_use"):
        policy.on_access("a")


@given(trace=st.lists(st.integers(0, 6), max_size=60))
def test_annotate_next_use_matches_naive(trace: list[int]) -> None:
    want = [
        next((j for j in range(i + 1, len(trace)) if trace[j] == k), NEVER)
        for i, k in enumerate(trace)
    ]
    assert annotate_next_use(trace) == want


def test_annotate_next_use_example() -> None:
    assert annotate_next_use(["a", "b", "a", "c", "b"]) == [2, 4, NEVER, NEVER, NEVER]


@settings(max_examples=200, deadline=None)
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["ins", "acc", "pin", "unpin", "evict", "prio"]),
            st.integers(0, 7),
            st.integers(-2, 2),
        ),
        max_size=150,
    )
)
def test_pinned_keys_are_never_evicted(ops: list[tuple[str, int, int]]) -> None:
    policy = create_policy("priority", capacity=8)
    resident: set[int] = set()
    pinned: set[int] = set()
    prio: dict[int, int] = {}
    for now, (kind, key, arg) in enumerate(ops):
        if kind == "ins" and key not in resident:
            policy.on_insert(key, 1, now)
            resident.add(key)
            prio[key] = 0
        elif kind == "acc" and key in resident:
            policy.on_access(key, now)
        elif kind == "pin" and key in resident:
            policy.pin(key)  # type: ignore[attr-defined]
            pinned.add(key)
        elif kind == "unpin" and key in resident:
            policy.unpin(key)  # type: ignore[attr-defined]
            pinned.discard(key)
        elif kind == "prio" and key in resident:
            policy.set_priority(key, arg)  # type: ignore[attr-defined]
            prio[key] = arg
        elif kind == "evict":
            victim = policy.evict()
            if resident - pinned:
                assert victim in resident - pinned
                assert prio[victim] == min(prio[k] for k in resident - pinned)
                resident.discard(victim)
            else:
                assert victim is None
        assert len(policy) == len(resident)


@settings(max_examples=150, deadline=None)
@given(trace=st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 12)), max_size=200))
def test_tenant_evicts_from_the_tenant_most_over_quota(trace: list[tuple[str, int]]) -> None:
    quotas = {"a": 5, "b": 3, "c": 2}
    policy = create_policy("tenant", capacity=10, quotas=quotas)
    for now, key in enumerate(trace):
        if key in policy:
            policy.on_access(key, now)
            continue
        while policy.used >= 10:
            used = {
                t: (p.used if (p := policy.partition(t)) else 0)  # type: ignore[attr-defined]
                for t in quotas
            }
            over = {t: used[t] - quotas[t] for t in quotas if used[t] > 0}
            if key[0] in over:  # the incoming key counts for its tenant, which wins ties
                over[key[0]] += 1
            victim = policy.evict(key)
            assert isinstance(victim, tuple)
            assert over[victim[0]] == max(over.values())
        policy.on_insert(key, 1, now)
        assert policy.used <= 10


def test_tenant_within_quota_keeps_its_blocks() -> None:
    policy = create_policy("tenant", capacity=4, quotas={"a": 2, "b": 2})
    for i, key in enumerate([("a", 1), ("a", 2), ("b", 1), ("b", 2)]):
        policy.on_insert(key, 1, i)
    # b floods: every eviction must come from b, which is the one over quota after inserting
    for i in range(3, 20):
        assert policy.evict(("b", i)) == ("b", i - 2)
        policy.on_insert(("b", i), 1, i)
    assert ("a", 1) in policy and ("a", 2) in policy


def test_ttl_expiry() -> None:
    policy = create_policy("ttl", capacity=4, ttl=10.0)
    policy.on_insert("a", 1, 0.0)
    policy.on_insert("b", 2, 5.0)
    policy.on_access("a", 6.0)  # refresh: a now expires at 16
    assert policy.pop_expired(14.9) == []  # type: ignore[attr-defined]
    assert policy.pop_expired(15.0) == ["b"]  # type: ignore[attr-defined]
    assert policy.used == 1 and policy.pop_expired(100.0) == ["a"]  # type: ignore[attr-defined]


def test_lfu_large_key_does_not_livelock() -> None:
    """Making room for a key as large as the cache evicts everything, one key per call."""
    policy = create_policy("lfu", capacity=10)
    for i in range(10):
        policy.on_insert(i, 1, i)
        for _ in range(i):
            policy.on_access(i, i)
    evicted = []
    while policy.used + 10 > 10:
        evicted.append(policy.evict("big"))
    assert evicted == list(range(10))
    policy.on_insert("big", 10)
    assert policy.used == 10 and policy.frequency("big") == 1  # type: ignore[attr-defined]


def test_unknown_policy_lists_known_ones() -> None:
    with pytest.raises(ConfigError) as err:
        create_policy("x")
    assert err.value.path == "policy"
    assert "unknown policy 'x'; known: " in str(err.value)
    for name in ALL:
        assert name in str(err.value)


def test_bad_parameter_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="allowed: capacity"):
        create_policy("lru", capacity=4, nonsense=1)


@pytest.mark.parametrize("name", ["arc", "2q", "s3fifo", "tenant", "learned"])
def test_capacity_required(name: str) -> None:
    with pytest.raises(ConfigError, match="capacity"):
        create_policy(name)


def test_register_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):

        @register_eviction("lru")
        class Other(EvictionPolicy):  # pragma: no cover - never instantiated
            pass


def test_ghost_and_heap_memory_is_bounded() -> None:
    """Ghost lists, retained history and lazy heaps stay within a multiple of capacity."""
    cap = 50
    trace = [(i * 7919) % 3000 for i in range(20_000)] + list(range(5000, 9000))
    policies = {n: create_policy(n, capacity=cap) for n in ("arc", "2q", "s3fifo", "lru-k")}
    policies["belady"] = create_policy("belady", capacity=cap)
    for policy in policies.values():
        simulate_misses(policy, trace, cap)
    t1, t2, b1, b2 = policies["arc"].lists()  # type: ignore[attr-defined]
    assert len(t1) + len(b1) <= cap and len(t1) + len(t2) + len(b1) + len(b2) <= 2 * cap
    assert len(policies["2q"]._a1out) <= policies["2q"].kout  # type: ignore[attr-defined]
    assert len(policies["s3fifo"]._ghost) <= 45  # type: ignore[attr-defined]
    lruk = policies["lru-k"]
    assert len(lruk._retired) <= cap and len(lruk._heap) <= 2 * cap + 64  # type: ignore[attr-defined]
    assert len(policies["belady"]._heap) <= 2 * cap + 64  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ALL)
@settings(max_examples=30, deadline=None)
@given(trace=st.lists(st.integers(0, 15), max_size=120), data=st.data())
def test_simulate_split_adds_up(name: str, trace: list[int], data: st.DataObject) -> None:
    """Warm-up + evaluation misses = the whole replay's misses, for every policy; untrained
    policies report no fit or prediction metrics."""
    if not can_create(name):
        pytest.skip(f"{name!r} needs lightgbm")
    cap = 4
    warmup = data.draw(st.integers(1 if name == "learned" else 0, max(len(trace), 1)))
    if warmup > len(trace):
        return
    res = simulate_split(create_policy(name, capacity=cap), trace, cap, warmup)
    again = make_policy(name, cap, fit_trace=trace[:warmup])
    assert res.warmup_misses + res.eval_misses == simulate_misses(again, trace, cap)
    assert (res.num_warmup, res.num_eval) == (warmup, len(trace) - warmup)
    assert res.warmup_misses <= warmup and res.eval_misses <= len(trace) - warmup
    if not policy_class(name).needs_training:
        assert res.fit_metrics == {} and res.prediction_metrics == {}


def test_simulate_split_hand_example() -> None:
    """LRU, capacity 2, A B A C B | B A: warm-up misses A B C B = 4 (A hits at 2; C evicts
    B, B evicts A); evaluation: B hits, A misses -> 1."""
    res = simulate_split(create_policy("lru", capacity=2), list("ABACBBA"), 2, 5)
    assert (res.warmup_misses, res.eval_misses) == (4, 1)
    assert res.warmup_hit_ratio == pytest.approx(0.2) and res.eval_hit_ratio == 0.5
    with pytest.raises(ConfigError, match="warmup"):
        simulate_split(create_policy("lru", capacity=2), list("AB"), 2, 3)
