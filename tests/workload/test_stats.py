"""trace_stats: exact values on tiny request lists."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kvsim.config.workload import SessionSpec, SyntheticWorkload
from kvsim.workload.request import Request
from kvsim.workload.stats import trace_stats
from kvsim.workload.synthetic import generate


def make(rid: int, t: float, p: int, o: int, hashes: tuple[int, ...] = (), s: int = -1) -> Request:
    return Request(
        request_id=rid,
        arrival_s=t,
        prompt_tokens=p,
        output_tokens=o,
        session_id=s,
        block_hashes=hashes,
        hash_block_size=4,
    )


EXPECTED_KEYS = {
    "count",
    "duration_s",
    "rate_per_s",
    *(f"{f}_{s}" for f in ("prompt_tokens", "output_tokens") for s in ("p50", "p90", "p99")),
    *(f"{f}_{s}" for f in ("prompt_tokens", "output_tokens") for s in ("mean", "max")),
    "num_sessions",
    "num_prompt_blocks",
    "prefix_reuse_fraction",
    "num_hashed_requests",
    "hash_block_size",
}


def test_exact_values() -> None:
    reqs = [
        make(0, 1.0, 8, 1, (10, 11), s=0),
        make(1, 3.0, 12, 3, (10, 11, 12), s=0),
        make(2, 5.0, 4, 5, (20,), s=7),
        make(3, 9.0, 16, 7),
    ]
    stats = trace_stats(reqs)
    assert stats == pytest.approx(
        {
            "count": 4,
            "duration_s": 8.0,
            "rate_per_s": 0.5,
            "prompt_tokens_p50": 10.0,
            "prompt_tokens_p90": 14.8,
            "prompt_tokens_p99": 15.88,
            "prompt_tokens_mean": 10.0,
            "prompt_tokens_max": 16,
            "output_tokens_p50": 4.0,
            "output_tokens_p90": 6.4,
            "output_tokens_p99": 6.94,
            "output_tokens_mean": 4.0,
            "output_tokens_max": 7,
            "num_sessions": 2,
            "num_prompt_blocks": 6,
            "prefix_reuse_fraction": 2 / 6,
            "num_hashed_requests": 3,
            "hash_block_size": 4,
        },
        rel=1e-12,
    )
    assert stats.keys() == EXPECTED_KEYS
    assert isinstance(stats["count"], int) and isinstance(stats["prompt_tokens_max"], int)
    assert all(isinstance(v, int | float) for v in stats.values())
    json.dumps(stats)  # plain numbers only


def test_empty_and_single() -> None:
    empty = trace_stats([])
    assert empty["count"] == 0 and empty["duration_s"] == 0.0 and empty["rate_per_s"] == 0.0
    assert empty["prompt_tokens_max"] == 0 and empty["hash_block_size"] == 0
    one = trace_stats([make(0, 2.0, 5, 5)])
    assert one["count"] == 1 and one["duration_s"] == 0.0 and one["rate_per_s"] == 0.0
    assert one["prompt_tokens_p99"] == 5.0 and one["prefix_reuse_fraction"] == 0.0


def test_sessions_counted_on_synthetic() -> None:
    cfg = SyntheticWorkload(num_requests=200, sessions=SessionSpec())
    reqs = generate(cfg, np.random.default_rng(0))
    stats = trace_stats(reqs)
    assert stats["num_sessions"] == len({r.session_id for r in reqs})
    assert stats["prefix_reuse_fraction"] > 0.3  # later turns re-send the conversation
    assert stats["hash_block_size"] == 16
