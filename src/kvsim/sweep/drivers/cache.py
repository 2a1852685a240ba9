"""The ``cache`` driver: one trace replay per point (``kvsim cache``, :mod:`kvsim.cache`).

:mod:`kvsim.cache` is imported lazily; without it, loading a cache point raises a one-line
:class:`ConfigError` at ``driver``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kvsim.errors import ConfigError
from kvsim.sweep.drivers.base import DRIVERS, SweepDriver

__all__ = ["CacheDriver", "cache_module"]


def cache_module() -> Any:
    """The :mod:`kvsim.cache` package, or a ConfigError saying it is unavailable."""
    try:
        import kvsim.cache as mod
    except ImportError as exc:
        raise ConfigError(
            "driver",
            f"the cache driver needs kvsim.cache (the `kvsim cache` replay), "
            f"which cannot be imported here: {exc}",
        ) from None
    for attr in ("load_cache_config", "run_cache"):
        if not hasattr(mod, attr):
            raise ConfigError("driver", f"kvsim.cache has no {attr}(); cannot run cache points")
    return mod


@DRIVERS.register("cache")
class CacheDriver(SweepDriver):
    """Trace replay; the config is a ``kvsim.cache.CacheConfig``."""

    default_metrics = ("hit_ratio_blocks", "hit_ratio_tokens", "mean_ttft_ms")

    def load(
        self,
        path: Path | None,
        preset: str | None,
        overrides: list[str],
        seed: int | None,
    ) -> Any:
        mod = cache_module()
        return mod.load_cache_config(
            str(path) if path is not None else None,
            preset=preset,
            overrides=tuple(overrides),
            seed=seed,
        )

    def run(self, cfg: Any, out_dir: Path, plots: bool | None) -> dict[str, Any]:
        mod = cache_module()
        outputs = getattr(cfg, "outputs", None)
        if plots is False and outputs is not None and hasattr(outputs, "plots"):
            cfg = cfg.model_copy(update={"outputs": outputs.model_copy(update={"plots": False})})
        return dict(mod.run_cache(cfg, out_dir=out_dir).summary)
