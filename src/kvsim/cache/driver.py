"""``run_cache``: one policy/capacity point of the cache replay, and its run directory.

With ``out_dir`` it writes (atomically; same config + seed = same bytes)::

    summary.json      the flat summary (CacheResult.summary) plus "config"
    requests.csv      one row per request (CacheResult.table), unless outputs.requests is off
    tiers.csv         one row per tier: capacity, policy, counters of the evaluated split
    timeseries.csv    tier occupancy (blocks, summed over workers) after sampled requests
    run_meta.json     config snapshot, seed, version, git commit, time-model figures
    plots/tier_occupancy.png
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kvsim import __version__
from kvsim.cache.config import CacheConfig
from kvsim.cache.metrics import rack_summary, summarize
from kvsim.cache.replay import CacheReplay, PreparedTrace, build_workers, prepare_trace, snapshot
from kvsim.cache.routers.base import Worker, create_router
from kvsim.cache.timing import PrefillTimer
from kvsim.config.workload import TraceWorkload
from kvsim.kv.policies.base import policy_class
from kvsim.kv.tiers.capacity import parse_capacity
from kvsim.kv.tiers.tier import TierSpec
from kvsim.perf.roofline import RooflineModel
from kvsim.provenance import git_commit
from kvsim.report.atomic import write_dataframe, write_json
from kvsim.workload.request import Request
from kvsim.workload.traces import load_workload

__all__ = ["CacheResult", "load_requests", "run_cache", "tier_specs", "write_cache_outputs"]

REPO_ROOT = Path(__file__).resolve().parents[3]
_JITTER_STREAM = 0x4E4554  # second key of the network-variance generator: [seed, this]


@dataclass
class CacheResult:
    """``summary``: flat JSON-able scalars of one point; ``table``: one row per request;
    ``tiers``: one row per tier; ``timeseries``: tier occupancy samples; ``meta``: run_meta."""

    summary: dict[str, Any]
    table: pd.DataFrame
    tiers: pd.DataFrame
    timeseries: pd.DataFrame
    meta: dict[str, Any]


def _resolve_path(path: str) -> str:
    """A relative trace path is tried against the working directory, then the repo root."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return path
    alt = REPO_ROOT / p
    return str(alt) if alt.exists() else path


def load_requests(cfg: CacheConfig) -> list[Request]:
    """The workload's requests (synthetic ones drawn from ``default_rng(cfg.seed)``)."""
    workload = cfg.workload
    if isinstance(workload, TraceWorkload):
        workload = workload.model_copy(update={"path": _resolve_path(workload.path)})
    return load_workload(workload, np.random.default_rng(cfg.seed))


def tier_specs(cfg: CacheConfig, block_size: int, unique_blocks: int) -> list[TierSpec]:
    """The configured tiers with capacities resolved to blocks; ``scope: rack`` tiers get the
    intra-rack network path, ``scope: cluster`` ones the cross-rack path (``cfg.network``)."""
    kv = cfg.model_spec.kv_bytes_per_token
    levels = cfg.network.level_figures()
    paths = {"worker": (math.inf, 0.0), "rack": levels["network"], "cluster": levels["cross-rack"]}
    specs = []
    for i, t in enumerate(cfg.tiers):
        where = f"tiers[{i}].capacity"
        blocks = parse_capacity(t.capacity, where).to_blocks(
            block_size=block_size, kv_bytes_per_token=kv, unique_blocks=unique_blocks, where=where
        )
        read, write, lat = t.transfer(cfg.gpu_spec)
        specs.append(
            TierSpec(
                name=t.name,
                capacity_blocks=blocks,
                policy=t.policy,
                policy_params=dict(t.policy_params),
                read_bandwidth_bytes_per_s=read,
                write_bandwidth_bytes_per_s=write,
                latency_s=lat,
                shared=t.shared or t.scope != "worker",
                per_rack=t.scope == "rack",
                path_bandwidth_bytes_per_s=paths[t.scope][0],
                path_latency_s=paths[t.scope][1],
            )
        )
    return specs


def _prefixed(prefix: str, key: str) -> str:
    return key if key.startswith(prefix) else prefix + key


def _train(workers: list[Worker], trace: PreparedTrace) -> dict[str, float]:
    """Call ``fit(keys, times)`` on every policy that declares ``needs_training``, with the
    warm-up split's access sequence; return the first policy's training figures."""
    policies = {id(t.policy): t.policy for w in workers for t in w.stack.tiers}
    trainees = [p for p in policies.values() if getattr(type(p), "needs_training", False)]
    if not trainees:
        return {}
    keys: list[int] = []
    times: list[float] = []
    for r in range(trace.num_warmup):
        blocks = (*trace.hashes[r], *trace.out_hashes[r])
        keys.extend(blocks)
        times.extend([trace.requests[r].arrival_s] * len(blocks))
    figures: dict[str, float] = {}
    for pol in trainees:
        got = pol.fit(keys, times)  # type: ignore[attr-defined]
        if not figures and isinstance(got, dict):
            figures = {_prefixed("train_", k): float(v) for k, v in got.items()}
    return figures


def _prediction_metrics(workers: list[Worker]) -> dict[str, float]:
    """``eval_*`` prediction figures of the first trained policy (top tier of worker 0)."""
    for tier in workers[0].stack.tiers:
        pol = tier.policy
        if getattr(type(pol), "needs_training", False):
            get = getattr(pol, "prediction_metrics", None)
            got = get() if callable(get) else {}
            return {_prefixed("eval_", k): float(v) for k, v in (got or {}).items()}
    return {}


def run_cache(
    cfg: CacheConfig,
    *,
    out_dir: Path | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    requests: list[Request] | None = None,
) -> CacheResult:
    """Replay the workload through the configured workers and tiers (module doc).

    ``requests`` (optional) replaces the configured workload, e.g. to reuse one loaded trace
    over many points.
    """
    reqs = requests if requests is not None else load_requests(cfg)
    needs_nu = any(policy_class(t.policy).needs_next_use for t in cfg.tiers)
    trace = prepare_trace(
        reqs,
        cfg.block_size,
        cache_outputs=cfg.cache_outputs,
        warmup_fraction=cfg.warmup_fraction,
        with_next_use=needs_nu,
    )
    specs = tier_specs(cfg, trace.block_size, trace.unique_blocks)
    block_bytes = trace.block_size * cfg.model_spec.kv_bytes_per_token
    workers = _workers(cfg, specs, block_bytes)
    training = _train(workers, trace)
    roofline = RooflineModel.from_specs(cfg.model_spec, cfg.gpu_spec, cfg.perf, cfg.tensor_parallel)
    replay = CacheReplay(
        trace,
        workers,
        create_router(cfg.router, **cfg.router_params),
        PrefillTimer(roofline),
        prefetch_lookahead_s=cfg.prefetch.lookahead_s if cfg.prefetch.kind == "session" else None,
        timeseries_points=cfg.outputs.timeseries_points,
    )
    replay.run(on_progress)
    table = pd.DataFrame(replay.rows)
    pending = sum(w.stack.num_prefetch_pending for w in workers)
    summary = _head(cfg, trace, specs, block_bytes)
    names = [s.name for s in specs]
    final = snapshot(workers)
    summary.update(
        summarize(table, names, trace.block_size, replay.warmup_counters, final, pending)
    )
    summary.update(
        rack_summary(table, cfg.workers, cfg.workers_per_rack or cfg.workers, replay.has_remote)
    )
    summary.update(training)
    summary.update(_prediction_metrics(workers))
    meta = _meta(cfg, trace, roofline)
    tiers = _tiers_frame(specs, summary)
    result = CacheResult(summary, table, tiers, pd.DataFrame(replay.samples), meta)
    if out_dir is not None:
        write_cache_outputs(
            result, Path(out_dir), plots=cfg.outputs.plots, requests_csv=cfg.outputs.requests
        )
    return result


def _jitter(cfg: CacheConfig) -> Callable[[], float] | None:
    """Network variance factors for loads over the network (``cfg.network.jitter_cv`` /
    ``tail_*``), from a generator seeded by ``cfg.seed`` only; None when variance is off."""
    from kvsim.serving.topology import NetworkVariance

    variance = NetworkVariance.from_config(cfg.network)
    if not variance.enabled:
        return None
    rng = np.random.default_rng([cfg.seed, _JITTER_STREAM])

    def draw() -> float:
        return variance.factor(rng)

    return draw


def _workers(cfg: CacheConfig, specs: list[TierSpec], block_bytes: float) -> list[Worker]:
    """The configured workers: their racks, tier stacks and cross-rack pool access."""
    return build_workers(
        specs,
        cfg.workers,
        block_bytes,
        inclusive=cfg.stacking == "inclusive",
        write_policy=cfg.write_policy,
        max_depth=cfg.selective.max_depth,
        min_hits=cfg.selective.min_hits,
        workers_per_rack=cfg.workers_per_rack,
        cross_rack_path=cfg.network.level_figures()["cross-rack"] if cfg.pool.cross_rack else None,
        network_jitter=_jitter(cfg),
    )


def _tiers_frame(specs: list[TierSpec], summary: dict[str, Any]) -> pd.DataFrame:
    """One row per tier: its figures and the evaluated split's counters."""
    counters = ("hits", "inserts", "evictions", "promotions", "demotions", "prefetches")
    return pd.DataFrame(
        [
            {
                "tier": s.name,
                "policy": s.policy,
                "capacity_blocks_per_worker": s.capacity_blocks,
                "read_bandwidth_bytes_per_s": s.read_bandwidth_bytes_per_s,
                "write_bandwidth_bytes_per_s": s.write_bandwidth_bytes_per_s,
                "latency_s": s.latency_s,
                "shared": s.shared,
                "per_rack": s.per_rack,
                "path_bandwidth_bytes_per_s": s.path_bandwidth_bytes_per_s,
                "path_latency_s": s.path_latency_s,
            }
            | {k: summary[f"{k}_{s.name}"] for k in counters}
            for s in specs
        ]
    )


def _head(
    cfg: CacheConfig, trace: PreparedTrace, specs: list[TierSpec], block_bytes: float
) -> dict[str, Any]:
    top = cfg.tiers[0]
    head: dict[str, Any] = {
        "policy": top.policy,
        "capacity": str(top.capacity),
        "capacity_blocks": specs[0].capacity_blocks,
        "top_tier": top.name,
        "workers": cfg.workers,
        "router": cfg.router,
        "stacking": cfg.stacking,
        "write_policy": cfg.write_policy,
        "prefetch": cfg.prefetch.kind,
        "block_size": trace.block_size,
        "block_bytes": block_bytes,
        "unique_blocks": trace.unique_blocks,
        "num_requests_total": len(trace.requests),
        "num_warmup_requests": trace.num_warmup,
    }
    for s in specs:
        head[f"capacity_blocks_{s.name}"] = s.capacity_blocks
        head[f"policy_{s.name}"] = s.policy
    return head


def _meta(cfg: CacheConfig, trace: PreparedTrace, roofline: RooflineModel) -> dict[str, Any]:
    return {
        "kvsim_version": __version__,
        "git_commit": git_commit(),
        "seed": cfg.seed,
        "num_requests": len(trace.requests),
        "block_size": trace.block_size,
        "unique_blocks": trace.unique_blocks,
        "model": cfg.model_spec.model_dump(),
        "gpu": cfg.gpu_spec.model_dump(),
        "time_model": roofline.describe(),
        "config": cfg.model_dump(mode="json"),
        "calibration": _calibration(cfg),
    }


def _calibration(cfg: CacheConfig) -> dict[str, Any] | None:
    """The applied calibration profile (for run_meta), or None."""
    if cfg.calibration is None:
        return None
    from kvsim.config.calibration import load_profile

    return load_profile(cfg.calibration)


def write_cache_outputs(
    result: CacheResult, out_dir: Path, *, plots: bool = True, requests_csv: bool = True
) -> list[Path]:
    """Write one point's run directory (module doc); return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "summary.json", out_dir / "tiers.csv", out_dir / "timeseries.csv"]
    write_json(paths[0], {**result.summary, "config": result.meta["config"]})
    write_dataframe(paths[1], result.tiers)
    write_dataframe(paths[2], result.timeseries)
    if requests_csv:
        paths.append(out_dir / "requests.csv")
        write_dataframe(paths[-1], result.table)
    paths.append(out_dir / "run_meta.json")
    write_json(paths[-1], result.meta)
    if plots:
        from kvsim.cache.plots import write_occupancy_plot

        paths.append(write_occupancy_plot(out_dir / "plots" / "tier_occupancy.png", result))
    return paths
