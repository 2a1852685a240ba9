"""The agentic session traces (kv-cache-tester) through the cache driver (skipped if absent)."""

from __future__ import annotations

import pytest

from helpers import SHARED_DATA
from kvsim.cache import load_cache_config, run_cache

AGENTIC = SHARED_DATA / "agentic"
pytestmark = pytest.mark.skipif(
    not AGENTIC.is_dir(), reason=f"real traces not available ({AGENTIC} is absent)"
)


def test_agentic_preset_replays_with_session_prefetch() -> None:
    cfg = load_cache_config(
        preset="agentic",
        overrides=[
            "workload.limit=300",
            "outputs.plots=false",
            "prefetch={kind: session, lookahead_s: 5}",
        ],
    )
    res = run_cache(cfg)
    s = res.summary
    assert s["block_size"] == 64
    assert s["num_requests_total"] == 300
    assert 0.0 < s["hit_ratio_blocks"] < 1.0
    assert res.table["session_id"].min() >= 0  # every request belongs to a conversation
    # each session stays on one worker (session affinity)
    assert (res.table.groupby("session_id")["worker"].nunique() == 1).all()
    assert s["prefetch_issued"] > 0
    assert s["prefetch_used"] > 0
