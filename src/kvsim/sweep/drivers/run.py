"""The ``run`` driver: one serving simulation per point (:func:`kvsim.api.simulate`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kvsim.sweep.drivers.base import DRIVERS, SweepDriver

__all__ = ["RunDriver"]


@DRIVERS.register("run")
class RunDriver(SweepDriver):
    """Serving simulation; the config is a :class:`kvsim.config.schema.SimConfig`."""

    default_metrics = ("p99_ttft_ms", "p99_tpot_ms", "throughput_tokens_per_sec")

    def load(
        self,
        path: Path | None,
        preset: str | None,
        overrides: list[str],
        seed: int | None,
    ) -> Any:
        from kvsim.config.loader import load_config

        return load_config(path, preset=preset, overrides=overrides, seed=seed)

    def run(self, cfg: Any, out_dir: Path, plots: bool | None) -> dict[str, Any]:
        from kvsim.api import simulate

        return simulate(cfg, out_dir=out_dir, plots=plots).summary
