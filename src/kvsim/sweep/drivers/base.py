"""The :class:`SweepDriver` interface and its registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from kvsim.registry import Registry

__all__ = ["DRIVERS", "SweepDriver", "get_driver"]


class SweepDriver:
    """Loads, fingerprints and runs the configuration of one sweep point.

    Invariants: :meth:`load` validates (so a bad spec fails before anything runs) and is
    deterministic; :meth:`dump` is a JSON-able mapping that determines the run completely
    (the point key hashes it); :meth:`run` writes a normal run directory to ``out_dir`` and
    returns its flat summary. Drivers are stateless and picklable (they run in workers).
    """

    name: ClassVar[str] = ""
    #: Metrics plotted when a spec gives no ``plots``.
    default_metrics: ClassVar[tuple[str, ...]] = ()

    def load(
        self,
        path: Path | None,
        preset: str | None,
        overrides: list[str],
        seed: int | None,
    ) -> Any:
        """Build a validated config from a base file or preset, overrides and a seed."""
        raise NotImplementedError

    def dump(self, cfg: Any) -> dict[str, Any]:
        """The complete config as a JSON-able mapping."""
        return dict(cfg.model_dump(mode="json"))

    def seed_of(self, cfg: Any) -> int | None:
        """The run's seed (None if the config has none)."""
        seed = getattr(cfg, "seed", None)
        return int(seed) if seed is not None else None

    def run(self, cfg: Any, out_dir: Path, plots: bool | None) -> dict[str, Any]:
        """Run ``cfg``, write its run directory to ``out_dir``, return the summary."""
        raise NotImplementedError


DRIVERS: Registry[type[SweepDriver]] = Registry(
    "sweep driver", "driver", "name", "kvsim.sweep.drivers.builtins"
)


def get_driver(name: str) -> SweepDriver:
    """An instance of the driver registered as ``name`` (ConfigError at ``driver`` if none)."""
    return DRIVERS.get(name)()
