"""Capacity search: the max request rate meeting SLOs per config, and the cheapest config.

A search spec (YAML)::

    base: smoke
    set: {workload.num_requests: 400}
    grid: {gpu: [h100, a100-80gb], cluster.tensor_parallel: [1, 2]}
    rate: {key: workload.rate, low: 1, high: 200, tolerance: 1.0}
    slos:
      - {metric: p99_ttft_ms, max: 2000}      # strictly below
      - {metric: p99_tpot_ms, max: 200}
      - {metric: completion_rate, min: 1.0}   # at least
    costs: {h100: 2.5}                        # USD per GPU-hour, overrides the catalog
    targets: [50, 200]                        # req/s to provision for

For every grid config, :func:`bisect_max` probes the rate: if the SLOs fail at ``low`` the
config is ``infeasible`` (max rate 0); if they hold at ``high`` it is ``above_range`` (max
rate reported as ``high``, a lower bound); otherwise bisection keeps ``lo`` feasible and
``hi`` infeasible until ``hi - lo <= tolerance`` and reports ``lo``. Assuming feasibility is
monotone in the rate, the true threshold lies in ``[lo, hi)``.

Cost of a config: number of GPUs (instances x tensor parallel) x USD per GPU-hour. Cost per
1M requests at the max rate = cost_per_hour / (max_rate * 3600) * 1e6. For a target rate T
the config is replicated ``ceil(T / max_rate)`` times; the cheapest such deployment wins
(ties: lowest config index).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from kvsim.errors import ConfigError, KvsimError
from kvsim.sweep.backends import map_unordered
from kvsim.sweep.drivers import get_driver
from kvsim.sweep.expand import Base, config_key, load_point_config, override_text, resolve_base
from kvsim.sweep.spec import _check_paths, _Strict, load_spec_mapping, spec_error

__all__ = [
    "BisectResult",
    "RateSearch",
    "SearchResult",
    "SearchSpec",
    "SloSpec",
    "bisect_max",
    "load_search_spec",
    "run_search",
    "slo_ok",
]


class SloSpec(_Strict):
    """One SLO: ``metric < max`` or ``metric >= min`` on the run summary (exactly one)."""

    metric: str
    max: float | None = None
    min: float | None = None

    @model_validator(mode="after")
    def _check(self) -> SloSpec:
        if (self.max is None) == (self.min is None):
            raise ValueError(f"slo {self.metric}: give exactly one of max or min")
        return self


class RateSearch(_Strict):
    """The searched key (a rate in req/s), its range and the bisection tolerance."""

    key: str = "workload.rate"
    low: float = Field(1.0, gt=0)
    high: float = Field(100.0, gt=0)
    tolerance: float = Field(1.0, gt=0, description="stop when hi - lo <= tolerance (req/s)")

    @model_validator(mode="after")
    def _check(self) -> RateSearch:
        if self.low >= self.high:
            raise ValueError("rate.low must be < rate.high")
        return self


class SearchSpec(_Strict):
    """A capacity search: base config, a grid of configs, the rate range, SLOs, costs."""

    name: str = ""
    description: str = ""
    base: str = "default"
    set_: dict[str, Any] = Field(default_factory=dict, alias="set")
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    rate: RateSearch = RateSearch()
    slos: list[SloSpec] = Field(min_length=1)
    costs: dict[str, float] = Field(default_factory=dict)
    targets: list[float] = Field(default_factory=list)
    seed: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _check(self) -> SearchSpec:
        _check_paths("set", self.set_)
        _check_paths("grid", self.grid)
        for key, values in self.grid.items():
            if not values:
                raise ValueError(f"grid.{key}: needs at least one value")
        if self.rate.key in self.grid or self.rate.key in self.set_:
            raise ValueError(f"rate.key: {self.rate.key} is searched; do not also set it")
        if any(c < 0 for c in self.costs.values()):
            raise ValueError("costs: must be >= 0 USD per GPU-hour")
        if any(t <= 0 for t in self.targets):
            raise ValueError("targets: rates must be > 0")
        return self

    @property
    def axis_keys(self) -> list[str]:
        return list(self.grid)


def load_search_spec(source: str | Path) -> tuple[SearchSpec, Path | None]:
    """Load and validate a :class:`SearchSpec` from a YAML file."""
    data, spec_dir, origin = load_spec_mapping(source)
    try:
        spec = SearchSpec.model_validate(data)
    except ValidationError as exc:
        raise spec_error(exc, origin) from None
    return spec, spec_dir


# --------------------------------------------------------------------------- bisection


@dataclass(slots=True)
class BisectResult:
    """``max_rate`` (feasible, 0 if none), ``upper`` (infeasible, None if never seen),
    ``status`` (ok | infeasible | above_range) and every probe as ``(rate, feasible)``."""

    max_rate: float
    upper: float | None
    status: str
    probes: list[tuple[float, bool]] = field(default_factory=list)


def bisect_max(
    feasible: Callable[[float], bool], low: float, high: float, tolerance: float
) -> BisectResult:
    """Largest rate in ``[low, high]`` with ``feasible(rate)``, to within ``tolerance``."""
    probes: list[tuple[float, bool]] = []

    def probe(r: float) -> bool:
        ok = bool(feasible(r))
        probes.append((r, ok))
        return ok

    if not probe(low):
        return BisectResult(0.0, low, "infeasible", probes)
    if probe(high):
        return BisectResult(high, None, "above_range", probes)
    lo, hi = low, high
    while hi - lo > tolerance:
        mid = (lo + hi) / 2
        if probe(mid):
            lo = mid
        else:
            hi = mid
    return BisectResult(lo, hi, "ok", probes)


def slo_ok(summary: dict[str, Any], slos: list[SloSpec]) -> bool:
    """True iff every SLO holds; a missing or null metric fails its SLO."""
    for s in slos:
        v = summary.get(s.metric)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or math.isnan(v):
            return False
        if s.max is not None and not v < s.max:
            return False
        if s.min is not None and not v >= s.min:
            return False
    return True


# --------------------------------------------------------------------------- one config


@dataclass(slots=True)
class SearchTask:
    """One config's bisection (picklable; runs in a worker)."""

    index: int
    base: Base
    overrides: list[str]
    seed: int | None
    rate: RateSearch
    slos: list[SloSpec]


@dataclass(slots=True)
class SearchOutcome:
    index: int
    result: BisectResult | None
    metrics_at_max: dict[str, Any]
    error: str = ""


def search_config(task: SearchTask) -> SearchOutcome:
    """Bisect one config's rate; a failing simulation gives ``error``, never raises."""
    from kvsim.api import simulate

    driver = get_driver("run")
    summaries: dict[float, dict[str, Any]] = {}

    def feasible(rate: float) -> bool:
        overrides = [*task.overrides, override_text(task.rate.key, rate)]
        cfg = driver.load(task.base.path, task.base.preset, overrides, task.seed)
        summary = simulate(cfg, plots=False).summary
        summaries[rate] = summary
        return slo_ok(summary, task.slos)

    try:
        res = bisect_max(feasible, task.rate.low, task.rate.high, task.rate.tolerance)
    except KvsimError as exc:
        return SearchOutcome(task.index, None, {}, error=" ".join(str(exc).split()))
    except Exception as exc:
        return SearchOutcome(task.index, None, {}, error=f"{type(exc).__name__}: {exc}")
    at_max = summaries.get(res.max_rate, {})
    names = [s.metric for s in task.slos]
    return SearchOutcome(task.index, res, {m: at_max.get(m) for m in names})


# --------------------------------------------------------------------------- costs


def _gpu_cost(cfg: Any, gpu: Any, costs: dict[str, float]) -> tuple[str, float]:
    from kvsim.config.loader import resolve_gpu

    spec = resolve_gpu(cfg.model_copy(update={"gpu": gpu}))
    lower = {k.lower(): v for k, v in costs.items()}
    if spec.name.lower() in lower:
        return spec.name, float(lower[spec.name.lower()])
    if spec.cost_per_hour is None:
        raise ConfigError(
            f"costs.{spec.name}",
            f"no cost per GPU-hour for gpu '{spec.name}'; add costs: {{{spec.name}: USD}}",
        )
    return spec.name, float(spec.cost_per_hour)


def cluster_cost(cfg: Any, costs: dict[str, float]) -> tuple[int, float, str]:
    """``(num GPUs, USD per hour, GPU names)`` of a serving config.

    Uses ``cluster.instances`` (count x tensor_parallel per group, each with its own GPU)
    when the schema has it and it is non-empty, else ``num_instances x tensor_parallel``.
    """
    groups = list(getattr(cfg.cluster, "instances", None) or [])
    if not groups:
        n = cfg.cluster.num_instances * cfg.cluster.tensor_parallel
        name, per_gpu = _gpu_cost(cfg, cfg.gpu, costs)
        return n, n * per_gpu, name
    total_gpus, total_cost, names = 0, 0.0, []
    for g in groups:
        n = int(getattr(g, "count", 1)) * int(getattr(g, "tensor_parallel", 1))
        name, per_gpu = _gpu_cost(cfg, getattr(g, "gpu", cfg.gpu), costs)
        total_gpus += n
        total_cost += n * per_gpu
        names.append(name)
    return total_gpus, total_cost, "+".join(dict.fromkeys(names))


# --------------------------------------------------------------------------- the search


@dataclass(slots=True)
class SearchResult:
    """One row per config (``rows``, index order) and the cheapest deployment per target."""

    rows: list[dict[str, Any]]
    cheapest: list[dict[str, Any]]
    paths: list[Path] = field(default_factory=list)


def _configs(spec: SearchSpec, spec_dir: Path | None) -> tuple[list[SearchTask], list[dict]]:
    """One task per grid config, validated at ``rate.low``; plus each config's cost row
    (``key`` hashes the config at ``rate.low``, so it names the config, not a rate)."""
    driver = get_driver("run")
    base = resolve_base(spec.base, spec_dir)
    fixed = [override_text(k, v) for k, v in spec.set_.items()]
    tasks: list[SearchTask] = []
    rows: list[dict[str, Any]] = []
    for i, values in enumerate(itertools.product(*spec.grid.values())):
        axes = dict(zip(spec.grid, values, strict=True))
        overrides = fixed + [override_text(k, v) for k, v in axes.items()]
        label = f"{i}: " + (", ".join(f"{k}={v}" for k, v in axes.items()) or "base config")
        probe = [*overrides, override_text(spec.rate.key, spec.rate.low)]
        cfg = load_point_config(driver, base, probe, spec.seed, label)
        num_gpus, cost, gpu = cluster_cost(cfg, spec.costs)
        dump = driver.dump(cfg)
        rows.append(
            {
                "config": i,
                "key": config_key("search", dump),
                **axes,
                "gpu_type": gpu,
                "num_gpus": num_gpus,
                "cost_per_hour_usd": cost,
            }
        )
        tasks.append(SearchTask(i, base, overrides, spec.seed, spec.rate, list(spec.slos)))
    return tasks, rows


def _finish_row(row: dict[str, Any], out: SearchOutcome) -> None:
    res = out.result
    row["status"] = "failed" if res is None else res.status
    row["error"] = out.error
    row["max_rate"] = res.max_rate if res is not None else None
    row["upper_rate"] = res.upper if res is not None else None
    row["num_probes"] = len(res.probes) if res is not None else 0
    rate = row["max_rate"]
    row["cost_per_1m_requests_usd"] = (
        row["cost_per_hour_usd"] / (rate * 3600.0) * 1e6 if rate else None
    )
    for m, v in out.metrics_at_max.items():
        row[f"{m}_at_max"] = v
    row["probes"] = [{"rate": r, "feasible": ok} for r, ok in (res.probes if res else [])]


def cheapest_per_target(
    rows: list[dict[str, Any]], targets: list[float], axis_keys: list[str]
) -> list[dict[str, Any]]:
    """For each target rate: the config whose ``ceil(target / max_rate)`` replicas cost least."""
    out = []
    for t in targets:
        best: dict[str, Any] = {"target_rate": t, "config": None}
        best_cost = math.inf
        for r in rows:
            rate = r.get("max_rate")
            if not rate:
                continue
            replicas = math.ceil(t / rate - 1e-9)
            cost = replicas * r["cost_per_hour_usd"]
            if cost < best_cost:
                best_cost = cost
                best = {
                    "target_rate": t,
                    "config": r["config"],
                    "axes": {k: r.get(k) for k in axis_keys},
                    "replicas": replicas,
                    "num_gpus": replicas * r["num_gpus"],
                    "cost_per_hour_usd": cost,
                    "cost_per_1m_requests_usd": cost / (t * 3600.0) * 1e6,
                }
        out.append(best)
    return out


def run_search(
    spec: SearchSpec,
    out: Path,
    *,
    spec_dir: Path | None = None,
    backend: str = "local",
    workers: int | None = None,
    address: str | None = None,
    plots: bool = True,
    on_progress: Callable[[int, int, int], None] | None = None,
) -> SearchResult:
    """Bisect every config (in parallel), write search.csv/json and plots/pareto.png."""
    import pandas as pd

    from kvsim.report.atomic import atomic_write_bytes, write_dataframe, write_json

    tasks, rows = _configs(spec, spec_dir)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    if on_progress:
        on_progress(0, 0, len(tasks))
    results = map_unordered(search_config, tasks, backend=backend, workers=workers, address=address)
    for done, (i, outcome) in enumerate(results, start=1):
        _finish_row(rows[i], outcome)
        failed += outcome.result is None
        if on_progress:
            on_progress(done, failed, len(tasks))
    cheapest = cheapest_per_target(rows, list(spec.targets), spec.axis_keys)
    result = SearchResult(rows, cheapest)
    table = pd.DataFrame([{k: v for k, v in r.items() if k != "probes"} for r in rows])
    write_dataframe(out / "search.csv", table, "csv")
    write_json(
        out / "search.json",
        {
            "spec": spec.model_dump(mode="json", by_alias=True),
            "configs": rows,
            "cheapest": cheapest,
        },
    )
    result.paths = [out / "search.csv", out / "search.json"]
    if plots:
        from kvsim.sweep.plots import pareto_png

        (out / "plots").mkdir(exist_ok=True)
        path = out / "plots" / "pareto.png"
        atomic_write_bytes(path, pareto_png(rows, [*spec.axis_keys]))
        result.paths.append(path)
    return result
