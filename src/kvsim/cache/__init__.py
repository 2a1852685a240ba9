"""The cache-replay driver (``kvsim cache``): a trace through N workers' tier stacks.

Shared contract (the sweep runner calls these)::

    cfg = load_cache_config(path=None, preset=None, overrides=(), seed=None) -> CacheConfig
    res = run_cache(cfg, out_dir=None, on_progress=None) -> CacheResult
    res.summary   # flat JSON-able scalars of one policy/capacity point
    res.table     # pandas.DataFrame, one row per request

``run_grid(cfg, policies, capacities)`` runs several points over one loaded trace.
Definitions of every figure: :mod:`kvsim.cache.metrics` and docs/cache.md.
"""

from kvsim.cache.config import CacheConfig, list_cache_presets, load_cache_config
from kvsim.cache.driver import CacheResult, run_cache
from kvsim.cache.grid import GridResult, run_grid

__all__ = [
    "CacheConfig",
    "CacheResult",
    "GridResult",
    "list_cache_presets",
    "load_cache_config",
    "run_cache",
    "run_grid",
]
