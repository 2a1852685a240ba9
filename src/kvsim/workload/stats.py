"""Summary statistics of a request list (``kvsim trace stats``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from kvsim.workload.request import Request

__all__ = ["trace_stats"]

_PERCENTILES = (50, 90, 99)


def trace_stats(requests: Sequence[Request]) -> dict[str, float | int]:
    """Plain ``{name: number}`` summary of ``requests`` (any order).

    Keys (all present, also for an empty list, where they are 0):

    * ``count``; ``duration_s`` = last arrival - first arrival; ``rate_per_s`` =
      ``count / duration_s`` (0 when the duration is 0);
    * ``prompt_tokens_{p50,p90,p99,mean,max}`` and ``output_tokens_{...}`` (percentiles by
      linear interpolation, as ``numpy.percentile``);
    * ``num_sessions``: distinct ``session_id >= 0``;
    * ``num_prompt_blocks``: hashed full prompt blocks; ``prefix_reuse_fraction``: the
      fraction of them whose hash occurred earlier (in any request) — the block hit ratio of
      an infinite prefix cache, an upper bound for any real one;
    * ``num_hashed_requests``: requests that carry block hashes;
    * ``hash_block_size``: the most common block size (ties -> the smallest).
    """
    count = len(requests)
    stats: dict[str, float | int] = {"count": count}
    arrivals = np.fromiter((r.arrival_s for r in requests), dtype=np.float64, count=count)
    duration = float(arrivals.max() - arrivals.min()) if count else 0.0
    stats["duration_s"] = duration
    stats["rate_per_s"] = count / duration if duration > 0 else 0.0
    for field in ("prompt_tokens", "output_tokens"):
        values = np.fromiter((getattr(r, field) for r in requests), dtype=np.int64, count=count)
        stats.update(_summary(field, values))
    stats["num_sessions"] = len({r.session_id for r in requests if r.session_id >= 0})
    total_blocks = sum(len(r.block_hashes) for r in requests)
    distinct = len({h for r in requests for h in r.block_hashes})
    stats["num_prompt_blocks"] = total_blocks
    stats["prefix_reuse_fraction"] = (
        (total_blocks - distinct) / total_blocks if total_blocks else 0.0
    )
    stats["num_hashed_requests"] = sum(1 for r in requests if r.block_hashes)
    sizes = Counter(r.hash_block_size for r in requests)
    stats["hash_block_size"] = min(sizes, key=lambda s: (-sizes[s], s)) if sizes else 0
    return stats


def _summary(field: str, values: np.ndarray) -> dict[str, float | int]:
    """``{field}_p50/_p90/_p99`` and ``_mean`` (floats) and ``_max`` (int)."""
    if values.size == 0:
        out: dict[str, float | int] = {f"{field}_p{p}": 0.0 for p in _PERCENTILES}
        out[f"{field}_mean"] = 0.0
        out[f"{field}_max"] = 0
        return out
    out = {
        f"{field}_p{p}": float(v)
        for p, v in zip(_PERCENTILES, np.percentile(values, _PERCENTILES), strict=True)
    }
    out[f"{field}_mean"] = float(values.mean())
    out[f"{field}_max"] = int(values.max())
    return out
