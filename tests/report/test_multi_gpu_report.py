"""Report layer with the shared-contract column names (vram_used / vram_gpu{N}) and per_gpu."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
from rich.console import Console
from test_plots import make_requests, make_timeseries

from kvsim.report.plots import write_run_plots
from kvsim.report.tables import per_gpu_rows, render_per_gpu, summary_rows


def contract_timeseries(num_instances: int) -> pd.DataFrame:
    old = make_timeseries(num_rows=30, num_instances=num_instances)
    ren = {"kv_used_bytes": "vram_used"}
    ren.update({f"kv_used_bytes_inst{i}": f"vram_gpu{i}" for i in range(num_instances)})
    caps = [f"kv_capacity_bytes_inst{i}" for i in range(num_instances)]
    return old.drop(columns=caps).rename(columns=ren).assign(global_queue_depth=1)


def test_new_names_draw_the_same_kv_plot_as_the_old_ones(tmp_path: Path) -> None:
    """Same data under the contract names (+ capacities passed in) -> identical PNG bytes
    for the KV plot as with the old column names and capacity columns."""
    old = make_timeseries(num_rows=30, num_instances=3)
    new = contract_timeseries(3)
    a = write_run_plots(tmp_path / "a", old, make_requests())
    b = write_run_plots(tmp_path / "b", new, make_requests(), capacities=[16 * (1 << 30)] * 3)
    assert a[0].name == b[0].name == "kv_memory.png"
    # legends say GPU instead of instance in both, so the files match
    assert a[0].read_bytes() == b[0].read_bytes()
    # the global queue appears in the queue plot: the files differ from the old one's
    assert a[1].read_bytes() != b[1].read_bytes()


def test_per_gpu_table_rows_and_optional_zero_counters() -> None:
    summary = {
        "finished": 3,
        "evictions": 0,
        "handoffs_total": 5,
        "per_gpu": [
            {"gpu_index": 0, "name": "h100-0", "requests_finished": 2, "tokens_generated": 1500,
             "peak_vram_bytes": 1 << 30, "kv_capacity_bytes": 2 << 30, "busy_ms": 12.345,
             "utilization": 0.5},
            {"gpu_index": 1, "name": "a100-0", "requests_finished": 1},
        ],
    }  # fmt: skip
    rows = dict(summary_rows(summary))
    assert rows == {"finished": "3", "KV handoffs": "5"}  # zero evictions hidden
    assert per_gpu_rows(summary) == [
        ["0", "h100-0", "2", "1,500", "1.00 GiB", "2.00 GiB", "0.0 s", "50.00%"],
        ["1", "a100-0", "1", "n/a", "n/a", "n/a", "n/a", "n/a"],
    ]
    buf = io.StringIO()
    render_per_gpu(summary, Console(file=buf, width=120))
    assert "h100-0" in buf.getvalue() and "a100-0" in buf.getvalue()
    buf = io.StringIO()
    render_per_gpu({"per_gpu": summary["per_gpu"][:1]}, Console(file=buf, width=120))
    assert buf.getvalue() == ""  # one GPU: no table
    many = {"per_gpu": [{"gpu_index": i, "name": f"g{i}"} for i in range(20)]}
    buf = io.StringIO()
    render_per_gpu(many, Console(file=buf, width=120))
    text = buf.getvalue()
    assert "g15" in text and "g16" not in text
    assert text.rstrip().endswith("... and 4 more GPUs in summary.json")
