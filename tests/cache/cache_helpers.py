"""Small configs for cache-driver tests on the toy model (tests/helpers.py).

Toy figures: kv_bytes_per_token = 512; compute 2e-5 s per token + 5.12e-12 s per context
token; weights 2e9 B at 1e12 B/s (2 ms floor, the memory time of a step).
"""

from __future__ import annotations

from typing import Any

from helpers import TOY_GPU, TOY_MODEL
from kvsim.cache import CacheConfig
from kvsim.cache.config import validate_cache_config


def toy_cache_config(**fields: Any) -> CacheConfig:
    data: dict[str, Any] = {
        "model": TOY_MODEL.model_dump(),
        "gpu": TOY_GPU.model_dump(),
        "perf": {"compute_efficiency": 1.0, "memory_efficiency": 1.0, "iteration_overhead_ms": 0.0},
        "block_size": 1000,
        "tiers": [{"name": "hbm", "capacity": "inf"}],
        "outputs": {"plots": False},
        "workload": {"kind": "synthetic", "num_requests": 1},
    }
    data.update(fields)
    return validate_cache_config(data)
