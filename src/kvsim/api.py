"""Public Python API: ``simulate(config) -> Result`` and the run-directory writer."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kvsim import __version__
from kvsim.config.loader import (
    config_to_yaml,
    load_config,
    resolve_gpu,
    resolve_gpu_name,
    resolve_model,
)
from kvsim.config.schema import SimConfig
from kvsim.metrics.summary import (
    cache_meta,
    finite_or_none,
    per_gpu_tier_fields,
    percentile_block,
    safe_ratio,
    tier_summary,
)
from kvsim.provenance import git_commit
from kvsim.serving.cluster import RunOutput, ServingSimulation
from kvsim.serving.seq import SeqState
from kvsim.workload.traces import load_workload_with_report

__all__ = ["Result", "simulate", "write_run_dir"]

_STATE_NAMES = {
    SeqState.FINISHED: "finished",
    SeqState.REJECTED: "rejected",
    SeqState.UNFINISHED: "unfinished",
}


@dataclass
class Result:
    """The outcome of one run. ``requests`` and ``timeseries`` are pandas DataFrames."""

    config: SimConfig
    summary: dict[str, Any]
    requests: pd.DataFrame
    timeseries: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)


def simulate(
    config: SimConfig | str | Path | None = None,
    *,
    exact_steps: bool = False,
    out_dir: str | Path | None = None,
    events: bool | None = None,
    plots: bool | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> Result:
    """Run one simulation. ``config`` is a :class:`SimConfig`, a YAML path, or None (defaults).

    With ``out_dir`` the run directory is written (events.jsonl is streamed during the run
    when enabled). ``on_progress(done, total)`` is called every 1024 arrivals.
    """
    cfg = config if isinstance(config, SimConfig) else load_config(config)
    wall0 = time.perf_counter()
    cpu0 = time.process_time()
    rng = np.random.default_rng(cfg.seed)
    requests, trace_report = load_workload_with_report(cfg.workload, rng)
    model = resolve_model(cfg)
    gpu = resolve_gpu(cfg)
    want_events = cfg.outputs.events if events is None else events
    out = Path(out_dir) if out_dir is not None else None
    writer = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        from kvsim.report.atomic import JsonlStreamWriter

        if want_events:
            writer = JsonlStreamWriter(out / "events.jsonl")
    total = len(requests)
    progress = (lambda done: on_progress(done, total)) if on_progress else None
    sim = ServingSimulation(
        cfg,
        model,
        gpu,
        requests,
        exact_steps=exact_steps,
        event_sink=writer.write if writer is not None else None,
        on_progress=progress,
        resolve_gpu=lambda name: resolve_gpu_name(cfg, name),
    )
    if writer is not None:
        with writer:
            run = sim.run()
    else:
        run = sim.run()
    requests_df = _requests_frame(run)
    ts = pd.DataFrame(run.collector.rows, columns=run.collector.timeseries_columns())
    summary = _summary(run, requests_df, ts, model.weight_bytes)
    meta = _meta(cfg, run, exact_steps, requests, model, gpu)
    meta["workload_report"] = None if trace_report is None else trace_report.to_dict()
    meta["wall_time_s"] = time.perf_counter() - wall0
    meta["cpu_time_s"] = time.process_time() - cpu0
    result = Result(cfg, summary, requests_df, ts, meta)
    if out is not None:
        write_run_dir(result, out, plots=cfg.outputs.plots if plots is None else plots)
    return result


def _requests_frame(run: RunOutput) -> pd.DataFrame:
    seqs = sorted(run.seqs, key=lambda s: s.req.request_id)
    n = len(seqs)
    arrival = np.fromiter((s.req.arrival_s for s in seqs), float, n)
    first = np.fromiter(
        (s.first_token_s if s.first_token_s >= 0 else np.nan for s in seqs), float, n
    )
    finish = np.fromiter((s.finish_s if s.finish_s >= 0 else np.nan for s in seqs), float, n)
    sched = np.fromiter(
        (s.first_scheduled_s if s.first_scheduled_s >= 0 else np.nan for s in seqs), float, n
    )
    out_tok = np.fromiter((s.req.output_tokens for s in seqs), np.int64, n)
    ttft = (first - arrival) * 1e3
    e2e = (finish - arrival) * 1e3
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(out_tok > 1, (e2e - ttft) / (out_tok - 1), np.nan)
    return pd.DataFrame(
        {
            "request_id": np.fromiter((s.req.request_id for s in seqs), np.int64, n),
            "session_id": np.fromiter((s.req.session_id for s in seqs), np.int64, n),
            "instance": np.fromiter((s.instance for s in seqs), np.int64, n),
            "state": [_STATE_NAMES.get(s.state, s.state.name.lower()) for s in seqs],
            "reject_reason": [s.reject_reason for s in seqs],
            "arrival_s": arrival,
            "prompt_tokens": np.fromiter((s.req.prompt_tokens for s in seqs), np.int64, n),
            "output_tokens": out_tok,
            "cached_tokens": np.fromiter((max(s.cached_tokens, 0) for s in seqs), np.int64, n),
            "first_token_s": first,
            "finish_s": finish,
            "ttft_ms": ttft,
            "tpot_ms": tpot,
            "e2e_latency_ms": e2e,
            "queueing_delay_ms": (sched - arrival) * 1e3,
            "num_preemptions": np.fromiter((s.num_preemptions for s in seqs), np.int64, n),
            "num_evictions": np.fromiter((s.num_evictions for s in seqs), np.int64, n),
            "num_retries": np.fromiter((s.num_retries for s in seqs), np.int64, n),
            "prefill_instance": np.fromiter(
                (s.prefill_instance if s.prefill_instance >= 0 else s.instance for s in seqs),
                np.int64,
                n,
            ),
        }
    )


def _summary(
    run: RunOutput, req: pd.DataFrame, ts: pd.DataFrame, weight_bytes: float
) -> dict[str, Any]:
    n = len(req)
    fin = req[req["state"] == "finished"]
    finished = len(fin)
    rejected = int((req["state"] == "rejected").sum())
    first_arrival = float(req["arrival_s"].min()) if n else 0.0
    makespan = max(run.end_s - first_arrival, 0.0)
    out_tokens = int(fin["output_tokens"].sum())
    hit = sum(i.num_prefix_hit_blocks for i in run.instances)
    query = sum(i.num_prefix_query_blocks for i in run.instances)
    kv_total = ts["vram_used"].to_numpy() if len(ts) else np.zeros(0)
    weights = sum(i.setup.weight_bytes for i in run.instances)
    s: dict[str, Any] = {
        "num_requests": n,
        "finished": finished,
        "rejected": rejected,
        "unfinished": int((req["state"] == "unfinished").sum()),
        "completion_rate": safe_ratio(finished, n),
        "reject_rate": safe_ratio(rejected, n),
        "makespan_s": makespan,
        "throughput_tokens_per_sec": safe_ratio(out_tokens, makespan),
        "request_throughput_per_sec": safe_ratio(finished, makespan),
        "total_output_tokens": out_tokens,
    }
    s.update(percentile_block("ttft", fin["ttft_ms"].to_numpy()))
    s.update(percentile_block("tpot", fin["tpot_ms"].to_numpy()))
    s.update(percentile_block("latency", fin["e2e_latency_ms"].to_numpy()))
    s.update(percentile_block("queueing_delay", fin["queueing_delay_ms"].to_numpy()))
    s.update(
        {
            "avg_kv_bytes": float(kv_total.mean()) if kv_total.size else 0.0,
            "peak_kv_bytes": float(kv_total.max()) if kv_total.size else 0.0,
            "kv_capacity_bytes": float(
                sum(i.pool.num_blocks for i in run.instances) * run.block_bytes
            ),
            "avg_vram_bytes": float(kv_total.mean() if kv_total.size else 0.0) + weights,
            "preemptions": int(sum(i.num_preemptions for i in run.instances)),
            "evictions": int(run.stats.get("evictions", 0)),
            "handoffs_total": int(run.stats.get("handoffs_total", 0)),
            "cross_gpu_decodes": int(run.stats.get("cross_gpu_decodes", 0)),
            "retry_attempts": int(run.stats.get("retry_attempts", 0)),
            "retry_successes": int(run.stats.get("retry_successes", 0)),
            "max_global_queue_depth": int(run.stats.get("max_global_queue_depth", 0)),
            "prefix_hit_ratio": safe_ratio(hit, query),
            "prefix_hit_blocks": int(hit),
            "prefix_query_blocks": int(query),
            "num_events": run.num_events,
            "events_per_request": safe_ratio(run.num_events, n),
            "num_steps": int(sum(i.num_steps for i in run.instances)),
        }
    )
    s.update({k: v for k, v in run.diagnostics.items() if k != "warnings"})
    warnings = list(run.diagnostics.get("warnings", []))
    if s["unfinished"]:
        warnings.append(f"{s['unfinished']} requests unfinished when the clock stopped")
    s["warnings"] = warnings
    s["per_gpu"] = [
        {
            "gpu_index": i.index,
            "name": i.setup.name,
            "gpu": i.setup.gpu_name,
            "tensor_parallel": i.setup.tensor_parallel,
            "peak_vram_bytes": i.peak_blocks * run.block_bytes,
            "kv_capacity_bytes": i.pool.num_blocks * run.block_bytes,
            "weight_bytes": i.setup.weight_bytes,
            "tokens_generated": i.tokens_generated,
            "requests_finished": i.num_finished,
            "busy_ms": i.busy_s * 1e3,
            "utilization": safe_ratio(i.busy_s, makespan),
            "preemptions": i.num_preemptions,
            "evictions": i.num_evictions,
            "prefix_hit_ratio": safe_ratio(i.num_prefix_hit_blocks, i.num_prefix_query_blocks),
            **(per_gpu_tier_fields(i) if i.lower.tiers else {}),
        }
        for i in run.instances
    ]
    if any(i.lower.tiers for i in run.instances):
        s.update(tier_summary(run.instances))
    return {k: (finite_or_none(v) if isinstance(v, float) else v) for k, v in s.items()}


_MAX_LISTED_INSTANCES = 64


def _instances_meta(run: RunOutput) -> dict[str, Any]:
    """``instances``: one entry per instance (up to 64 instances); above that
    ``instance_groups``: runs of consecutive instances with identical parameters, each with
    ``first_gpu_index`` and ``count`` (a 10,240-GPU run_meta.json stays small)."""
    roles = run.roles or ["unified"] * len(run.instances)
    described: dict[int, dict[str, float]] = {}

    def entry(i: Any, role: str) -> dict[str, Any]:
        tm = described.get(id(i.tm))
        if tm is None:
            tm = described[id(i.tm)] = i.tm.describe()
        return {
            "gpu": i.setup.gpu_name,
            "tensor_parallel": i.setup.tensor_parallel,
            "kv_blocks": i.pool.num_blocks,
            "max_num_seqs": i.max_num_seqs,
            "decode_tokens_per_s": i.decode_speed,
            "pd_role": role,
            "time_model": tm,
        }

    if len(run.instances) <= _MAX_LISTED_INSTANCES:
        return {
            "instances": [
                {"gpu_index": i.index, "name": i.setup.name, "node": i.setup.node, **entry(i, r)}
                for i, r in zip(run.instances, roles, strict=True)
            ]
        }
    groups: list[dict[str, Any]] = []
    for i, r in zip(run.instances, roles, strict=True):
        e = entry(i, r)
        if groups and all(groups[-1][k] == v for k, v in e.items()):
            groups[-1]["count"] += 1
        else:
            groups.append({"first_gpu_index": i.index, "count": 1, **e})
    return {"instance_groups": groups}


def _meta(
    cfg: SimConfig, run: RunOutput, exact: bool, requests: list, model: Any, gpu: Any
) -> dict[str, Any]:
    return {
        "kvsim_version": __version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "seed": cfg.seed,
        "mode": "exact_steps" if exact else "fast_forward",
        "num_requests": len(requests),
        "num_events": run.num_events,
        "synthetic_hashes": any(r.synthetic_hashes for r in requests[:1000]),
        "kv_blocks_per_instance": run.num_blocks,
        **_instances_meta(run),
        "kv_block_bytes": run.block_bytes,
        "model": model.model_dump(),
        "gpu": gpu.model_dump(),
        "time_model": run.time_model.describe(),
        "prefix_cache": cache_meta(cfg.cache, run.instances),
        "diagnostics": {k: v for k, v in run.diagnostics.items() if k != "warnings"},
        "warnings": list(run.diagnostics.get("warnings", [])),
        "config": cfg.model_dump(mode="json"),
        "config_yaml": config_to_yaml(cfg),
    }


def write_run_dir(result: Result, out: Path, *, plots: bool = True) -> list[Path]:
    """Write summary.json, summary_flat.csv (``metric,value`` rows of the summary, nested keys
    dotted: ``per_gpu.3.busy_ms``), requests.csv|parquet, timeseries.csv, run_meta.json and
    plots/*.png."""
    from kvsim.metrics.skew import flatten_summary
    from kvsim.report.atomic import write_dataframe, write_json

    out.mkdir(parents=True, exist_ok=True)
    fmt = result.config.outputs.requests_format
    paths = [
        out / "summary.json",
        out / f"requests.{fmt}",
        out / "timeseries.csv",
        out / "run_meta.json",
    ]
    write_json(paths[0], result.summary)
    write_dataframe(paths[1], result.requests, fmt)
    write_dataframe(paths[2], result.timeseries, "csv")
    write_json(paths[3], result.meta)
    flat = pd.DataFrame(flatten_summary(result.summary), columns=["metric", "value"])
    paths.append(out / "summary_flat.csv")
    write_dataframe(paths[-1], flat, "csv")
    if plots:
        from kvsim.report.plots import write_run_plots

        caps = [g["kv_capacity_bytes"] for g in result.summary.get("per_gpu", [])]
        paths += write_run_plots(out, result.timeseries, result.requests, caps or None)
    return paths
