"""Sweep and search plots (matplotlib Agg, no pyplot, byte-identical for identical input).

* :func:`metric_vs_axis_png` — one metric against an axis, one line per value of a second
  axis; replicates (several seeds per x) are averaged, with min-max as error bars.
* :func:`latency_throughput_png` — latency against achieved throughput, one curve per
  value of a series axis, points in the order of a load axis (e.g. ``workload.rate``).
* :func:`pareto_png` — search results: max sustainable rate against cost per hour,
  Pareto-optimal configs joined and labelled.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib.style
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from kvsim.report.atomic import atomic_write_bytes
from kvsim.sweep.spec import PlotSpec, SweepSpec

__all__ = [
    "default_plot_specs",
    "latency_throughput_png",
    "metric_vs_axis_png",
    "pareto_front",
    "pareto_png",
    "write_sweep_plots",
]

_FIGSIZE_IN = (7.0, 4.5)
_DPI = 100


def _render(draw: Callable[[Axes], None]) -> bytes:
    with matplotlib.style.context("default"):
        fig = Figure(figsize=_FIGSIZE_IN, dpi=_DPI)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        draw(ax)
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    return buf.getvalue()


def _no_data(ax: Axes, note: str) -> None:
    ax.text(0.5, 0.5, note, transform=ax.transAxes, ha="center", va="center", color="0.45")
    ax.set_xticks([])
    ax.set_yticks([])


def _ok_rows(table: pd.DataFrame, needed: list[str]) -> pd.DataFrame:
    if table.empty or any(c not in table.columns for c in needed):
        return table.iloc[0:0]
    df = table[table["status"] == "ok"] if "status" in table.columns else table
    return df.dropna(subset=needed)


def _series_groups(df: pd.DataFrame, series: str | None) -> list[tuple[str, pd.DataFrame]]:
    if series is None or series not in df.columns:
        return [("", df)]
    values = sorted(df[series].unique(), key=lambda v: (str(type(v)), v))
    return [(f"{series}={v}", df[df[series] == v]) for v in values]


def metric_vs_axis_png(
    table: pd.DataFrame,
    x: str,
    y: str,
    series: str | None = None,
    *,
    logx: bool = False,
    logy: bool = False,
) -> bytes:
    """PNG of mean ``y`` against ``x`` per ``series`` value (min-max bars over seeds)."""
    df = _ok_rows(table, [x, y])

    def draw(ax: Axes) -> None:
        if df.empty:
            _no_data(ax, f"no finished points with {y}")
            return
        numeric_x = pd.api.types.is_numeric_dtype(df[x])
        for label, part in _series_groups(df, series):
            # Numbers sort; categories (e.g. "10%") keep their spec order.
            g = part.groupby(x, sort=numeric_x)[y].agg(["mean", "min", "max"])
            xs = g.index.to_numpy() if numeric_x else np.arange(len(g))
            err = np.vstack([g["mean"] - g["min"], g["max"] - g["mean"]])
            ax.errorbar(xs, g["mean"], yerr=err, marker="o", capsize=3, label=label or None)
            if not numeric_x:
                ax.set_xticks(xs, [str(v) for v in g.index])
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.set_title(f"{y} vs {x}")
        if logx:
            ax.set_xscale("log")
        if logy:
            ax.set_yscale("log")
        if series is not None:
            ax.legend(fontsize="small")

    return _render(draw)


def latency_throughput_png(
    table: pd.DataFrame, throughput: str, latency: str, series: str | None, order: str | None
) -> bytes:
    """PNG of ``latency`` against ``throughput``, one curve per ``series`` value."""
    needed = [throughput, latency] + ([order] if order else [])
    df = _ok_rows(table, needed)

    def draw(ax: Axes) -> None:
        if df.empty:
            _no_data(ax, f"no finished points with {latency}")
            return
        for label, part in _series_groups(df, series):
            key = order or throughput
            g = part.groupby(key, sort=True)[[throughput, latency]].mean()
            ax.plot(g[throughput], g[latency], marker="o", label=label or None)
        ax.set_xlabel(throughput)
        ax.set_ylabel(latency)
        ax.set_title(f"{latency} vs {throughput}")
        if series is not None:
            ax.legend(fontsize="small")

    return _render(draw)


def pareto_front(cost: list[float], rate: list[float]) -> list[int]:
    """Indices of the Pareto-optimal points (lower cost, higher rate), by increasing cost.

    A point is on the front iff no other point has cost <= and rate >= with one strict.
    """
    order = sorted(range(len(cost)), key=lambda i: (cost[i], -rate[i], i))
    front: list[int] = []
    best = -np.inf
    for i in order:
        if rate[i] > best:
            front.append(i)
            best = rate[i]
    return front


def pareto_png(rows: list[dict[str, Any]], label_keys: list[str]) -> bytes:
    """PNG of max rate against cost per hour for search rows; the Pareto front joined."""
    pts = [r for r in rows if r.get("max_rate") and r.get("cost_per_hour_usd") is not None]

    def draw(ax: Axes) -> None:
        if not pts:
            _no_data(ax, "no config met the SLOs")
            return
        cost = [float(r["cost_per_hour_usd"]) for r in pts]
        rate = [float(r["max_rate"]) for r in pts]
        ax.scatter(cost, rate, color="0.6", label="configs")
        front = pareto_front(cost, rate)
        ax.plot(
            [cost[i] for i in front],
            [rate[i] for i in front],
            "o-",
            color="C3",
            label="Pareto front",
        )
        for i in front:
            text = ", ".join(f"{k.rsplit('.', 1)[-1]}={pts[i].get(k)}" for k in label_keys)
            ax.annotate(
                text,
                (cost[i], rate[i]),
                fontsize="x-small",
                xytext=(4, 4),
                textcoords="offset points",
            )
        ax.set_xlabel("cost (USD per hour)")
        ax.set_ylabel("max rate meeting SLOs (req/s)")
        ax.set_title("Capacity search: rate vs cost")
        ax.legend(fontsize="small")

    return _render(draw)


def default_plot_specs(spec: SweepSpec) -> list[PlotSpec]:
    """Plots for a spec without ``plots``: the driver's default metrics against the first
    axis, one line per value of the second; for the ``run`` driver with a ``rate`` axis,
    also a latency-throughput curve."""
    from kvsim.sweep.drivers import get_driver

    keys = spec.axis_keys
    if not keys:
        return []
    series = keys[1] if len(keys) > 1 else None
    metrics = list(get_driver(spec.driver).default_metrics)
    out = [PlotSpec(x=keys[0], y=m, series=series) for m in metrics]
    if spec.driver == "run" and keys[0].endswith("rate"):
        out.append(
            PlotSpec(
                kind="latency_throughput",
                x="request_throughput_per_sec",
                y="p99_ttft_ms",
                series=series,
                order=keys[0],
            )
        )
    return out


def _file_name(p: PlotSpec) -> str:
    stem = "latency_throughput" if p.kind == "latency_throughput" else "metric"
    parts = [stem, *p.metrics, "vs", p.x] + ([f"by_{p.series}"] if p.series else [])
    return "_".join(parts).replace(".", "-") + ".png"


def write_sweep_plots(out: Path, table: pd.DataFrame, spec: SweepSpec) -> list[Path]:
    """Write every plot of ``spec.plots`` (or the defaults) to ``out/plots``; return paths."""
    specs = spec.plots if spec.plots is not None else default_plot_specs(spec)
    if not specs:
        return []
    plot_dir = Path(out) / "plots"
    plot_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for p in specs:
        for metric in p.metrics:
            one = p.model_copy(update={"y": metric})
            if p.kind == "latency_throughput":
                png = latency_throughput_png(table, p.x, metric, p.series, p.order)
            else:
                png = metric_vs_axis_png(table, p.x, metric, p.series, logx=p.logx, logy=p.logy)
            path = plot_dir / _file_name(one)
            atomic_write_bytes(path, png)
            paths.append(path)
    return paths
