"""Hypothesis: driver-level invariants and a differential check against a tiny reference."""

from __future__ import annotations

from cache_helpers import toy_cache_config
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import make_request
from kvsim.cache import run_cache

# requests: prefix-chained hashes built from small "paths" (a tuple of choices -> its prefixes)
paths = st.lists(
    st.tuples(st.lists(st.integers(0, 2), min_size=0, max_size=5), st.integers(0, 999)),
    min_size=1,
    max_size=25,
)


def to_requests(items: list) -> list:
    """One request per item, after a first request with one block (a trace needs one)."""
    reqs = []
    for i, (path, extra) in enumerate([([0], 0), *items]):
        hashes = [hash(tuple(path[: j + 1])) & (2**62 - 1) for j in range(len(path))]
        reqs.append(
            make_request(i, float(i), 1000 * len(path) + extra + 1, 5, hashes, 1000, session=i % 3)
        )
    return reqs


def reference_hits(reqs: list) -> list[int]:
    """Unbounded cache, prefix semantics: hit until the first never-seen block."""
    seen: set[int] = set()
    out = []
    for r in reqs:
        n = 0
        for h in r.block_hashes:
            if h not in seen:
                break
            n += 1
        out.append(n)
        seen.update(r.block_hashes)
    return out


@settings(max_examples=60, deadline=None)
@given(paths)
def test_unbounded_single_worker_matches_the_reference(items: list) -> None:
    reqs = to_requests(items)
    res = run_cache(toy_cache_config(), requests=reqs)
    assert res.table["hit_blocks"].tolist() == reference_hits(reqs)


@settings(max_examples=40, deadline=None)
@given(
    paths,
    st.integers(1, 3),
    st.sampled_from(["prefix_aware", "round_robin", "session_affinity"]),
    st.sampled_from(["exclusive", "inclusive"]),
    st.sampled_from(["lru", "arc", "belady", "s3fifo"]),
    st.booleans(),
)
def test_summary_invariants(
    items: list, workers: int, router: str, stacking: str, policy: str, prefetch: bool
) -> None:
    reqs = to_requests(items)
    cfg = toy_cache_config(
        workers=workers,
        router=router,
        stacking=stacking,
        tiers=[
            {"name": "hbm", "capacity": 2, "policy": policy},
            {"name": "dram", "capacity": 3, "policy": policy},
            {"name": "ssd", "capacity": 4, "policy": policy},
        ],
        prefetch={"kind": "session" if prefetch else "none", "lookahead_s": 0.5},
    )
    res = run_cache(cfg, requests=reqs)
    s, t = res.summary, res.table
    per_tier = t["hit_blocks_hbm"] + t["hit_blocks_dram"] + t["hit_blocks_ssd"]
    assert (per_tier == t["hit_blocks"]).all()
    assert (t["hit_blocks"] <= t["num_blocks"]).all()
    assert sum(s[f"hits_{n}"] for n in ("hbm", "dram", "ssd")) == s["hit_blocks"]
    assert s["num_block_accesses"] == sum(len(r.block_hashes) for r in reqs)
    # never better than an unbounded cache on one worker
    assert s["hit_blocks"] <= sum(reference_hits(reqs))
    assert (t["ttft_ms"] <= t["ttft_nocache_ms"] + t["load_ms"] + 1e-9).all()
    assert s["prefetch_used"] + s["prefetch_wasted"] <= s["prefetch_issued"]
    for _, row in res.timeseries.iterrows():
        for n in ("hbm", "dram", "ssd"):
            assert row[f"used_blocks_{n}"] <= row[f"capacity_blocks_{n}"]
