"""Report layer: file writers, plots and terminal tables (DESIGN §2, §7).

Sits above ``metrics`` and the drivers and only reads the DataFrames / dicts handed to it.

* :mod:`kvsim.report.atomic` — atomic JSON / text / CSV / Parquet writers and a streaming
  JSON-lines writer; an interrupted run never leaves a half-written file under a final name.
* :mod:`kvsim.report.plots` — ``plots/*.png`` of a run (matplotlib, Agg canvas, deterministic).
* :mod:`kvsim.report.tables` — headline metrics formatted for humans, printed with rich.

``write_run_plots`` is imported lazily so that ``import kvsim.report`` does not load matplotlib.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kvsim.report.atomic import (
    JsonlStreamWriter,
    atomic_write_bytes,
    atomic_write_text,
    to_json_safe,
    write_dataframe,
    write_json,
)
from kvsim.report.tables import render_summary, summary_rows

if TYPE_CHECKING:
    from kvsim.report.plots import write_run_plots

__all__ = [
    "JsonlStreamWriter",
    "atomic_write_bytes",
    "atomic_write_text",
    "render_summary",
    "summary_rows",
    "to_json_safe",
    "write_dataframe",
    "write_json",
    "write_run_plots",
]


def __getattr__(name: str) -> Any:
    """Load :func:`~kvsim.report.plots.write_run_plots` on first use."""
    if name == "write_run_plots":
        from kvsim.report.plots import write_run_plots

        return write_run_plots
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
