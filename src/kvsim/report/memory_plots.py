"""PNG plots of a memory study (``plots/*.png`` of a ``kvsim memory`` run directory).

Reads only the results frame (``step``, ``<label>_<metric>``) and the per-allocator summary
handed to it. Rendered like :mod:`kvsim.report.plots`: object API, Agg canvas, default style,
no PNG ``Software`` metadata, atomic writes, so identical inputs give identical bytes.

==================================  =========================================================
``memory_usage_comparison.png``     reserved slots (solid) and slots holding tokens (dashed)
                                    per allocator, over steps
``fragmentation_comparison.png``    internal (solid) and external (dashed) fragmentation
``throughput.png``                  cumulative sequences admitted (the throughput proxy)
``utilisation_by_strategy.png``     share of KV memory per allocator: token states, reserved
                                    for future tokens, over-reserved, external fragmentation,
                                    free (averaged over saturated steps)
==================================  =========================================================

Long runs are thinned to at most :data:`MAX_POINTS` points per line (every k-th row).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from kvsim.report.atomic import atomic_write_bytes
from kvsim.report.plots import _legend, _no_data, _render

__all__ = ["MAX_POINTS", "MEMORY_PLOT_FILES", "write_memory_plots"]

MEMORY_PLOT_FILES = (
    "memory_usage_comparison.png",
    "fragmentation_comparison.png",
    "throughput.png",
    "utilisation_by_strategy.png",
)
MAX_POINTS = 4000

_SHARES = (
    ("share_token_states", "token states", "tab:green"),
    ("share_reserved_future", "reserved for future tokens", "tab:olive"),
    ("share_over_reserved", "over-reserved / last-block slack", "tab:orange"),
    ("share_external_frag", "external fragmentation", "tab:red"),
    ("share_free", "free", "0.85"),
)


def write_memory_plots(
    out_dir: Path, results: pd.DataFrame, models: Mapping[str, Mapping[str, Any]]
) -> list[Path]:
    """Write the four plots to ``out_dir/plots/``; return their paths (file-table order)."""
    plot_dir = Path(out_dir) / "plots"
    plot_dir.mkdir(parents=True, exist_ok=True)
    labels = list(models)
    thin = _thin(results)
    drawers: dict[str, Callable[[Axes], None]] = {
        "memory_usage_comparison.png": lambda ax: _draw_lines(
            ax,
            thin,
            labels,
            ("reserved", "used"),
            "KV memory: reserved (solid), holding tokens (dashed)",
            "slots",
        ),
        "fragmentation_comparison.png": lambda ax: _draw_lines(
            ax,
            thin,
            labels,
            ("internal_frag", "external_frag"),
            "Fragmentation: internal (solid), external (dashed)",
            "slots",
        ),
        "throughput.png": lambda ax: _draw_admitted(ax, results, labels),
        "utilisation_by_strategy.png": lambda ax: _draw_shares(ax, models),
    }
    paths = []
    for name in MEMORY_PLOT_FILES:
        path = plot_dir / name
        atomic_write_bytes(path, _render(drawers[name]))
        paths.append(path)
    return paths


def _thin(results: pd.DataFrame) -> pd.DataFrame:
    k = max(1, -(-len(results) // MAX_POINTS))
    return results.iloc[::k]


def _values(df: pd.DataFrame, col: str) -> np.ndarray:
    return pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _draw_lines(
    ax: Axes, df: pd.DataFrame, labels: list[str], metrics: tuple[str, str], title: str, unit: str
) -> None:
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.set_ylabel(unit)
    if df.empty or not labels:
        _no_data(ax)
        return
    x = _values(df, "step")
    for i, label in enumerate(labels):
        color = f"C{i % 10}"
        solid, dashed = (f"{label}_{m}" for m in metrics)
        if solid in df.columns:
            ax.plot(x, _values(df, solid), color=color, lw=1.2, label=label)
        if dashed in df.columns:
            ax.plot(x, _values(df, dashed), color=color, lw=1.0, ls="--")
    _legend(ax, len(df) * len(labels))


def _draw_admitted(ax: Axes, df: pd.DataFrame, labels: list[str]) -> None:
    ax.set_title("Sequences admitted (cumulative)")
    ax.set_xlabel("step")
    ax.set_ylabel("sequences")
    if df.empty or not labels:
        _no_data(ax)
        return
    k = max(1, -(-len(df) // MAX_POINTS))
    x = _values(df, "step")[::k]
    for i, label in enumerate(labels):
        col = f"{label}_admitted"
        if col in df.columns:
            y = np.nancumsum(_values(df, col))[::k]
            ax.plot(x, y, color=f"C{i % 10}", lw=1.2, label=label)
    _legend(ax, len(x) * len(labels))


def _draw_shares(ax: Axes, models: Mapping[str, Mapping[str, Any]]) -> None:
    ax.set_title("Where the KV memory goes (saturated steps)")
    ax.set_xlabel("share of KV memory (%)")
    if not models:
        _no_data(ax)
        return
    labels = list(models)
    y = np.arange(len(labels))
    left = np.zeros(len(labels))
    for key, name, color in _SHARES:
        vals = np.array([_share(models[m].get(key)) for m in labels]) * 100.0
        ax.barh(y, vals, left=left, color=color, label=name, edgecolor="white", height=0.6)
        left += vals
    for yi, m in zip(y, labels, strict=True):
        share = _share(models[m].get("share_token_states")) * 100.0
        ax.text(
            1.0, float(yi), f"{share:.1f}%", va="center", ha="left", fontsize="small", color="black"
        )
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, fontsize="x-small")


def _share(value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return 0.0
    return v if np.isfinite(v) else 0.0
