"""The memory-study driver: one input replayed against every configured allocator.

:func:`run_memory_study` builds the input from the config and its seed, gives every
allocator the same KV byte budget (its ``kv_dtype`` decides how many token slots that buys),
replays the input against each, and returns a :class:`MemoryResult`. With ``out_dir`` it
writes the run directory::

    results.csv     one row per recorded step; column "step", then "<label>_<metric>"
    summary.json    config snapshot, seed, and per allocator its peak/average figures
    results.txt     a readable log: the config, a per-allocator table, the first steps
    plots/          memory_usage_comparison.png, fragmentation_comparison.png,
                    throughput.png, utilisation_by_strategy.png

Same config + seed gives byte-identical files (nothing reads the clock).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kvsim.kv.alloc.base import create_allocator
from kvsim.memory.config import EventsInput, MemoryConfig
from kvsim.memory.inputs import EventTrace, RequestTrace, generate_events, load_requests
from kvsim.memory.metrics import METRICS, summarize
from kvsim.memory.replay import ReplayResult, replay_events, replay_requests
from kvsim.report.atomic import atomic_write_text, write_dataframe, write_json

__all__ = ["MemoryResult", "run_memory_study", "write_memory_outputs"]

#: Rows of results.csv echoed in results.txt.
LOG_STEPS = 50


@dataclass
class MemoryResult:
    """``results``: one row per recorded step (``step``, ``<label>_<metric>``);
    ``summary``: ``{"config": ..., "models": {label: {...}}}``."""

    results: pd.DataFrame
    summary: dict[str, Any]


def build_input(cfg: MemoryConfig) -> EventTrace | RequestTrace:
    """The study's input, drawn from ``numpy.random.default_rng(cfg.seed)``."""
    rng = np.random.default_rng(cfg.seed)
    if isinstance(cfg.input, EventsInput):
        return generate_events(cfg.input, rng)
    return load_requests(cfg.input, rng, cfg.max_len)


def run_memory_study(cfg: MemoryConfig, out_dir: str | Path | None = None) -> MemoryResult:
    """Replay the configured input against every allocator (see the module doc)."""
    trace = build_input(cfg)
    runs: dict[str, ReplayResult] = {}
    models: dict[str, dict[str, Any]] = {}
    for acfg in cfg.allocators:
        num_slots = cfg.num_slots(acfg.kv_dtype)
        alloc = create_allocator(acfg.to_spec(cfg.max_len), num_slots)
        if isinstance(trace, EventTrace):
            run = replay_events(trace, alloc, cfg.record_every)
        else:
            run = replay_requests(trace, alloc, cfg.record_every, cfg.max_num_seqs, cfg.max_steps)
        runs[acfg.label] = run
        bytes_per_slot = cfg.bytes_per_slot(acfg.kv_dtype)
        head = {
            "kind": acfg.kind,
            "kv_dtype": acfg.kv_dtype,
            "block_size": acfg.block_size,
            "num_slots": num_slots,
            "bytes_per_slot": bytes_per_slot,
        }
        stats = summarize(run.metrics, alloc, num_slots, run.counters)
        stats["peak_reserved_bytes"] = stats["peak_reserved_slots"] * bytes_per_slot
        if hasattr(alloc, "num_relocations"):
            stats["relocations"] = alloc.num_relocations
        models[acfg.label] = {**head, **stats}
    results = _results_frame(runs)
    summary = {
        "config": cfg.model_dump(mode="json"),
        "seed": cfg.seed,
        "input_kind": cfg.input.kind,
        "num_input_items": len(trace),
        "budget_bytes": cfg.budget_bytes,
        "models": models,
    }
    result = MemoryResult(results, summary)
    if out_dir is not None:
        write_memory_outputs(result, Path(out_dir), plots=cfg.plots)
    return result


def _results_frame(runs: dict[str, ReplayResult]) -> pd.DataFrame:
    """Outer-join the runs on ``step`` (a run that ended earlier has empty cells after)."""
    all_steps = np.unique(np.concatenate([r.steps for r in runs.values()]))
    cols: dict[str, Any] = {"step": all_steps}
    for label, run in runs.items():
        pos = np.searchsorted(all_steps, run.steps)
        for name in METRICS:
            values = run.metrics[name]
            if len(run.steps) == len(all_steps):
                cols[f"{label}_{name}"] = values
                continue
            col = pd.array(
                [pd.NA] * len(all_steps), dtype="Float64" if name == "utilisation" else "Int64"
            )
            col[pos] = values
            cols[f"{label}_{name}"] = col
    return pd.DataFrame(cols)


def write_memory_outputs(result: MemoryResult, out_dir: Path, plots: bool = True) -> list[Path]:
    """Write the run directory (atomic writes); return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_dataframe(out_dir / "results.csv", result.results)
    write_json(out_dir / "summary.json", result.summary)
    atomic_write_text(out_dir / "results.txt", results_text(result))
    paths = [out_dir / "results.csv", out_dir / "summary.json", out_dir / "results.txt"]
    if plots:
        from kvsim.report.memory_plots import write_memory_plots

        paths += write_memory_plots(out_dir, result.results, result.summary["models"])
    return paths


_TABLE = (
    ("num_slots", "slots"),
    ("peak_reserved_slots", "peak"),
    ("avg_used_slots", "avg used"),
    ("avg_internal_frag_slots", "avg int.frag"),
    ("avg_external_frag_slots", "avg ext.frag"),
    ("avg_utilisation", "util"),
    ("share_token_states", "token share"),
    ("avg_running", "avg running"),
    ("failed_allocations", "failed"),
    ("compressions", "compr."),
)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.4g}"
    return str(value)


def results_text(result: MemoryResult) -> str:
    """The readable log written to ``results.txt``."""
    s = result.summary
    cfg = s["config"]
    lines = [
        "kvsim memory study",
        f"seed {s['seed']}  input {s['input_kind']} ({s['num_input_items']} items)  "
        f"model {cfg['model']}  budget {s['budget_bytes']:.6g} bytes",
        "",
        "allocator".ljust(20) + "".join(h.rjust(13) for _, h in _TABLE),
    ]
    for label, m in s["models"].items():
        lines.append(label.ljust(20) + "".join(_fmt(m.get(k)).rjust(13) for k, _ in _TABLE))
    lines += ["", f"first {LOG_STEPS} recorded steps (all steps: results.csv):"]
    head = result.results.head(LOG_STEPS)
    cols = ["step", *[c for c in head.columns if c.endswith(("_reserved", "_used", "_failed"))]]
    lines.append(head[cols].to_string(index=False))
    return "\n".join(lines) + "\n"
