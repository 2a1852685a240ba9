"""Each router's choice on a constructed state (issue 5 checks)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest

from helpers import make_request
from kvsim.errors import ConfigError
from kvsim.serving.routing import create_router, router_names
from kvsim.serving.routing.base import DRAW_BLOCK
from kvsim.serving.seq import Seq


@dataclass
class FakeInstance:
    index: int
    num_load: int = 0
    decode_speed: float = 1.0
    free: int = 0
    cached: Sequence[int] = ()
    calls: list[str] = field(default_factory=list)

    def load(self) -> int:
        return self.num_load

    def free_blocks_at(self, now: float) -> int:
        return self.free

    def cached_prefix_blocks(self, hashes: Sequence[int], now: float) -> int:
        self.calls.append("prefix")
        n = 0
        for a, b in zip(hashes, self.cached, strict=False):
            if a != b:
                break
            n += 1
        return n


def seq(rid: int = 0, hashes: Sequence[int] = (), session: int = -1) -> Seq:
    return Seq.from_request(make_request(rid, 0.0, 64, 4, session=session), list(hashes))


def router(name: str, seed: int = 0, **params: float):  # type: ignore[no-untyped-def]
    return create_router(name, params, np.random.default_rng(seed))


def test_registry_lists_every_router() -> None:
    assert router_names() == sorted(
        ["round_robin", "random", "least_loaded", "p2c", "least_kv", "prefix_aware",
         "session_affinity", "cluster_p2c", "power_of_d"]
    )  # fmt: skip


def test_round_robin_cycles() -> None:
    insts = [FakeInstance(i) for i in range(3)]
    r = router("round_robin")
    assert [r.choose(seq(), insts, 0.0).index for _ in range(7)] == [0, 1, 2, 0, 1, 2, 0]


def test_random_uses_the_seeded_generator() -> None:
    insts = [FakeInstance(i) for i in range(5)]
    r = router("random", seed=42)
    picks = [r.choose(seq(), insts, 0.0).index for _ in range(20)]
    u = np.random.default_rng(42).random(DRAW_BLOCK)
    assert picks == [int(x * 5) for x in u[:20]]


def test_least_loaded_normalises_by_decode_speed() -> None:
    insts = [FakeInstance(0, 4, 1.0), FakeInstance(1, 6, 2.0), FakeInstance(2, 3, 1.0)]
    # scores 4, 3, 3: the first of the two lowest wins
    assert router("least_loaded").choose(seq(), insts, 0.0).index == 1
    insts[2].num_load = 2
    assert router("least_loaded").choose(seq(), insts, 0.0).index == 2


def test_p2c_picks_the_better_of_two_seeded_candidates() -> None:
    loads = [5, 1, 7, 3, 2, 9]
    insts = [FakeInstance(i, load) for i, load in enumerate(loads)]
    r = router("p2c", seed=7)
    u = iter(np.random.default_rng(7).random(DRAW_BLOCK))
    for _ in range(50):
        a = int(next(u) * 6)
        b = int(next(u) * 5)
        b += b >= a
        want = b if loads[b] < loads[a] else a
        assert r.choose(seq(), insts, 0.0).index == want


def test_draws_continue_across_blocks() -> None:
    insts = [FakeInstance(i) for i in range(3)]
    r = router("random", seed=5)
    picks = [r.choose(seq(), insts, 0.0).index for _ in range(DRAW_BLOCK + 10)]
    ref = np.random.default_rng(5)
    u = np.concatenate([ref.random(DRAW_BLOCK), ref.random(DRAW_BLOCK)])
    assert picks == [int(x * 3) for x in u[: DRAW_BLOCK + 10]]


def test_p2c_never_picks_the_worst_of_two() -> None:
    insts = [FakeInstance(0, 10), FakeInstance(1, 0)]
    r = router("p2c", seed=3)
    assert {r.choose(seq(), insts, 0.0).index for _ in range(20)} == {1}


def test_least_kv_picks_most_free_blocks() -> None:
    insts = [FakeInstance(0, free=10), FakeInstance(1, free=30), FakeInstance(2, free=30)]
    assert router("least_kv").choose(seq(), insts, 0.0).index == 1


def test_prefix_aware_picks_the_longest_prefix_unless_overloaded() -> None:
    hashes = [1, 2, 3, 4, 5, 6]
    insts = [
        FakeInstance(0, num_load=0, cached=[9]),
        FakeInstance(1, num_load=2, cached=[1, 2, 3, 4, 5]),
        FakeInstance(2, num_load=1, cached=[1, 2]),
    ]
    # scores with load_penalty 1: 0, 5 - 2 = 3, 2 - 1 = 1
    assert router("prefix_aware").choose(seq(hashes=hashes), insts, 0.0).index == 1
    insts[1].num_load = 10  # overloaded: 5 - 10 < 1
    assert router("prefix_aware").choose(seq(hashes=hashes), insts, 0.0).index == 2
    # a larger penalty makes load dominate
    insts[1].num_load = 2
    assert (
        router("prefix_aware", load_penalty=5.0).choose(seq(hashes=hashes), insts, 0.0).index == 0
    )


def test_session_affinity_is_sticky_and_falls_back_to_least_loaded() -> None:
    insts = [FakeInstance(0, 3), FakeInstance(1, 1), FakeInstance(2, 2)]
    r = router("session_affinity")
    assert r.choose(seq(0, session=7), insts, 0.0).index == 1
    insts[1].num_load = 9
    assert r.choose(seq(1, session=7), insts, 0.0).index == 1  # sticky
    assert r.choose(seq(2, session=8), insts, 0.0).index == 2  # new session: least loaded
    assert r.choose(seq(3), insts, 0.0).index == 2  # no session
    # a retry without the sticky instance falls back and re-pins the session
    assert r.choose(seq(4, session=7), [insts[0], insts[2]], 0.0).index == 2
    assert r.choose(seq(5, session=7), insts, 0.0).index == 2


@pytest.mark.parametrize("name", router_names())
def test_every_router_returns_a_candidate(name: str) -> None:
    insts = [FakeInstance(i, num_load=i % 3, free=10 - i) for i in range(5)]
    r = router(name, seed=1)
    for k in range(30):
        cands = insts[k % 3 :]
        assert r.choose(seq(k, hashes=[1, 2], session=k % 4), cands, 0.0) in cands


def test_unknown_router_param_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"cluster\.router_params\.bogus.*load_penalty"):
        router("prefix_aware", bogus=1.0)
    with pytest.raises(ConfigError, match=r"cluster\.router"):
        router("nope")
