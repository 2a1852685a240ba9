"""Several policy x capacity points of one cache config (what ``kvsim cache`` runs).

``--policy a,b`` sets the policy of *every* tier; ``--capacity x,y`` sets the *top* tier's
capacity. The trace is loaded once and shared by all points. With ``out_dir``::

    results.csv / results.json   one row per point (its flat summary), in grid order
    points/<policy>_<capacity>/summary.json   each point's summary
    run_meta.json                config snapshot, grid, version, git commit, wall time
    plots/hit_ratio_vs_capacity.png, plots/occupancy_<policy>_<capacity>.png
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from kvsim.cache.config import CacheConfig
from kvsim.cache.driver import CacheResult, load_requests, run_cache
from kvsim.errors import ConfigError
from kvsim.report.atomic import write_dataframe, write_json

__all__ = ["GridResult", "point_config", "point_label", "run_grid"]


@dataclass
class GridResult:
    """``table``: one row per point; ``points``: each point's :class:`CacheResult`."""

    table: pd.DataFrame
    points: list[CacheResult]
    meta: dict[str, Any]


def point_label(policy: str, capacity: str) -> str:
    """A file-name-safe ``<policy>_<capacity>`` label (``%`` -> ``pct``)."""
    text = f"{policy}_{capacity}".replace("%", "pct")
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)


def point_config(cfg: CacheConfig, policy: str | None, capacity: str | None) -> CacheConfig:
    """``cfg`` with every tier's policy set to ``policy`` and the top tier's capacity set to
    ``capacity`` (``None`` keeps the configured value). Re-validated."""
    data = cfg.model_dump(mode="python")
    for tier in data["tiers"]:
        if policy is not None and tier["policy"] != policy:
            tier["policy"] = policy
            tier["policy_params"] = {}
    if capacity is not None:
        data["tiers"][0]["capacity"] = capacity
    from kvsim.cache.config import validate_cache_config

    return validate_cache_config(data)


def _offset(
    report: Callable[[int, int], None], base: int, total: int
) -> Callable[[int, int], None]:
    """A per-point progress callback reporting ``base + done`` out of ``total``."""

    def tick(done: int, _n: int) -> None:
        report(base + done, total)

    return tick


def run_grid(
    cfg: CacheConfig,
    policies: Sequence[str] = (),
    capacities: Sequence[str] = (),
    *,
    out_dir: Path | None = None,
    on_point: Callable[[int, int, str], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> GridResult:
    """Run every (policy, capacity) combination, policies outermost (see the module doc).

    ``on_point(i, n, label)`` is called before point ``i`` of ``n`` (and with ``i == n`` at
    the end); ``on_progress(done, total)`` counts replayed requests over all points.
    """
    pols: list[str | None] = list(policies) or [None]
    caps: list[str | None] = list(capacities) or [None]
    grid = [(p, c) for p in pols for c in caps]
    labels = [
        point_label(p or cfg.tiers[0].policy, c or str(cfg.tiers[0].capacity)) for p, c in grid
    ]
    if len(set(labels)) != len(labels):
        raise ConfigError("--policy/--capacity", "duplicate policy or capacity in the grid")
    configs = [point_config(cfg, p, c) for p, c in grid]
    t0 = time.perf_counter()
    requests = load_requests(cfg)
    results: list[CacheResult] = []
    for i, (pcfg, label) in enumerate(zip(configs, labels, strict=True)):
        if on_point is not None:
            on_point(i, len(grid), label)
        tick = None
        if on_progress is not None:
            tick = _offset(on_progress, i * len(requests), len(grid) * len(requests))
        results.append(run_cache(pcfg, requests=requests, on_progress=tick))
    if on_point is not None:
        on_point(len(grid), len(grid), "")
    table = pd.DataFrame([r.summary for r in results])
    meta = {
        **{k: v for k, v in results[0].meta.items() if k != "config"},
        "config": cfg.model_dump(mode="json"),
        "grid": [
            {"label": lab, "policy": p, "capacity": c}
            for lab, (p, c) in zip(labels, grid, strict=True)
        ],
        "wall_time_s": time.perf_counter() - t0,
    }
    out = GridResult(table, results, meta)
    if out_dir is not None:
        write_grid_outputs(out, labels, Path(out_dir), plots=cfg.outputs.plots)
    return out


def write_grid_outputs(
    result: GridResult, labels: list[str], out_dir: Path, *, plots: bool
) -> list[Path]:
    """Write the grid's run directory; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "results.csv", out_dir / "results.json", out_dir / "run_meta.json"]
    write_dataframe(paths[0], result.table)
    points = [{"label": lab, **r.summary} for lab, r in zip(labels, result.points, strict=True)]
    write_json(paths[1], {"points": points, "config": result.meta["config"]})
    write_json(paths[2], result.meta)
    for lab, r in zip(labels, result.points, strict=True):
        p = out_dir / "points" / lab / "summary.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        write_json(p, r.summary)
        paths.append(p)
    if plots:
        from kvsim.cache.plots import write_hit_ratio_plot, write_occupancy_plot

        paths.append(
            write_hit_ratio_plot(out_dir / "plots" / "hit_ratio_vs_capacity.png", result.table)
        )
        for lab, r in zip(labels, result.points, strict=True):
            paths.append(write_occupancy_plot(out_dir / "plots" / f"occupancy_{lab}.png", r))
    return paths
