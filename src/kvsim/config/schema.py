"""The run configuration (pydantic v2). Unknown keys are errors; every field has a default.

A config is a YAML mapping; ``kvsim presets`` lists built-in ones. Sections::

    seed, model, gpu, cluster, scheduler, cache, perf, workload, outputs, limits
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kvsim.config.catalog import GPUSpec, ModelSpec
from kvsim.config.workload import SyntheticWorkload, TraceWorkload

__all__ = [
    "CacheConfig",
    "ClusterConfig",
    "LimitsConfig",
    "OutputsConfig",
    "PerfConfig",
    "SchedulerConfig",
    "SimConfig",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClusterConfig(_Strict):
    """Identical instances (one model replica each, ``tensor_parallel`` GPUs per replica)."""

    num_instances: int = Field(1, ge=1)
    tensor_parallel: int = Field(1, ge=1)
    router: Literal["round_robin", "least_loaded"] = "round_robin"


class SchedulerConfig(_Strict):
    """Per-instance continuous batching, vLLM-style.

    KV capacity: ``kv_capacity_blocks`` if set, else ``kv_capacity_bytes``, else
    ``gpu_memory_utilization * HBM * TP - weights``.
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
    queue_policy: Literal["fifo"] = "fifo"
    max_waiting: int | None = Field(
        None, ge=0, description="reject arrivals when this many are already waiting"
    )


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


ModelField = Annotated[str | ModelSpec, Field(description="catalog name or inline ModelSpec")]
GPUField = Annotated[str | GPUSpec, Field(description="catalog name or inline GPUSpec")]


class SimConfig(_Strict):
    """A whole run. ``model`` and ``gpu`` are catalog names or inline specs."""

    seed: int = Field(0, ge=0)
    model: ModelField = "llama-3-8b"
    gpu: GPUField = "h100"
    catalog_files: tuple[str, ...] = ()
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
