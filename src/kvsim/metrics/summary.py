"""Summary maths over per-request results (definitions follow vLLM's benchmark tooling).

* TTFT = first output token time - arrival time (queueing included);
* TPOT = (e2e latency - TTFT) / (output tokens - 1), for requests with >= 2 output tokens;
* e2e latency = finish time - arrival time; queueing delay = first scheduled - arrival;
* throughput = output tokens of finished requests / makespan (first arrival to last event);
* prefix hit ratio = prompt blocks found in the prefix cache / full prompt blocks looked up,
  counted once per request at its first admission (block-weighted, no warm-up excluded).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "cache_meta",
    "per_gpu_tier_fields",
    "percentile_block",
    "safe_ratio",
    "tier_summary",
]

PERCENTILES = (50, 95, 99)


def safe_ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0


def percentile_block(name: str, values_ms: np.ndarray) -> dict[str, float | None]:
    """``{p50_<name>_ms, p95_..., p99_..., mean_<name>_ms}``; None when there are no values."""
    out: dict[str, float | None] = {}
    vals = values_ms[~np.isnan(values_ms)] if values_ms.size else values_ms
    for p in PERCENTILES:
        out[f"p{p}_{name}_ms"] = float(np.percentile(vals, p)) if vals.size else None
    out[f"mean_{name}_ms"] = float(vals.mean()) if vals.size else None
    return out


def finite_or_none(x: float) -> float | None:
    return None if (x is None or math.isnan(x) or math.isinf(x)) else float(x)


def tier_summary(instances: Sequence[Any]) -> dict[str, Any]:
    """Prefix hits per memory tier and lower-tier traffic, over ``instances`` (engine).

    * ``prefix_hit_ratio_hbm`` = prompt blocks found in HBM / full prompt blocks looked up;
      ``prefix_hit_ratio_<tier>`` = blocks loaded from that lower tier / the same denominator
      (first admissions only, like ``prefix_hit_ratio``; the ratios add up to the fraction of
      prompt blocks not recomputed);
    * ``tier_demotions`` blocks written into lower tiers (offloads, cascades included),
      ``tier_loads`` admissions that loaded a prefix, ``tier_loaded_blocks`` blocks loaded
      (promotions), ``tier_load_time_ms`` their summed critical-path transfer time;
    * ``tiers``: per tier name, counters summed over instances.
    """
    query = sum(i.num_prefix_query_blocks for i in instances)
    out: dict[str, Any] = {
        "prefix_hit_ratio_hbm": safe_ratio(sum(i.num_prefix_hit_blocks for i in instances), query)
    }
    per: dict[str, dict[str, float]] = {}
    for inst in instances:
        stats = inst.tier_stats()
        for name in inst.lower.names():
            acc = per.setdefault(name, {})
            for key, val in stats[name].items():
                acc[key] = acc.get(key, 0) + val
    for name, acc in per.items():
        out[f"prefix_hit_ratio_{name}"] = safe_ratio(acc["hit_blocks"], query)
    out["tier_demotions"] = int(sum(acc["demotions"] for acc in per.values()))
    out["tier_loads"] = int(sum(i.lower.num_loads for i in instances))
    out["tier_loaded_blocks"] = int(sum(i.lower.num_loaded_blocks for i in instances))
    out["tier_load_time_ms"] = float(sum(i.lower.load_time_s for i in instances) * 1e3)
    out["tiers"] = per
    return out


def per_gpu_tier_fields(inst: Any) -> dict[str, Any]:
    """The per_gpu entry's tier fields of one instance (see :func:`tier_summary`)."""
    query = inst.num_prefix_query_blocks
    out: dict[str, Any] = {"prefix_hit_ratio_hbm": safe_ratio(inst.num_prefix_hit_blocks, query)}
    stats = inst.tier_stats()
    for name in inst.lower.names():
        out[f"prefix_hit_ratio_{name}"] = safe_ratio(stats[name]["hit_blocks"], query)
    out["tier_load_time_ms"] = stats["tier_load_time_ms"]
    out["tier_loaded_blocks"] = stats["tier_loaded_blocks"]
    out["tiers"] = {name: stats[name] for name in inst.lower.names()}
    return out


def cache_meta(cache: Any, instances: Sequence[Any]) -> dict[str, Any]:
    """run_meta's ``prefix_cache``: the index, its eviction policy and the lower tiers of
    every instance (resolved capacities in blocks, transfer figures), top first."""
    return {
        "prefix_caching": bool(cache.prefix_caching),
        "index": cache.index if cache.prefix_caching else None,
        "eviction_policy": cache.eviction_policy if cache.index == "radix" else "lru",
        "write_policy": cache.write_policy,
        "inclusive": bool(cache.inclusive),
        "tiers": instances[0].lower.describe() if instances else [],
    }
