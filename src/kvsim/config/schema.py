"""The run configuration (pydantic v2). Unknown keys are errors; every field has a default.

A config is a YAML mapping; ``kvsim presets`` lists built-in ones. Sections::

    seed, model, gpu, cluster, scheduler, cache, perf, workload, outputs, limits
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kvsim.config.catalog import GPUSpec, ModelSpec
from kvsim.config.workload import SyntheticWorkload, TraceWorkload

try:  # written by the topology work stream; a stand-in keeps the schema importable until then
    from kvsim.config.topology import TopologyConfig
except ImportError:  # pragma: no cover

    class TopologyConfig(BaseModel):  # type: ignore[no-redef]
        """Placeholder until kvsim.config.topology exists."""

        model_config = ConfigDict(extra="allow", frozen=True)


__all__ = [
    "CacheConfig",
    "ClusterConfig",
    "DecodeRoutingConfig",
    "EngineTierConfig",
    "GlobalQueueConfig",
    "InstanceSpec",
    "LimitsConfig",
    "OutputsConfig",
    "PDConfig",
    "PerfConfig",
    "SchedulerConfig",
    "SimConfig",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


ModelField = Annotated[str | ModelSpec, Field(description="catalog name or inline ModelSpec")]
GPUField = Annotated[str | GPUSpec, Field(description="catalog name or inline GPUSpec")]


def _router_names() -> list[str]:
    from kvsim.serving.routing import router_names

    return router_names()


def _queue_names() -> list[str]:
    from kvsim.serving.queues import queue_policy_names

    return queue_policy_names()


class DecodeRoutingConfig(_Strict):
    """Phase-level routing: after prefill, the decode moves to the instance with the lowest
    ``load / decode_tokens_per_s + handoff_weight * handoff_s`` (the prefill instance has no
    handoff cost) when that is strictly lower than staying."""

    enabled: bool = False
    handoff_weight: float = Field(1.0, ge=0.0)


class GlobalQueueConfig(_Strict):
    """Cluster-wide FIFO queue used when every instance is full (``scheduler.max_queue``)."""

    enabled: bool = True
    max_depth: int | None = Field(None, ge=0)


class InstanceSpec(_Strict):
    """``count`` identical model replicas on one GPU type (``tensor_parallel`` GPUs each).

    Overrides: ``vram_bytes`` replaces the replica's device memory (``HBM x TP``);
    ``prefill_tokens_per_s`` / ``decode_tokens_per_s`` rescale the roofline's compute /
    memory coefficients so that a one-token prefill / one-sequence decode runs at that rate;
    ``max_num_seqs``, ``max_decode_batch`` (cap on the running batch), and the efficiencies
    replace the scheduler/perf values for these replicas."""

    name: str | None = None
    gpu: GPUField = "h100"
    count: int = Field(1, ge=1)
    tensor_parallel: int = Field(1, ge=1)
    node: int | None = Field(None, ge=0)
    vram_bytes: float | None = Field(None, gt=0)
    prefill_tokens_per_s: float | None = Field(None, gt=0)
    decode_tokens_per_s: float | None = Field(None, gt=0)
    max_num_seqs: int | None = Field(None, ge=1)
    max_decode_batch: int | None = Field(None, ge=1)
    compute_efficiency: float | None = Field(None, gt=0.0, le=1.0)
    memory_efficiency: float | None = Field(None, gt=0.0, le=1.0)


class PDConfig(_Strict):
    """Prefill/decode disaggregation (docs/pd.md). Arrivals go to the prefill pool only;
    after its prefill every request's KV moves to a decode instance, which reserves the
    blocks of its whole KV (prompt + output) first; with no decode room the
    request waits, its KV held by the prefill instance (never over-committed).

    Pool sizes: ``prefill_instances`` (P of the N instances) or ``ratio`` ``"P:D"``; with
    ``placement: per_rack`` every rack gets ``round(rack_size * P / (P + D))`` prefill GPUs
    (at least 1, at most rack_size - 1), its first GPUs; ``any`` makes the first P instances
    prefill. ``transfer``: ``push`` (the prefill side writes at prefill end), ``pull`` (the
    decode side reads after a ``pull_request_us`` control message), ``pull_on_demand`` (the
    decode side reads only once it has a free batch slot, so the KV waits on the prefill
    GPU). ``pipelined`` with ``layer_chunks`` L: the decode starts when the first of L equal
    chunks has arrived (TTFT pays 1/L of the bytes); the rest follows, and the prefill copy
    is freed when all chunks are there. ``decode_candidates`` (d) decode instances are
    sampled per request when a pool is larger than d (same rack first); the lowest
    ``(load + 1) / decode_tokens_per_s + transfer_weight * transfer_s`` among those with
    room wins."""

    enabled: bool = False
    prefill_instances: int | None = Field(None, ge=1)
    ratio: str | None = Field(None, description='"P:D", e.g. "1:3"')
    placement: Literal["per_rack", "any"] = "per_rack"
    transfer: Literal["push", "pull", "pull_on_demand"] = "push"
    pipelined: bool = False
    layer_chunks: int = Field(1, ge=1)
    decode_candidates: int = Field(4, ge=1)
    transfer_weight: float = Field(1.0, ge=0.0)
    pull_request_us: float = Field(10.0, ge=0.0)

    @field_validator("ratio")
    @classmethod
    def _ratio(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = v.split(":")
        ok = len(parts) == 2 and all(p.strip().isdigit() and int(p) > 0 for p in parts)
        if not ok:
            raise ValueError(f'ratio must be "P:D" with positive integers, got {v!r}')
        return v

    def ratio_pair(self) -> tuple[int, int] | None:
        """``(P, D)`` of ``ratio`` or None."""
        if self.ratio is None:
            return None
        p, d = self.ratio.split(":")
        return int(p), int(d)


class ClusterConfig(_Strict):
    """Model replicas. With ``instances`` empty: ``num_instances`` identical replicas of the
    top-level ``gpu`` with ``tensor_parallel`` GPUs each; otherwise the listed groups."""

    num_instances: int = Field(1, ge=1)
    tensor_parallel: int = Field(1, ge=1)
    router: str = "round_robin"
    router_params: dict[str, Any] = Field(default_factory=dict)
    decode_routing: DecodeRoutingConfig = DecodeRoutingConfig()
    global_queue: GlobalQueueConfig = GlobalQueueConfig()
    max_retries: int = Field(0, ge=0)
    instances: list[InstanceSpec] = Field(default_factory=list)
    topology: TopologyConfig | None = None
    pd: PDConfig = PDConfig()

    @model_validator(mode="after")
    def _check_pd(self) -> ClusterConfig:
        if self.pd.enabled and self.decode_routing.enabled:
            raise ValueError("pd.enabled and decode_routing.enabled exclude each other")
        return self

    @field_validator("router")
    @classmethod
    def _known_router(cls, v: str) -> str:
        names = _router_names()
        if v not in names:
            raise ValueError(f"unknown router {v!r}; known: {', '.join(names)}")
        return v


class SchedulerConfig(_Strict):
    """Per-instance continuous batching, vLLM-style, plus admission and memory pressure.

    KV capacity: ``kv_capacity_blocks`` if set, else ``kv_capacity_bytes``, else
    ``gpu_memory_utilization * VRAM - weights`` (VRAM = HBM x TP, or an instance's
    ``vram_bytes``).

    Memory pressure (a running sequence needs a block that is not free): ``preempt`` the
    back of the batch (``preemption``: recompute, or swap with PCIe transfer time);
    ``evict`` a victim (``evict_victim``: first arrived, or least recently admitted) that is
    re-queued and recomputed; ``reject`` the sequence (it fails late; at admission a request
    whose blocks are not free is rejected at once).
    """

    max_num_seqs: int = Field(256, ge=1)
    max_num_batched_tokens: int = Field(8192, ge=1)
    chunked_prefill: bool = True
    block_size: int = Field(16, ge=1)
    gpu_memory_utilization: float = Field(0.9, gt=0.0, le=1.0)
    kv_capacity_blocks: int | None = Field(None, ge=1)
    kv_capacity_bytes: float | None = Field(None, gt=0)
    admission: Literal["safe", "lazy"] = "lazy"
    preemption: Literal["recompute", "swap"] = "recompute"
    queue_policy: str = "fifo"
    fair_weights: dict[str, float] = Field(
        default_factory=dict, description="weight per request class (priority) for 'fair'"
    )
    max_waiting: int | None = Field(
        None, ge=0, description="reject arrivals when this many are already waiting"
    )
    max_queue: int | None = Field(
        None, ge=1, description="route to an instance only while queued + active < max_queue"
    )
    memory_pressure: Literal["reject", "evict", "preempt"] = "preempt"
    evict_victim: Literal["fifo", "lru"] = "fifo"

    @field_validator("queue_policy")
    @classmethod
    def _known_queue(cls, v: str) -> str:
        names = _queue_names()
        if v not in names:
            raise ValueError(f"unknown queue policy {v!r}; known: {', '.join(names)}")
        return v

    @field_validator("fair_weights")
    @classmethod
    def _positive_weights(cls, v: dict[str, float]) -> dict[str, float]:
        for k, w in v.items():
            if not w > 0:
                raise ValueError(f"weight of class {k!r} must be > 0 (got {w!r})")
        return v


def _policy_names() -> list[str]:
    from kvsim.kv.policies.base import policy_names

    return policy_names()


def _check_policy(v: str) -> str:
    from kvsim.kv.policies.base import policy_class

    names = _policy_names()
    if v not in names:
        raise ValueError(f"unknown policy {v!r}; known: {', '.join(names)}")
    cls = policy_class(v)
    if cls.needs_next_use or cls.needs_training:
        raise ValueError(f"{v!r} needs next-use annotations or training (use `kvsim cache`)")
    return v


class EngineTierConfig(_Strict):
    """A memory tier below an instance's HBM (offload target). ``capacity``: blocks (``5000``,
    ``1k``), bytes (``40GiB``) or tokens (``100ktok``), per instance. Transfer figures default
    by name as in ``kvsim cache`` (``dram``: the GPU's host link, 5 us; ``ssd``: 7/5 GB/s,
    100 us; ``pool``: 25 GB/s, 10 us); other names must give both bandwidths."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    capacity: str | int = "1k"
    policy: str = "lru"
    policy_params: dict[str, Any] = Field(default_factory=dict)
    read_bandwidth_bytes_per_s: float | None = Field(None, gt=0)
    write_bandwidth_bytes_per_s: float | None = Field(None, gt=0)
    latency_us: float | None = Field(None, ge=0)

    @field_validator("policy")
    @classmethod
    def _known_policy(cls, v: str) -> str:
        return _check_policy(v)

    @field_validator("capacity")
    @classmethod
    def _absolute_capacity(cls, v: str | int) -> str | int:
        from kvsim.errors import ConfigError
        from kvsim.kv.tiers.capacity import parse_capacity

        try:
            unit = parse_capacity(v).unit
        except ConfigError as exc:
            raise ValueError(exc.message) from None
        if unit in ("fraction", "inf"):
            raise ValueError("an engine tier needs blocks, bytes or tokens (no % or inf)")
        return v


class CacheConfig(_Strict):
    """Prefix caching of every instance (see src/kvsim/serving/README.md).

    ``index``: ``hash_map`` (vLLM: free blocks keep their hash; LRU free queue) or ``radix``
    (SGLang: a radix tree holds the cached blocks, in-use paths locked, unlocked leaves evicted
    in ``eviction_policy`` order). ``tiers``: lower tiers below HBM, top first; a block evicted
    from HBM is demoted into them (``write_back``; ``write_through`` copies computed blocks
    down at once and needs ``inclusive``), and a request's prefix found there is loaded back
    before its prefill starts."""

    prefix_caching: bool = True
    index: Literal["hash_map", "radix"] = "hash_map"
    eviction_policy: str = "lru"
    tiers: list[EngineTierConfig] = Field(default_factory=list)
    write_policy: Literal["write_back", "write_through"] = "write_back"
    inclusive: bool = False

    @field_validator("eviction_policy")
    @classmethod
    def _known_policy(cls, v: str) -> str:
        return _check_policy(v)

    @model_validator(mode="after")
    def _check(self) -> CacheConfig:
        if self.write_policy == "write_through" and not self.inclusive and self.tiers:
            raise ValueError("write_through keeps copies in every tier: set inclusive: true")
        if self.index == "hash_map" and self.eviction_policy != "lru":
            raise ValueError(
                "index: hash_map evicts free blocks in LRU order (vLLM); use index: radix to"
                f" rank evictions by {self.eviction_policy!r}"
            )
        names = [t.name for t in self.tiers]
        if len(set(names)) != len(names):
            raise ValueError(f"tier names must be distinct, got {names}")
        return self


class PerfConfig(_Strict):
    """Roofline time model knobs. Step time = overhead + comm + max(compute, memory)."""

    compute_efficiency: float = Field(0.6, gt=0.0, le=1.0, description="achieved / peak FLOP/s")
    memory_efficiency: float = Field(0.8, gt=0.0, le=1.0, description="achieved / peak HBM B/s")
    iteration_overhead_ms: float = Field(1.0, ge=0.0, description="fixed CPU+launch per step")
    use_fp8_compute: bool = False


class OutputsConfig(_Strict):
    timeseries_dt_s: float = Field(1.0, gt=0.0, description="sampling interval of timeseries")
    events: bool = False
    plots: bool = True
    requests_format: Literal["csv", "parquet"] = "csv"
    per_gpu_timeseries: Literal["auto", "on", "off"] = Field(
        "auto", description="vram_gpu{N} timeseries columns (auto: on up to 64 GPUs)"
    )


class LimitsConfig(_Strict):
    max_sim_time_s: float | None = Field(
        None, gt=0.0, description="stop the clock here; unfinished requests end 'unfinished'"
    )


class SimConfig(_Strict):
    """A whole run. ``model`` and ``gpu`` are catalog names or inline specs."""

    seed: int = Field(0, ge=0)
    model: ModelField = "llama-3-8b"
    gpu: GPUField = "h100"
    catalog_files: tuple[str, ...] = ()
    #: The calibration profile merged into this config (informational: its figures are
    #: already in ``gpu``, ``perf``, ``cluster.topology`` and ``cache``; see config/calibration.py).
    calibration: str | None = None
    cluster: ClusterConfig = ClusterConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    cache: CacheConfig = CacheConfig()
    perf: PerfConfig = PerfConfig()
    workload: Annotated[SyntheticWorkload | TraceWorkload, Field(discriminator="kind")] = (
        SyntheticWorkload()
    )
    outputs: OutputsConfig = OutputsConfig()
    limits: LimitsConfig = LimitsConfig()

    @model_validator(mode="after")
    def _check(self) -> SimConfig:
        s = self.scheduler
        if s.max_num_batched_tokens < s.max_num_seqs and not s.chunked_prefill:
            raise ValueError("scheduler.max_num_batched_tokens must be >= scheduler.max_num_seqs")
        return self
