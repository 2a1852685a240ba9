"""Schema and loader of a cache-replay config (``kvsim cache``).

Layering, lowest first (as for ``kvsim run``)::

    schema defaults  <  --preset (presets/cache/NAME.yaml)  <  config file
                     <  calibration profile  <  --set  <  --seed

The calibration profile (``--calibration NAME|FILE`` or the config's ``calibration:`` key) is
applied by :func:`kvsim.config.calibration.apply_calibration` with ``target="cache"``: its
hardware to ``gpu``, network to ``network``, time model to ``perf`` and tier figures to the
tiers of the same name (the default tiers are filled in first).

Unknown keys are errors; every problem becomes one :class:`~kvsim.errors.ConfigError` whose
message names the dotted key path, e.g. ``tiers[0].policy: unknown policy 'lru2'; known: ...``.
``--set`` accepts list indices as path parts: ``--set tiers.0.capacity=10k``.

Tier transfer figures default by tier name (override any of them per tier):

======  =====================================  ===================  ==========
name    read bandwidth                         write bandwidth      latency
======  =====================================  ===================  ==========
hbm     (top tier: hits cost nothing)          -                    0
dram    the GPU's host link (PCIe)             the GPU's host link  5 us
ssd     7 GB/s (NVMe Gen4)                     5 GB/s               100 us
pool    25 GB/s (200 Gb/s RDMA / CXL pool)     25 GB/s              10 us
======  =====================================  ===================  ==========

(``cxl``, ``remote`` and ``eic`` are aliases of ``pool``.) A tier with another name must give
both bandwidths.

Racks and pools: workers ``w`` are grouped into racks ``w // workers_per_rack``. A tier's
``scope`` says who shares one copy and how it is reached: ``worker`` (private, local),
``rack`` (one object per rack, reached over the intra-rack network ``network.network_*``),
``cluster`` (one object, e.g. a remote SSD store, reached over the cross-rack network
``network.cross_rack_*``). Every transfer in or out of a rack/cluster tier pays its own
latency + the path latency + bytes / min(tier bandwidth, path bandwidth). The legacy
``shared: true`` is one object for all workers with no network path. ``pool.cross_rack``
lets a worker read a block from another rack's ``rack`` tier over the cross-rack path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kvsim.config.catalog import GPUSpec, ModelSpec, gpu_catalog, model_catalog
from kvsim.config.loader import (
    PresetDir,
    _parse_mapping,
    _read_config_file,
    deep_merge,
    first_error_line,
)
from kvsim.config.loader import parse_override as _parse_override
from kvsim.config.schema import PerfConfig
from kvsim.config.topology import TopologyConfig
from kvsim.config.workload import SyntheticWorkload, TraceWorkload
from kvsim.errors import ConfigError
from kvsim.kv.policies.base import policy_names
from kvsim.kv.tiers.capacity import parse_capacity

__all__ = [
    "CacheConfig",
    "PoolConfig",
    "PrefetchConfig",
    "SelectiveConfig",
    "TierConfig",
    "cache_preset_text",
    "list_cache_presets",
    "load_cache_config",
    "validate_cache_config",
]

#: Default (read B/s, write B/s, latency s) by tier name; ``None`` = the GPU's host link.
TIER_DEFAULTS: dict[str, tuple[float | None, float | None, float]] = {
    "hbm": (float("inf"), float("inf"), 0.0),
    "dram": (None, None, 5e-6),
    "ssd": (7e9, 5e9, 100e-6),
    "pool": (25e9, 25e9, 10e-6),
    "cxl": (25e9, 25e9, 10e-6),
    "remote": (25e9, 25e9, 10e-6),
    "eic": (25e9, 25e9, 10e-6),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TierConfig(_Strict):
    """One tier. ``capacity``: blocks (``5000``, ``1k``), bytes (``40GiB``), tokens
    (``100ktok``), a fraction of the trace's unique blocks (``10%``) or ``inf``."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    capacity: str | int = "10%"
    policy: str = "lru"
    policy_params: dict[str, Any] = Field(default_factory=dict)
    read_bandwidth_bytes_per_s: float | None = Field(default=None, gt=0)
    write_bandwidth_bytes_per_s: float | None = Field(default=None, gt=0)
    latency_us: float | None = Field(default=None, ge=0)
    shared: bool = Field(default=False, description="one tier object shared by every worker")
    scope: Literal["worker", "rack", "cluster"] = Field(
        default="worker", description="private, one per rack, or one for the cluster"
    )

    @model_validator(mode="after")
    def _scope(self) -> TierConfig:
        if self.shared and self.scope != "worker":
            raise ValueError("set either shared: true (legacy) or scope, not both")
        return self

    @field_validator("policy")
    @classmethod
    def _known_policy(cls, v: str) -> str:
        names = policy_names()
        if v not in names:
            raise ValueError(f"unknown policy {v!r}; known: {', '.join(names)}")
        return v

    @field_validator("capacity")
    @classmethod
    def _parseable(cls, v: str | int) -> str | int:
        try:
            parse_capacity(v)
        except ConfigError as exc:
            raise ValueError(exc.message) from None
        return v

    def transfer(self, gpu: GPUSpec) -> tuple[float, float, float]:
        """(read B/s, write B/s, latency s), defaults filled in from the tier name."""
        read, write, lat = TIER_DEFAULTS.get(self.name, (0.0, 0.0, 0.0))
        host = gpu.pcie_bandwidth_bytes_per_s
        read = self.read_bandwidth_bytes_per_s or (host if read is None else read)
        write = self.write_bandwidth_bytes_per_s or (host if write is None else write)
        if self.latency_us is not None:
            lat = self.latency_us * 1e-6
        if not read or not write:
            raise ConfigError(
                f"tiers.{self.name}",
                "no default transfer figures for this name (known: "
                + ", ".join(TIER_DEFAULTS)
                + "); set read_bandwidth_bytes_per_s and write_bandwidth_bytes_per_s",
            )
        return read, write, lat


def _default_tiers() -> list[TierConfig]:
    return [TierConfig(name="hbm", capacity="10%"), TierConfig(name="dram", capacity="30%")]


class SelectiveConfig(_Strict):
    """``write_policy: selective``: demote only blocks with prefix depth <= ``max_depth``
    (depth 1 = first block) or with >= ``min_hits`` hits; ``null`` disables a criterion."""

    max_depth: int | None = Field(default=3, ge=1)
    min_hits: int | None = Field(default=2, ge=1)


class PrefetchConfig(_Strict):
    """``session``: when a session's next turn arrives (``lookahead_s`` before it), bring the
    session's previous blocks up from lower tiers on the worker that served its last turn."""

    kind: Literal["none", "session"] = "none"
    lookahead_s: float = Field(default=0.0, ge=0.0)


class PoolConfig(_Strict):
    """``cross_rack``: a block missing from every local tier may be read from another rack's
    ``scope: rack`` tier, paying the cross-rack network path."""

    cross_rack: bool = False


class CacheOutputs(_Strict):
    plots: bool = True
    requests: bool = Field(default=True, description="write requests.csv (one row per request)")
    timeseries_points: int = Field(default=500, ge=2, description="occupancy samples (at most)")


ModelField = Annotated[str | ModelSpec, Field(description="catalog name or inline ModelSpec")]
GPUField = Annotated[str | GPUSpec, Field(description="catalog name or inline GPUSpec")]


def _default_workload() -> SyntheticWorkload:
    return SyntheticWorkload.model_validate(
        {"num_requests": 2000, "rate": 5.0, "sessions": {"think_time_s": 30.0}}
    )


class CacheConfig(_Strict):
    """A trace replay through ``workers`` tier stacks behind ``router`` (no queueing).

    ``block_size`` (tokens per block) defaults to the trace's hash block size (Mooncake: 512);
    a different value re-chunks the hashes (it must divide it or be a multiple of it).
    """

    seed: int = Field(default=0, ge=0)
    calibration: str | None = Field(
        default=None, description="calibration profile applied at load (name or YAML path)"
    )
    model: ModelField = "llama-3-8b"
    gpu: GPUField = "h100"
    tensor_parallel: int = Field(default=1, ge=1)
    perf: PerfConfig = PerfConfig()
    block_size: int | None = Field(default=None, ge=1)
    workers: int = Field(default=1, ge=1)
    workers_per_rack: int | None = Field(
        default=None, ge=1, description="workers per rack (null: one rack holds all workers)"
    )
    network: TopologyConfig = Field(
        default_factory=TopologyConfig,
        description="network figures: network_* = intra-rack, cross_rack_* = across racks",
    )
    pool: PoolConfig = PoolConfig()
    router: str = "prefix_aware"
    router_params: dict[str, Any] = Field(default_factory=dict)
    tiers: list[TierConfig] = Field(default_factory=_default_tiers, min_length=1)
    stacking: Literal["exclusive", "inclusive"] = "exclusive"
    write_policy: Literal["write_back", "write_through", "selective"] = "write_back"
    selective: SelectiveConfig = SelectiveConfig()
    prefetch: PrefetchConfig = PrefetchConfig()
    cache_outputs: bool = Field(
        default=True, description="insert the blocks a turn's output completes (next turn hits)"
    )
    warmup_fraction: float = Field(default=0.0, ge=0.0, lt=1.0)
    workload: Annotated[SyntheticWorkload | TraceWorkload, Field(discriminator="kind")] = Field(
        default_factory=_default_workload
    )
    outputs: CacheOutputs = CacheOutputs()

    @field_validator("router")
    @classmethod
    def _known_router(cls, v: str) -> str:
        from kvsim.cache.routers import router_names

        names = router_names()
        if v not in names:
            raise ValueError(f"unknown router {v!r}; known: {', '.join(names)}")
        return v

    @model_validator(mode="after")
    def _check(self) -> CacheConfig:
        names = [t.name for t in self.tiers]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"tiers: duplicate tier names {dup}")
        if self.tiers[0].shared or self.tiers[0].scope != "worker":
            raise ValueError("tiers[0].shared: the top tier cannot be shared")
        if self.pool.cross_rack and not any(t.scope == "rack" for t in self.tiers):
            raise ValueError("pool.cross_rack: needs a tier with scope: rack")
        if self.pool.cross_rack and sum(t.scope == "rack" for t in self.tiers) > 1:
            raise ValueError("pool.cross_rack: supports one tier with scope: rack")
        through = self.write_policy == "write_through"
        if through and self.stacking == "exclusive" and len(self.tiers) > 1:
            raise ValueError(
                "write_policy: write_through keeps a copy in every tier; set stacking: inclusive"
            )
        self.model_spec  # noqa: B018 - validates the catalog name
        self.gpu_spec  # noqa: B018
        return self

    @property
    def num_racks(self) -> int:
        """Racks of workers: ``ceil(workers / workers_per_rack)`` (1 without racks)."""
        wpr = self.workers_per_rack or self.workers
        return -(-self.workers // wpr)

    def rack_of(self, worker: int) -> int:
        """Rack of ``worker``."""
        return worker // (self.workers_per_rack or self.workers)

    @property
    def model_spec(self) -> ModelSpec:
        if isinstance(self.model, ModelSpec):
            return self.model
        table = model_catalog()
        key = self.model.strip().lower()
        if key not in table:
            raise ValueError(f"model: unknown model {self.model!r}; known: {', '.join(table)}")
        return table[key]

    @property
    def gpu_spec(self) -> GPUSpec:
        if isinstance(self.gpu, GPUSpec):
            return self.gpu
        table = gpu_catalog()
        key = self.gpu.strip().lower()
        if key not in table:
            raise ValueError(f"gpu: unknown gpu {self.gpu!r}; known: {', '.join(table)}")
        return table[key]


# --------------------------------------------------------------------------- errors


def _path(loc: Sequence[Any]) -> str:
    """Dotted key path of a pydantic ``loc``; union branch labels are dropped."""
    out = ""
    for i, item in enumerate(loc):
        if isinstance(item, int):
            out += f"[{item}]"
        elif _is_branch_label(loc, i):
            continue
        else:
            out = f"{out}.{item}" if out else str(item)
    return out


def _is_branch_label(loc: Sequence[Any], i: int) -> bool:
    """Whether ``loc[i]`` names a union branch (``trace``, ``str``, ``function-after[...]``)."""
    item = loc[i]
    if not isinstance(item, str):
        return False
    if i > 0 and loc[i - 1] == "workload" and item in ("synthetic", "trace", "agentic"):
        return True
    return "[" in item or item in ("str", "int", "GPUSpec", "ModelSpec")


def _one_line(exc: ValidationError) -> ConfigError:
    return first_error_line(exc, _path)


# --------------------------------------------------------------------------- loading


_PRESETS = PresetDir("cache", "cache preset")


def list_cache_presets() -> list[tuple[str, str]]:
    """Built-in cache presets as ``(name, description)``, sorted by name."""
    return _PRESETS.list()


def cache_preset_text(name: str) -> str:
    """YAML text of cache preset ``name`` (case-insensitive, ``.yaml`` optional)."""
    return _PRESETS.text(name)


def apply_override(data: dict[str, Any], text: str) -> None:
    """Set one ``a.b.0.c=value`` override in ``data`` (copying mappings/lists on the way, so
    a preset is never mutated). ``tiers.N`` indexes the tier list (defaults filled in)."""
    parts, value = _parse_override(text)
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(where, f"no list item {part} (the list has {len(node)})")
            idx = int(part)
            if last:
                node[idx] = value
            else:
                node[idx] = node = _copy(node[idx], part)
            continue
        if not isinstance(node, dict):
            raise ConfigError(where, f"cannot set {'.'.join(parts)}: its parent is not a mapping")
        if last:
            if part == "kind" and node.get("kind") not in (None, value):
                node.clear()
            node[part] = value
        else:
            child = node.get(part)
            if child is None and part == "tiers":
                child = [t.model_dump() for t in _default_tiers()]
            node[part] = node = _copy(child, part)


def _copy(child: Any, part: str) -> Any:
    if child is None:
        if part == "workload":
            return _default_workload().model_dump()
        return {}
    if isinstance(child, dict):
        return dict(child)
    if isinstance(child, list):
        return list(child)
    raise ConfigError(part, f"is {child!r}, not a mapping")


def _with_kind(data: dict[str, Any]) -> dict[str, Any]:
    """Give a ``workload`` mapping without ``kind`` one (``trace`` if it has a ``path``), so
    that a file's trace workload replaces a preset's synthetic one instead of merging."""
    workload = data.get("workload")
    if isinstance(workload, dict) and "kind" not in workload:
        kind = "trace" if "path" in workload else "synthetic"
        data = {**data, "workload": {"kind": kind, **workload}}
    return data


def validate_cache_config(data: Mapping[str, Any]) -> CacheConfig:
    """Validate a raw mapping; errors become one-line :class:`ConfigError` s."""
    raw = dict(data)
    workload = raw.get("workload")
    if isinstance(workload, dict) and "kind" not in workload:
        raw["workload"] = {"kind": "trace" if "path" in workload else "synthetic", **workload}
    try:
        return CacheConfig.model_validate(raw)
    except ValidationError as exc:
        raise _one_line(exc) from None


def load_cache_config(
    path: str | Path | None = None,
    preset: str | None = None,
    overrides: Sequence[str] = (),
    seed: int | None = None,
    calibration: str | None = None,
) -> CacheConfig:
    """Build a validated :class:`CacheConfig` (see the module doc for the layering).

    ``calibration`` (a shipped profile name or a YAML path) replaces the config's
    ``calibration`` key."""
    data: dict[str, Any] = {}
    if preset is not None:
        data = _parse_mapping(cache_preset_text(preset), f"cache preset {preset}")
    if path is not None:
        data = deep_merge(data, _with_kind(_read_config_file(path)))
    profile = calibration if calibration is not None else data.get("calibration")
    if profile is not None:
        from kvsim.config.calibration import apply_calibration

        if not isinstance(profile, str):
            raise ConfigError("calibration", "expected a profile name or a YAML path")
        if "tiers" not in data:
            data["tiers"] = [t.model_dump() for t in _default_tiers()]
        data = apply_calibration(data, profile, target="cache")
        data["calibration"] = profile
    for text in overrides:
        apply_override(data, text)
    if data.get("calibration") != profile:
        raise ConfigError(
            "calibration", "set the profile with --calibration or in the config file, not --set"
        )
    if seed is not None:
        data["seed"] = seed
    return validate_cache_config(data)
