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
    "GlobalQueueConfig",
    "InstanceSpec",
    "LimitsConfig",
    "OutputsConfig",
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


class CacheConfig(_Strict):
    prefix_caching: bool = True


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
