"""The ``learned`` policy: registry and optional dependency, fit / evaluate split, features
against a brute-force reference, determinism, and a margin over LRU where reuse is
predictable from frequency."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_refs import run_hits

from kvsim.errors import ConfigError, SimulationError
from kvsim.kv.policies import (
    NEVER,
    annotate_next_use,
    create_policy,
    policy_class,
    policy_names,
    simulate_misses,
    simulate_split,
)
from kvsim.kv.policies.learned import unpack_features
from kvsim.kv.policies.learned_model import ReusePredictor, auc_from_counts, lbin


def scan_hot(num_accesses: int, hot: int = 200, p_hot: float = 0.5, seed: int = 1) -> list[int]:
    """Each access is a uniform key of a hot set ``0..hot-1`` with probability ``p_hot``,
    else the next key of a one-time scan (``10**6, 10**6 + 1, ...``, never reused)."""
    rng = np.random.default_rng(seed)
    coins = rng.random(num_accesses)
    picks = rng.integers(hot, size=num_accesses)
    out, scan = [], 10**6
    for coin, pick in zip(coins, picks, strict=True):
        if coin < p_hot:
            out.append(int(pick))
        else:
            out.append(scan)
            scan += 1
    return out


def test_registered_and_needs_training() -> None:
    assert "learned" in policy_names()
    cls = policy_class("learned")
    assert cls.needs_training and not cls.needs_next_use
    assert not policy_class("lru").needs_training
    assert create_policy("lru", capacity=2).fit([1, 2], [0.0, 1.0]) == {}  # default: no-op


def test_missing_lightgbm_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lightgbm", None)  # makes `import lightgbm` fail
    with pytest.raises(ConfigError, match=r"pip install 'kvsim\[learned\]'"):
        create_policy("learned", capacity=10)


pytest.importorskip("lightgbm")


def _fit(trace: list[int], capacity: int, warmup: int, **params: object) -> object:
    policy = create_policy("learned", capacity=capacity, **params)
    policy.fit(trace[:warmup], [float(i) for i in range(warmup)])
    return policy


def test_use_before_fit_is_refused() -> None:
    policy = create_policy("learned", capacity=4)
    with pytest.raises(SimulationError, match=r"policy.fit\(warmup_keys, warmup_times\)"):
        policy.on_insert("a")
    assert len(policy) == 0 and policy.used == 0


@pytest.mark.parametrize(
    ("keys", "times", "match"),
    [
        ([], [], "warm-up fraction > 0"),
        ([1, 2], [0.0], "2 keys but 1 times"),
        ([1, 2], [1.0, 0.5], "must not decrease"),
    ],
)
def test_fit_rejects_bad_input(keys: list[int], times: list[float], match: str) -> None:
    with pytest.raises(ConfigError, match=match) as err:
        create_policy("learned", capacity=4).fit(keys, times)
    assert err.value.path == "warmup"


def test_beats_lru_when_reuse_is_predictable_from_frequency() -> None:
    """Scan + hot set, cache smaller than the hot set: LRU lets the scan flush hot keys; a
    predictor that learns "seen before => reused" keeps the hot set. Evaluated split only."""
    trace, cap = scan_hot(40_000), 150
    warmup = len(trace) // 4
    learned = simulate_split(create_policy("learned", capacity=cap), trace, cap, warmup)
    lru = simulate_split(create_policy("lru", capacity=cap), trace, cap, warmup)
    assert learned.num_eval == lru.num_eval == 30_000
    assert learned.eval_misses <= 0.85 * lru.eval_misses, (learned, lru)
    # reference points: the ideal keeps 150 of the 200 hot keys -> hot hit ratio 0.75
    assert learned.eval_hit_ratio >= 0.9 * (0.5 * 0.75)
    assert learned.fit_metrics["train_auc"] > 0.7
    assert learned.prediction_metrics["eval_auc"] > 0.7
    assert lru.fit_metrics == {} and lru.prediction_metrics == {}


@pytest.mark.parametrize("history_ratio", [0.0, 0.5, 2.0])
def test_fit_and_prediction_metrics_match_a_reference(history_ratio: float) -> None:
    """Sample counts and positive rates equal a direct count over next-use annotations,
    however short the ghost history (keys whose history is dropped keep their pending
    prediction)."""
    trace, cap = scan_hot(6000, hot=60, seed=3), 40
    warmup, h = 2000, 40
    policy = create_policy("learned", capacity=cap, history_ratio=history_ratio)
    result = simulate_split(policy, trace, cap, warmup)
    nu = annotate_next_use(trace[:warmup])
    train = [i for i in range(warmup) if nu[i] - i <= h or i + h < warmup]
    fit = result.fit_metrics
    assert fit["num_train_accesses"] == warmup and fit["horizon"] == h
    assert fit["num_train_samples"] == len(train)
    assert fit["train_positive_rate"] == pytest.approx(
        sum(nu[i] - i <= h for i in train) / len(train)
    )
    n = len(trace)
    nu = annotate_next_use(trace)
    known = [i for i in range(warmup, n) if nu[i] - i <= h or i + h < n - 1]
    pred = result.prediction_metrics
    assert pred["num_eval_samples"] == len(known)
    assert pred["eval_positive_rate"] == pytest.approx(
        sum(nu[i] - i <= h for i in known) / len(known)
    )
    assert 0.5 < pred["eval_auc"] <= 1.0 and 0.0 < pred["eval_accuracy"] <= 1.0


def test_deterministic() -> None:
    """Two independent fits on the same split give the same hits, access by access."""
    trace, cap = scan_hot(8000, seed=5), 100
    runs = [run_hits(_fit(trace, cap, 2000), trace, cap) for _ in range(2)]  # type: ignore[arg-type]
    assert runs[0] == runs[1]
    assert sum(runs[0]) > 0
    a = simulate_split(create_policy("learned", capacity=cap), trace, cap, 2000)
    b = simulate_split(create_policy("learned", capacity=cap), trace, cap, 2000)
    assert a == b


def test_refit_resets_the_replay_state() -> None:
    trace, cap = scan_hot(3000, seed=7), 50
    policy = create_policy("learned", capacity=cap)
    first = simulate_split(policy, trace, cap, 1000)
    assert len(policy) == cap
    again = simulate_split(policy, trace, cap, 1000)  # fit empties the cache and its history
    assert again == first


def test_single_class_split_gives_a_constant_model() -> None:
    """No key is ever reused: one label class, constant score, ties in LRU order."""
    trace = list(range(500))
    policy = create_policy("learned", capacity=10)
    fit = policy.fit(trace[:100], [float(i) for i in range(100)])
    assert fit["constant_model"] == 1.0 and fit["train_positive_rate"] == 0.0
    assert run_hits(policy, trace, 10) == [False] * 500
    assert policy.prediction_metrics()["eval_auc"] == 0.5  # one class: no ranking to judge


def _brute_features(trace: list[int], i: int) -> tuple[int, int, int]:
    prev = [j for j in range(i) if trace[j] == trace[i]]
    if not prev:
        return (-1, 0, -1)
    gap = lbin((prev[-1] - prev[0]) // (len(prev) - 1)) if len(prev) >= 2 else -1
    return (lbin(i - prev[-1]), lbin(len(prev)), gap)


@settings(max_examples=60, deadline=None)
@given(trace=st.lists(st.integers(0, 8), max_size=80))
def test_offline_features_match_brute_force(trace: list[int]) -> None:
    model = ReusePredictor(horizon=5, params={}, num_trees=1)
    feats = model.offline_features(trace, history_cap=100, depth_of=None)
    assert [f[:3] for f in feats] == [_brute_features(trace, i) for i in range(len(trace))]
    assert all(f[3] == -1 for f in feats)


def test_lbin_and_auc() -> None:
    assert [lbin(x) for x in (0, 1, 2, 3, 7, 1_000_000)] == [0, 2, 3, 4, 6, 40]
    assert auc_from_counts([(0.1, 0, 5), (0.9, 5, 0)]) == 1.0
    assert auc_from_counts([(0.5, 3, 3)]) == 0.5
    assert auc_from_counts([(0.1, 1, 1), (0.9, 1, 0)]) == 0.75


def test_depth_hint_is_a_feature() -> None:
    """With a depth function that separates hot (depth 0) from scan keys (depth 9), even
    first accesses are told apart; predictions differ by depth alone."""
    trace, cap = scan_hot(8000, seed=9), 100
    depth = {True: 0, False: 9}
    policy = _fit(trace, cap, 2000, depth_of=lambda k: depth[k < 10**6])
    model = policy._model  # type: ignore[attr-defined]
    assert model.predict((-1, 0, -1, lbin(0))) > model.predict((-1, 0, -1, lbin(9)))
    assert simulate_misses(policy, trace, cap) > 0  # type: ignore[arg-type]


def test_structures_stay_bounded() -> None:
    trace, cap = scan_hot(20_000, seed=11), 100
    policy = _fit(trace, cap, 5000, history_ratio=1.0)
    simulate_misses(policy, trace, cap)  # type: ignore[arg-type]
    assert len(policy) == cap  # type: ignore[arg-type]
    buckets = policy._buckets  # type: ignore[attr-defined]
    assert sum(map(len, buckets)) == len(policy._res) == cap  # type: ignore[attr-defined]
    assert all(not b for b in buckets[: policy._low])  # type: ignore[attr-defined]
    assert len(policy._ghost) <= cap  # type: ignore[attr-defined]
    assert len(policy._orphans) <= 2 * (policy.horizon + 1) + 64  # type: ignore[attr-defined]


def test_stale_keys_expire_after_a_phase_change() -> None:
    """Phase 1's hot set (keys 0..9, high scores) stops being used in phase 2: with expiry it
    leaves the cache; without (expire_after huge) it squats and phase 2 misses more."""
    phase1 = scan_hot(4000, hot=10, seed=15)
    phase2 = [k + 500 if k < 10**6 else k + 10**7 for k in scan_hot(4000, hot=10, seed=16)]
    trace, cap = phase1 + phase2, 15
    hits = {}
    for expire in (100, 10**9):
        policy = _fit(trace, cap, 2000, expire_after=expire)
        hits[expire] = run_hits(policy, trace, cap)  # type: ignore[arg-type]
        old = sum(k in policy for k in range(10))  # type: ignore[operator]
        assert (old == 0) if expire == 100 else (old >= 5), (expire, old)
    assert sum(hits[100][4000:]) > sum(hits[10**9][4000:]) + 300  # 1906 vs 1475 here


def test_next_use_is_ignored() -> None:
    """The policy never looks at next_use (it is not an oracle)."""
    trace, cap = scan_hot(3000, seed=13), 50
    a = _fit(trace, cap, 1000)
    b = _fit(trace, cap, 1000)
    nu = annotate_next_use(trace)
    assert simulate_misses(a, trace, cap) == simulate_misses(b, trace, cap, [NEVER] * len(nu))  # type: ignore[arg-type]


def test_compiled_trees_match_lightgbm() -> None:
    """The Python tree walk gives LightGBM's own predictions on every training row."""
    trace, cap = scan_hot(6000, hot=80, seed=17), 60
    policy = _fit(trace, cap, 6000)
    model = policy._model  # type: ignore[attr-defined]
    feats = sorted(set(model.offline_features(trace, 2 * cap, None)))
    assert model.booster is not None and len(feats) > 50
    want = model.booster.predict(np.array(feats, dtype=np.float64))
    got = [model.predict(f) for f in feats]
    assert got == pytest.approx(want.tolist(), abs=1e-12)


class _RecordingDict(dict):  # type: ignore[type-arg]
    def __init__(self, log: list[int]) -> None:
        super().__init__()
        self.log = log

    def get(self, key: object, default: object = None) -> object:
        self.log.append(key)  # type: ignore[arg-type]
        return None  # force a (re)computation so every access is logged


@settings(max_examples=40, deadline=None)
@given(trace=st.lists(st.integers(0, 8), max_size=80))
def test_online_features_match_brute_force(trace: list[int]) -> None:
    """Without evictions the policy's own features equal the full-history ones (and so the
    offline training features: no train/serve skew)."""
    policy = _fit(DEFAULT_FIT, 20, len(DEFAULT_FIT))
    log: list[int] = []
    policy._scored = _RecordingDict(log)  # type: ignore[attr-defined]
    run_hits(policy, trace, 20)  # type: ignore[arg-type]
    feats = [unpack_features(k << 21) for k in log]  # type: ignore[operator]
    assert [f[:3] for f in feats] == [_brute_features(trace, i) for i in range(len(trace))]
    assert all(f[3] == -1 for f in feats)


DEFAULT_FIT = scan_hot(400, hot=10, seed=19)


@given(
    rec=st.integers(0, 126),
    count=st.integers(1, 126),
    gap=st.integers(-1, 125),
    depth=st.integers(-1, 125),
)
def test_unpack_features_inverts_the_packing(rec: int, count: int, gap: int, depth: int) -> None:
    packed = (((rec << 14) | (count << 7) | (gap + 1)) << 21) | (depth + 1)
    assert unpack_features(packed) == (rec, count, gap, depth)
    assert unpack_features(depth + 1) == (-1, 0, -1, depth)  # never seen
