"""Human-readable headline table of a run summary (terminal output of ``kvsim run``).

:func:`summary_rows` turns the summary dict (DESIGN §7 names: ``finished``, ``p99_ttft_ms``,
``peak_kv_bytes``...) into ``(label, value)`` strings; :func:`render_summary` prints them as a
rich table. Keys absent from the summary are skipped; a present value that is ``None``, NaN
or not a number reads ``n/a``. Formats (exact, tests pin them):

===========================  ==================  ==============
kind                         example value       text
===========================  ==================  ==============
count                        ``12345``           ``12,345``
ratio (0..1)                 ``0.98765``         ``98.77%``
throughput                   ``1234.56``         ``1,234.6 tok/s``
milliseconds                 ``12.3456``         ``12.35 ms``
bytes                        ``1.5 * 2**30``     ``1.50 GiB``
seconds                      ``12.3456``         ``12.346 s``
plain number                 ``3.14159``         ``3.14``
===========================  ==================  ==============
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["HEADLINE_METRICS", "per_gpu_rows", "render_per_gpu", "render_summary", "summary_rows"]

#: Multi-GPU counters shown only when non-zero (a single-GPU run has none of them).
OPTIONAL_ZERO = frozenset({"evictions", "handoffs_total", "retry_attempts",
                           "max_global_queue_depth"})  # fmt: skip

NA = "n/a"
GIB = float(1 << 30)


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None if it is missing, NaN/inf, bool or not numeric."""
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def fmt_count(value: Any) -> str:
    """Integer count with thousands separators (``12,345``); non-integers keep 2 decimals."""
    x = _number(value)
    if x is None:
        return NA
    return f"{int(x):,}" if x.is_integer() else f"{x:,.2f}"


def fmt_ratio(value: Any) -> str:
    """A fraction in [0, 1] as a percentage with two decimals (``98.77%``)."""
    x = _number(value)
    return NA if x is None else f"{x:.2%}"


def fmt_tokens_per_s(value: Any) -> str:
    """Throughput in tokens per second (``1,234.6 tok/s``)."""
    x = _number(value)
    return NA if x is None else f"{x:,.1f} tok/s"


def fmt_ms(value: Any) -> str:
    """Milliseconds with two decimals (``12.35 ms``)."""
    x = _number(value)
    return NA if x is None else f"{x:,.2f} ms"


def fmt_busy_s(value: Any) -> str:
    """Busy milliseconds shown as seconds with one decimal (``110.5 s``)."""
    x = _number(value)
    return NA if x is None else f"{x / 1e3:,.1f} s"


def fmt_gib(value: Any) -> str:
    """Bytes as GiB (2**30 bytes) with two decimals (``1.50 GiB``)."""
    x = _number(value)
    return NA if x is None else f"{x / GIB:,.2f} GiB"


def fmt_seconds(value: Any) -> str:
    """Seconds with three decimals (``12.346 s``)."""
    x = _number(value)
    return NA if x is None else f"{x:,.3f} s"


def fmt_plain(value: Any) -> str:
    """A plain number with two decimals (``3.14``)."""
    x = _number(value)
    return NA if x is None else f"{x:,.2f}"


#: ``(summary key, label, formatter)`` of the headline rows, in display order.
HEADLINE_METRICS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("finished", "finished", fmt_count),
    ("rejected", "rejected", fmt_count),
    ("completion_rate", "completion rate", fmt_ratio),
    ("throughput_tokens_per_sec", "throughput", fmt_tokens_per_s),
    ("p50_ttft_ms", "TTFT p50", fmt_ms),
    ("p99_ttft_ms", "TTFT p99", fmt_ms),
    ("p50_tpot_ms", "TPOT p50", fmt_ms),
    ("p99_tpot_ms", "TPOT p99", fmt_ms),
    ("p50_latency_ms", "latency p50", fmt_ms),
    ("p99_latency_ms", "latency p99", fmt_ms),
    ("peak_kv_bytes", "peak KV memory", fmt_gib),
    ("preemptions", "preemptions", fmt_count),
    ("evictions", "evictions", fmt_count),
    ("handoffs_total", "KV handoffs", fmt_count),
    ("retry_attempts", "retries", fmt_count),
    ("max_global_queue_depth", "max global queue", fmt_count),
    ("prefix_hit_ratio", "prefix hit ratio", fmt_ratio),
    ("makespan_s", "makespan", fmt_seconds),
    ("num_events", "events", fmt_count),
    ("events_per_request", "events per request", fmt_plain),
)


def summary_rows(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Headline ``(label, formatted value)`` pairs of ``summary`` in :data:`HEADLINE_METRICS`
    order; keys missing from ``summary`` are skipped, other keys are ignored."""
    return [
        (label, fmt(summary[key]))
        for key, label, fmt in HEADLINE_METRICS
        if key in summary and not (key in OPTIONAL_ZERO and not summary[key])
    ]


#: ``(per_gpu key, column, formatter)`` of the per-GPU table.
PER_GPU_COLUMNS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("gpu_index", "#", fmt_count),
    ("name", "name", str),
    ("requests_finished", "done", fmt_count),
    ("tokens_generated", "tokens", fmt_count),
    ("peak_vram_bytes", "peak KV", fmt_gib),
    ("kv_capacity_bytes", "KV cap", fmt_gib),
    ("busy_ms", "busy", fmt_busy_s),
    ("utilization", "util", fmt_ratio),
)


def per_gpu_rows(summary: Mapping[str, Any]) -> list[list[str]]:
    """One row of formatted :data:`PER_GPU_COLUMNS` per entry of ``summary["per_gpu"]``."""
    return [
        [fmt(g[key]) if key in g else NA for key, _, fmt in PER_GPU_COLUMNS]
        for g in summary.get("per_gpu", [])
    ]


#: The per-GPU table shows at most this many rows (summary.json has them all).
MAX_PER_GPU_ROWS = 16


def render_per_gpu(summary: Mapping[str, Any], console: Console) -> None:
    """Print the per-GPU table (only for runs with more than one GPU; the first
    :data:`MAX_PER_GPU_ROWS` GPUs, then a line saying how many more are in summary.json)."""
    rows = per_gpu_rows(summary)
    if len(rows) < 2:
        return
    table = Table(title="per GPU", title_justify="left", header_style="bold")
    for _, col, _fmt in PER_GPU_COLUMNS:
        table.add_column(col, justify="left" if col == "name" else "right", no_wrap=True)
    for row in rows[:MAX_PER_GPU_ROWS]:
        table.add_row(*row)
    console.print(table)
    if len(rows) > MAX_PER_GPU_ROWS:
        console.print(f"... and {len(rows) - MAX_PER_GPU_ROWS:,} more GPUs in summary.json")


def render_summary(summary: Mapping[str, Any], console: Console, title: str) -> None:
    """Print the headline rows of ``summary`` to ``console`` as a two-column rich table."""
    table = Table(title=title, title_justify="left", show_header=True, header_style="bold")
    table.add_column("metric", style="cyan", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    for label, value in summary_rows(summary):
        table.add_row(label, value)
    console.print(table)
