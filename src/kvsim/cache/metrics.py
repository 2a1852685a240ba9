"""Summary maths of one cache replay: hit ratios, TTFT statistics, counters per split.

Definitions (also in docs/cache.md):

* **block hit ratio** = hit blocks / looked-up blocks, summed over the split's requests
  (global, block-weighted). Only *full* blocks are looked up: a prompt of ``P`` tokens has
  ``floor(P / block_size)`` of them.
* **token hit ratio** = hit tokens / prompt tokens, summed over the split, with
  ``hit tokens = hit blocks * block_size``. The trailing partial block of a prompt
  (``P - floor(P / bs) * bs`` tokens) is in the denominator and never hits (only full blocks
  carry a hash), so a partial block counts exactly its real tokens.
* **per-request hit ratios** (each request weighs the same, whatever its length):
  ``hit_ratio_request_mean`` = mean of ``hit blocks / blocks`` over requests with at least
  one full block; ``hit_ratio_tokens_request_mean`` = mean of ``hit tokens / prompt tokens``
  over all requests.
* ``*_<tier>`` ratios count the hits served by that tier; they sum to the overall ratio.
* ``ttft_saving_ms`` = mean(TTFT without cache - TTFT with it) over the split.

The *evaluated* split excludes the first ``warmup_fraction`` of requests (by arrival);
``warmup_*`` keys describe the warm-up split. Counters (evictions, promotions, ...) of the
evaluated split are the final values minus those at the end of the warm-up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["rack_summary", "split_summary", "summarize"]


def _ratio(num: float, den: float) -> float | None:
    return float(num) / float(den) if den else None


def _pct(values: np.ndarray, q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def split_summary(df: pd.DataFrame, tier_names: Sequence[str], block_size: int) -> dict[str, Any]:
    """Hit ratios and TTFT figures of the requests in ``df`` (one split)."""
    blocks = int(df["num_blocks"].sum()) if len(df) else 0
    tokens = int(df["prompt_tokens"].sum()) if len(df) else 0
    hit = int(df["hit_blocks"].sum()) if len(df) else 0
    out: dict[str, Any] = {
        "num_requests": len(df),
        "num_block_accesses": blocks,
        "num_prompt_tokens": tokens,
        "hit_blocks": hit,
        "hit_ratio_blocks": _ratio(hit, blocks),
        "hit_ratio_tokens": _ratio(hit * block_size, tokens),
    }
    with_blocks = df[df["num_blocks"] > 0] if len(df) else df
    out["hit_ratio_request_mean"] = (
        float((with_blocks["hit_blocks"] / with_blocks["num_blocks"]).mean())
        if len(with_blocks)
        else None
    )
    out["hit_ratio_tokens_request_mean"] = (
        float((df["hit_tokens"] / df["prompt_tokens"]).mean()) if len(df) else None
    )
    for name in tier_names:
        h = int(df[f"hit_blocks_{name}"].sum()) if len(df) else 0
        out[f"hit_ratio_blocks_{name}"] = _ratio(h, blocks)
        out[f"hit_ratio_tokens_{name}"] = _ratio(h * block_size, tokens)
    ttft = df["ttft_ms"].to_numpy(dtype=float) if len(df) else np.zeros(0)
    base = df["ttft_nocache_ms"].to_numpy(dtype=float) if len(df) else np.zeros(0)
    out["mean_ttft_ms"] = float(ttft.mean()) if len(ttft) else None
    out["p50_ttft_ms"] = _pct(ttft, 50)
    out["p99_ttft_ms"] = _pct(ttft, 99)
    out["mean_ttft_nocache_ms"] = float(base.mean()) if len(base) else None
    out["ttft_saving_ms"] = float((base - ttft).mean()) if len(ttft) else None
    out["ttft_saving_ratio"] = _ratio(float((base - ttft).sum()), float(base.sum()))
    out["mean_load_ms"] = float(df["load_ms"].mean()) if len(df) else None
    return out


_HEADLINE_COUNTERS = (
    ("evictions", "evictions"),
    ("promotions", "promotions"),
    ("demotions", "demotions"),
    ("prefetches", "prefetches"),
)


def summarize(
    requests: pd.DataFrame,
    tier_names: Sequence[str],
    block_size: int,
    warmup_counters: Mapping[str, float],
    final_counters: Mapping[str, float],
    pending_prefetches: int,
) -> dict[str, Any]:
    """The flat summary of one replay (evaluated split first, then ``warmup_*`` keys)."""
    is_warm = requests["warmup"].to_numpy(dtype=bool) if len(requests) else np.zeros(0, bool)
    ev = split_summary(requests[~is_warm], tier_names, block_size)
    wu = split_summary(requests[is_warm], tier_names, block_size)
    out: dict[str, Any] = dict(ev)
    delta = {k: final_counters[k] - warmup_counters.get(k, 0) for k in final_counters}
    for key, label in _HEADLINE_COUNTERS:
        out[label] = int(sum(delta[f"{key}_{name}"] for name in tier_names))
    out["prefetch_issued"] = int(delta["num_prefetch_issued"])
    out["prefetch_used"] = int(delta["num_prefetch_used"])
    out["prefetch_wasted"] = int(delta["num_prefetch_wasted"])
    out["prefetch_pending_at_end"] = pending_prefetches
    out["blocks_dropped"] = int(delta["num_dropped"])
    for name in tier_names:
        for key in ("hits", "inserts", "evictions", "promotions", "demotions", "prefetches"):
            out[f"{key}_{name}"] = int(delta[f"{key}_{name}"])
        out[f"bytes_read_{name}"] = float(delta[f"bytes_read_{name}"])
        out[f"bytes_written_{name}"] = float(delta[f"bytes_written_{name}"])
        out[f"write_time_s_{name}"] = float(delta[f"write_time_s_{name}"])
    for key in (
        "num_requests",
        "num_block_accesses",
        "hit_ratio_blocks",
        "hit_ratio_tokens",
        "hit_ratio_request_mean",
        "hit_ratio_tokens_request_mean",
        "mean_ttft_ms",
        "ttft_saving_ms",
    ):
        out[f"warmup_{key}"] = wu[key]
    return out


def _skew(counts: np.ndarray) -> float | None:
    """max / mean of ``counts`` (1.0 = perfectly even); None if nothing was counted."""
    mean = float(counts.mean()) if len(counts) else 0.0
    return float(counts.max()) / mean if mean > 0 else None


def rack_summary(
    requests: pd.DataFrame, num_workers: int, workers_per_rack: int, remote: bool
) -> dict[str, Any]:
    """Load skew of the evaluated split: requests per worker and per rack (rack = worker //
    ``workers_per_rack``), as max / mean; and, with cross-rack pools (``remote``), the share
    of looked-up blocks read from another rack's pool."""
    ev = requests[~requests["warmup"].to_numpy(dtype=bool)] if len(requests) else requests
    workers = ev["worker"].to_numpy(dtype=np.int64) if len(ev) else np.zeros(0, np.int64)
    per_worker = np.bincount(workers, minlength=num_workers)
    num_racks = -(-num_workers // workers_per_rack)
    per_rack = np.bincount(workers // workers_per_rack, minlength=num_racks)
    out: dict[str, Any] = {
        "num_racks": num_racks,
        "workers_per_rack": workers_per_rack,
        "max_requests_per_worker": int(per_worker.max()),
        "mean_requests_per_worker": float(per_worker.mean()),
        "load_skew_workers": _skew(per_worker),
        "max_requests_per_rack": int(per_rack.max()),
        "mean_requests_per_rack": float(per_rack.mean()),
        "load_skew_racks": _skew(per_rack),
    }
    if remote:
        col = "hit_blocks_remote_pool"
        hit = int(ev[col].sum()) if len(ev) else 0
        blocks = int(ev["num_blocks"].sum()) if len(ev) else 0
        out["hit_blocks_remote_pool"] = hit
        out["hit_ratio_blocks_remote_pool"] = _ratio(hit, blocks)
    return out
