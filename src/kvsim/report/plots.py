"""PNG plots of one serving run (``plots/*.png`` in the run directory, DESIGN §7).

The report layer only reads the DataFrames handed to it; it never imports metrics or drivers.

Rendering uses matplotlib's object API with an explicit Agg canvas: no ``pyplot``, no
display, no change to the process-wide backend. Each figure is drawn under matplotlib's
built-in default style (a user ``matplotlibrc`` cannot change the output), saved without
the ``Software`` PNG metadata and written atomically, so identical inputs give
byte-identical files.

Plots (x axis: simulated time in seconds, or the metric for CDFs):

==================  ==========================================================================
``kv_memory.png``   KV bytes in use per GPU (GiB, ``vram_gpu{N}``) and in total (``vram_used``);
                    min-max band + mean above :data:`MAX_INSTANCE_LINES` GPUs; dashed line
                    per distinct per-GPU capacity
``queue_depth.png`` waiting requests (per-GPU queues and the global queue), and running
                    prefill / decode sequences when present
``throughput.png``  generated tokens/s per sample interval and the run mean
``ttft_cdf.png``    empirical CDF of TTFT of finished requests, p50/p99 marked
``latency_cdf.png`` empirical CDF of end-to-end latency of finished requests, p50/p99 marked
==================  ==========================================================================

Missing columns, zero rows or no finished requests give an empty axes saying "no data".
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import matplotlib.style
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from kvsim.report.atomic import atomic_write_bytes

__all__ = ["MAX_INSTANCE_LINES", "PLOT_FILES", "throughput_tokens_per_s", "write_run_plots"]

#: Above this many instances, per-instance KV lines become one min-max band plus the mean.
MAX_INSTANCE_LINES = 16

#: File names written by :func:`write_run_plots`, in the order they are returned.
PLOT_FILES = (
    "kv_memory.png",
    "queue_depth.png",
    "throughput.png",
    "ttft_cdf.png",
    "latency_cdf.png",
)

GIB = float(1 << 30)
_FIGSIZE_IN = (8.0, 4.5)
_DPI = 100
_INST_USED = re.compile(r"^(?:vram_gpu|kv_used_bytes_inst)(\d+)$")
_TOTAL_USED = ("vram_used", "kv_used_bytes")
_LEGEND_BEST_MAX_POINTS = 20_000
_INST_CAP = re.compile(r"^kv_capacity_bytes_inst(\d+)$")


# --------------------------------------------------------------------------- public entry


def write_run_plots(
    out_dir: Path,
    timeseries: pd.DataFrame,
    requests: pd.DataFrame,
    capacities: Sequence[float] | None = None,
) -> list[Path]:
    """Write the run plots to ``out_dir/plots/`` and return their paths (order of
    :data:`PLOT_FILES`).

    ``timeseries`` is the sampled time series (``time_ms``, ``kv_used_bytes``,
    ``kv_used_bytes_inst{N}``, ``kv_capacity_bytes_inst{N}``, ``queue_depth``,
    ``active_prefill``, ``active_decode``, ``tokens_generated_delta``, ...), one row per
    sample (``vram_used`` / ``vram_gpu{N}`` are accepted for the KV columns);
    ``requests`` has one row per request with ``state``, ``ttft_ms`` and
    ``e2e_latency_ms``; ``capacities[N]`` (optional) is GPU N's KV capacity in bytes, drawn
    like a ``kv_capacity_bytes_inst{N}`` column. Neither frame is modified. Existing plot
    files are replaced atomically.
    """
    plot_dir = Path(out_dir) / "plots"
    plot_dir.mkdir(parents=True, exist_ok=True)
    ts = _sorted_timeseries(timeseries)
    if capacities is not None and not ts.empty:
        ts = ts.assign(**{f"kv_capacity_bytes_inst{i}": float(c) for i, c in enumerate(capacities)})
    finished = _finished(requests)
    drawers: dict[str, Callable[[Axes], None]] = {
        "kv_memory.png": lambda ax: _draw_kv_memory(ax, ts),
        "queue_depth.png": lambda ax: _draw_queue_depth(ax, ts),
        "throughput.png": lambda ax: _draw_throughput(ax, ts),
        "ttft_cdf.png": lambda ax: _draw_cdf(
            ax, finished, "ttft_ms", "Time to first token (finished requests)", "TTFT (ms)"
        ),
        "latency_cdf.png": lambda ax: _draw_cdf(
            ax,
            finished,
            "e2e_latency_ms",
            "End-to-end latency (finished requests)",
            "end-to-end latency (ms)",
        ),
    }
    paths: list[Path] = []
    for name in PLOT_FILES:
        path = plot_dir / name
        atomic_write_bytes(path, _render(drawers[name]))
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- rendering


def _render(draw: Callable[[Axes], None]) -> bytes:
    """Draw one figure with ``draw`` under the default style and return PNG bytes."""
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


def _no_data(ax: Axes, note: str = "no data") -> None:
    """Mark an axes as empty: a centred grey note, no ticks to mislead."""
    ax.text(
        0.5,
        0.5,
        note,
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=14,
        color="0.45",
    )
    ax.set_xticks([])
    ax.set_yticks([])


def _legend(ax: Axes, num_points: int = 0) -> None:
    """Add a legend if something was labelled; ``loc="best"`` only for small data, since
    matplotlib's search for the best spot is slow with many points."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        loc: Literal["best", "upper right"] = (
            "best" if num_points <= _LEGEND_BEST_MAX_POINTS else "upper right"
        )
        ax.legend(handles, labels, loc=loc, fontsize="small")


# --------------------------------------------------------------------------- input shaping


def _sorted_timeseries(timeseries: pd.DataFrame) -> pd.DataFrame:
    """Rows with a finite ``time_ms``, sorted by it (stable); empty frame if no ``time_ms``."""
    if "time_ms" not in timeseries.columns or timeseries.empty:
        return timeseries.iloc[0:0]
    t = pd.to_numeric(timeseries["time_ms"], errors="coerce")
    ts = timeseries.loc[np.isfinite(t.to_numpy(dtype=float))]
    return ts.sort_values("time_ms", kind="stable").reset_index(drop=True)


def _finished(requests: pd.DataFrame) -> pd.DataFrame:
    """Requests whose ``state`` is ``'finished'`` (all rows if there is no ``state``)."""
    if "state" not in requests.columns:
        return requests
    return requests.loc[requests["state"] == "finished"]


def _col(df: pd.DataFrame, name: str) -> np.ndarray:
    """Column ``name`` as a float array (non-numeric entries become NaN)."""
    return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)


def _time_s(ts: pd.DataFrame) -> np.ndarray:
    """Sample times in seconds."""
    return _col(ts, "time_ms") / 1000.0


def _instance_columns(columns: pd.Index, pattern: re.Pattern[str]) -> list[str]:
    """Columns matching ``pattern`` (one group: instance number), in numeric order."""
    found = [(int(m.group(1)), c) for c in columns if (m := pattern.match(str(c)))]
    return [c for _, c in sorted(found)]


# --------------------------------------------------------------------------- timeseries plots


def _draw_kv_memory(ax: Axes, ts: pd.DataFrame) -> None:
    """KV bytes in use over time in GiB, per instance and total, with capacity lines."""
    ax.set_title("KV cache memory in use")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("KV memory (GiB)")
    used_cols = _instance_columns(ts.columns, _INST_USED)
    cap_cols = _instance_columns(ts.columns, _INST_CAP)
    total_col = next((c for c in _TOTAL_USED if c in ts.columns), "")
    has_total = bool(total_col)
    if ts.empty or not (used_cols or has_total):
        _no_data(ax)
        return
    t = _time_s(ts)
    num_lines = int(has_total)
    # One instance: its line equals the total, so only the total is drawn.
    if (len(used_cols) > 1 or not has_total) and len(used_cols) <= MAX_INSTANCE_LINES:
        for col in used_cols:
            ax.plot(t, _col(ts, col) / GIB, linewidth=1.0, label=f"GPU {_inst(col)}")
        num_lines += len(used_cols)
    elif len(used_cols) > MAX_INSTANCE_LINES:
        per_inst = np.column_stack([_col(ts, c) for c in used_cols]) / GIB
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows stay NaN
            lo, hi = np.nanmin(per_inst, axis=1), np.nanmax(per_inst, axis=1)
            mean = np.nanmean(per_inst, axis=1)
        ax.fill_between(
            t, lo, hi, alpha=0.3, linewidth=0, label=f"per GPU min-max ({len(used_cols)})"
        )
        ax.plot(t, mean, linewidth=1.0, label="per GPU mean")
        num_lines += 3
    if has_total:
        ax.plot(t, _col(ts, total_col) / GIB, color="black", linewidth=1.6, label="total")
    _draw_capacities(ax, ts, cap_cols, with_total=has_total)
    top = ax.get_ylim()[1]
    ax.set_ylim(0.0, top * 1.15 if top > 0 else 1.0)  # headroom for the legend
    _legend(ax, num_points=num_lines * len(t))


def _inst(col: str) -> str:
    """GPU number of a ``..._inst{N}`` / ``vram_gpu{N}`` column name."""
    m = re.search(r"(\d+)$", col)
    return m.group(1) if m else col


def _draw_capacities(ax: Axes, ts: pd.DataFrame, cap_cols: list[str], with_total: bool) -> None:
    """One dashed horizontal line per distinct per-instance capacity (the columns are
    constant; the max of each is used), plus the summed capacity when the total is drawn
    and there are several instances. More than :data:`MAX_INSTANCE_LINES` distinct
    capacities are shown by their smallest and largest only."""
    caps: dict[float, list[str]] = {}
    for col in cap_cols:
        values = _col(ts, col)
        values = values[np.isfinite(values)]
        if values.size:
            caps.setdefault(float(values.max()), []).append(_inst(col))
    shown = sorted(caps.items())
    if len(shown) > MAX_INSTANCE_LINES:
        shown = [shown[0], shown[-1]]
    for cap, insts in shown:
        if len(caps) == 1 and len(cap_cols) > 1:
            who = "per GPU"
        elif len(insts) == 1:
            who = f"GPU {insts[0]}"
        else:
            who = f"{len(insts)} GPUs"
        ax.axhline(
            cap / GIB,
            linestyle="--",
            linewidth=1.0,
            color="tab:red",
            alpha=0.8,
            label=f"capacity {who} ({cap / GIB:,.2f} GiB)",
        )
    num_with_cap = sum(len(insts) for insts in caps.values())
    if with_total and num_with_cap > 1:
        total_cap = sum(cap * len(insts) for cap, insts in caps.items())
        ax.axhline(
            total_cap / GIB,
            linestyle="--",
            linewidth=1.2,
            color="darkred",
            label=f"total capacity ({total_cap / GIB:,.2f} GiB)",
        )


def _draw_queue_depth(ax: Axes, ts: pd.DataFrame) -> None:
    """Waiting queue and running prefill / decode sequences over time."""
    ax.set_title("Queue depth and running sequences")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("requests")
    series = [
        ("queue_depth", "queued"),
        ("global_queue_depth", "global queue"),
        ("active_prefill", "running prefill"),
        ("active_decode", "running decode"),
    ]
    present = [(c, label) for c, label in series if c in ts.columns]
    if ts.empty or not present:
        _no_data(ax)
        return
    t = _time_s(ts)
    for col, label in present:
        ax.plot(t, _col(ts, col), drawstyle="steps-post", linewidth=1.2, label=label)
    ax.set_ylim(bottom=0)
    _legend(ax, num_points=len(present) * len(t))


def _rate_intervals(ts: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(start_s, end_s, tokens_per_s)`` of each sample interval with a defined rate."""
    t_ms = _col(ts, "time_ms")
    delta = _col(ts, "tokens_generated_delta")
    prev_ms = np.concatenate(([0.0], t_ms[:-1]))
    dt_s = (t_ms - prev_ms) / 1000.0
    keep = (dt_s > 0) & np.isfinite(delta)
    return prev_ms[keep] / 1000.0, t_ms[keep] / 1000.0, delta[keep] / dt_s[keep]


def throughput_tokens_per_s(ts: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Generation rate per sample interval: ``(time_s, tokens_per_s)`` at interval ends.

    Row ``i``'s ``tokens_generated_delta`` counts tokens made in ``(t[i-1], t[i]]``; the
    first interval starts at time 0. Intervals of zero length (a sample at t=0, duplicate
    times) have no defined rate and are dropped, as are NaN deltas. ``ts`` must be sorted
    by ``time_ms``.
    """
    _, end_s, rate = _rate_intervals(ts)
    return end_s, rate


def _draw_throughput(ax: Axes, ts: pd.DataFrame) -> None:
    """Generated tokens per second over time, with the mean since time 0."""
    ax.set_title("Generation throughput")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("throughput (tokens/s)")
    if ts.empty or "tokens_generated_delta" not in ts.columns:
        _no_data(ax)
        return
    start_s, end_s, rate = _rate_intervals(ts)
    if end_s.size == 0:
        _no_data(ax)
        return
    # steps-pre: the rate at end_s[i] holds over the interval that ends there.
    ax.plot(
        np.concatenate((start_s[:1], end_s)),
        np.concatenate((rate[:1], rate)),
        drawstyle="steps-pre",
        linewidth=1.2,
        label="per sample interval",
    )
    span_s = float(end_s[-1])
    if span_s > 0:
        mean = float(np.nansum(_col(ts, "tokens_generated_delta"))) / span_s
        ax.axhline(
            mean, linestyle="--", linewidth=1.0, color="0.3", label=f"mean {mean:,.1f} tokens/s"
        )
    ax.set_ylim(bottom=0)
    _legend(ax, num_points=end_s.size)


# --------------------------------------------------------------------------- CDF plots


def _draw_cdf(ax: Axes, finished: pd.DataFrame, col: str, title: str, xlabel: str) -> None:
    """Empirical CDF of ``finished[col]`` (finite values) with p50 and p99 marked.

    Percentiles use ``numpy.percentile`` with linear interpolation, as vLLM's benchmark
    tooling does.
    """
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of requests")
    values = _col(finished, col) if col in finished.columns else np.empty(0)
    values = np.sort(values[np.isfinite(values)])
    if values.size == 0:
        _no_data(ax)
        return
    n = values.size
    frac = np.arange(1, n + 1, dtype=float) / n
    ax.plot(values, frac, drawstyle="steps-post", linewidth=1.4, label=f"n = {n:,}")
    for q, color in ((50, "tab:green"), (99, "tab:red")):
        x = float(np.percentile(values, q))
        ax.axvline(x, linestyle=":", linewidth=1.2, color=color, label=f"p{q} = {x:,.1f} ms")
        ax.plot([x], [q / 100.0], marker="o", markersize=4, color=color)
    ax.set_ylim(0.0, 1.02)
    _legend(ax, num_points=n)
