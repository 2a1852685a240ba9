"""PNG plots of ``kvsim cache`` (rendered like :mod:`kvsim.report.plots`: Agg canvas, default
style, no PNG ``Software`` metadata, atomic writes: identical inputs give identical bytes).

=========================  ==============================================================
``hit_ratio_vs_capacity``  block hit ratio of the whole stack (solid) and of the top tier
                           alone (dashed, when there are lower tiers) against the top tier's
                           capacity in blocks, one line per policy (miss-ratio curves read
                           as 1 - y); log x axis when capacities span > 10x
``tier_occupancy``         resident blocks / capacity per tier (summed over workers) over
                           simulated time; the legend gives each tier's capacity
=========================  ==============================================================
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from matplotlib.axes import Axes

from kvsim.report.atomic import atomic_write_bytes
from kvsim.report.plots import _legend, _no_data, _render

if TYPE_CHECKING:
    from kvsim.cache.driver import CacheResult

__all__ = ["write_hit_ratio_plot", "write_occupancy_plot"]

_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def write_occupancy_plot(path: Path, result: CacheResult) -> Path:
    """Tier occupancy over time of one replay."""
    ts = result.timeseries
    label = f"{result.summary.get('policy')} @ {result.summary.get('capacity')}"

    def draw(ax: Axes) -> None:
        cols = [c for c in ts.columns if c.startswith("used_blocks_")]
        if ts.empty or not cols:
            _no_data(ax)
            return
        for i, col in enumerate(cols):
            name = col.removeprefix("used_blocks_")
            cap = float(ts[f"capacity_blocks_{name}"].iloc[0])
            frac = ts[col].astype(float) / cap
            color = _COLORS[i % len(_COLORS)]
            ax.plot(ts["time_s"], frac, color=color, label=f"{name} ({cap:,.0f} blocks)")
        ax.set_ylim(0.0, 1.05)
        ax.set_xlabel("simulated time (s)")
        ax.set_ylabel("occupancy (resident / capacity)")
        ax.set_title(f"Tier occupancy — {label} (all workers)")
        _legend(ax)

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, _render(draw))
    return path


def write_hit_ratio_plot(path: Path, results: pd.DataFrame) -> Path:
    """Hit ratio against top-tier capacity, one line per policy (``results``: one row per
    point with ``policy``, ``capacity_blocks``, ``top_tier``, ``hit_ratio_blocks`` and
    ``hit_ratio_blocks_<top_tier>``)."""

    def draw(ax: Axes) -> None:
        if results.empty:
            _no_data(ax)
            return
        for i, (policy, grp) in enumerate(results.groupby("policy", sort=False)):
            g = grp.sort_values("capacity_blocks")
            color = _COLORS[i % len(_COLORS)]
            x = g["capacity_blocks"].astype(float)
            top = f"hit_ratio_blocks_{g['top_tier'].iloc[0]}"
            ax.plot(x, g["hit_ratio_blocks"].astype(float), "o-", color=color, label=str(policy))
            if len(g.columns.intersection([top])) and not g[top].equals(g["hit_ratio_blocks"]):
                ax.plot(x, g[top].astype(float), "s--", color=color, alpha=0.6, markersize=4)
        caps = results["capacity_blocks"].astype(float)
        if caps.max() > 10 * max(caps.min(), 1.0):
            ax.set_xscale("log")
        ax.set_ylim(0.0, 1.0)
        ax.set_xlabel("top-tier capacity per worker (blocks)")
        ax.set_ylabel("block hit ratio (solid: all tiers, dashed: top tier)")
        ax.set_title("Hit ratio vs capacity (evaluated split)")
        _legend(ax)

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, _render(draw))
    return path
