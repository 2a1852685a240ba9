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

import numpy as np

__all__ = ["percentile_block", "safe_ratio"]

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
