"""Turn ``cluster`` (identical replicas or a heterogeneous ``instances`` list) into per-replica
:class:`InstanceSetup` records: GPU spec, TP degree, KV capacity, time model, limits."""

from __future__ import annotations

from collections.abc import Callable

from kvsim.config.catalog import GPUSpec, ModelSpec
from kvsim.config.schema import InstanceSpec, SimConfig
from kvsim.errors import ConfigError
from kvsim.perf.roofline import RooflineModel
from kvsim.serving.instance import InstanceSetup

__all__ = ["build_setups", "kv_capacity_blocks"]


def kv_capacity_blocks(
    cfg: SimConfig,
    model: ModelSpec,
    gpu: GPUSpec,
    tp: int | None = None,
    vram_bytes: float | None = None,
    key: str = "cluster.tensor_parallel",
) -> int:
    """KV blocks of one replica: explicit ``scheduler.kv_capacity_blocks`` > explicit
    ``kv_capacity_bytes`` > ``gpu_memory_utilization * VRAM - weights``, where VRAM is the
    instance's ``vram_bytes`` override or ``HBM x TP``."""
    s = cfg.scheduler
    block_bytes = s.block_size * model.kv_bytes_per_token
    if s.kv_capacity_blocks is not None:
        return s.kv_capacity_blocks
    if s.kv_capacity_bytes is not None:
        n = int(s.kv_capacity_bytes // block_bytes)
        if n < 1:
            raise ConfigError("scheduler.kv_capacity_bytes", "smaller than one KV block")
        return n
    tp = cfg.cluster.tensor_parallel if tp is None else tp
    vram = gpu.hbm_bytes * tp if vram_bytes is None else vram_bytes
    budget = vram * s.gpu_memory_utilization - model.weight_bytes
    if budget < block_bytes:
        raise ConfigError(
            key,
            f"{model.name} weights ({model.weight_bytes / 1e9:.1f} GB) leave no KV room in "
            f"{vram / 1e9:.1f} GB ({tp} x {gpu.name}) at gpu_memory_utilization="
            f"{s.gpu_memory_utilization}; raise tensor_parallel or set "
            "scheduler.kv_capacity_blocks",
        )
    return int(budget // block_bytes)


def _setup(
    cfg: SimConfig,
    model: ModelSpec,
    gpu: GPUSpec,
    index: int,
    name: str,
    spec: InstanceSpec | None,
    key: str,
) -> InstanceSetup:
    perf = cfg.perf
    tp = cfg.cluster.tensor_parallel if spec is None else spec.tensor_parallel
    max_seqs = cfg.scheduler.max_num_seqs
    num_blocks = kv_capacity_blocks(cfg, model, gpu, tp, None, key)
    if spec is not None:
        upd = {
            k: v
            for k, v in (
                ("compute_efficiency", spec.compute_efficiency),
                ("memory_efficiency", spec.memory_efficiency),
            )
            if v is not None
        }
        if upd:
            perf = perf.model_copy(update=upd)
        num_blocks = kv_capacity_blocks(cfg, model, gpu, tp, spec.vram_bytes, key)
        if spec.max_num_seqs is not None:
            max_seqs = spec.max_num_seqs
        if spec.max_decode_batch is not None:
            max_seqs = min(max_seqs, spec.max_decode_batch)
    tm = RooflineModel.from_specs(model, gpu, perf, tp)
    if spec is not None:
        tm = tm.with_rates(spec.prefill_tokens_per_s, spec.decode_tokens_per_s)
    return InstanceSetup(
        index=index,
        name=name,
        gpu_name=gpu.name,
        num_blocks=num_blocks,
        time_model=tm,
        max_num_seqs=max_seqs,
        decode_speed=1.0 / tm.decode_step_time(1, 0),
        weight_bytes=model.weight_bytes,
        node=None if spec is None else spec.node,
        tensor_parallel=tp,
    )


def build_setups(
    cfg: SimConfig,
    model: ModelSpec,
    default_gpu: GPUSpec,
    resolve_gpu: Callable[[str], GPUSpec],
) -> list[InstanceSetup]:
    """One setup per replica, in ``gpu_index`` order (``instances`` expanded by ``count``)."""
    cl = cfg.cluster
    if not cl.instances:
        return [
            _setup(cfg, model, default_gpu, i, f"{default_gpu.name}-{i}", None, "cluster")
            for i in range(cl.num_instances)
        ]
    out: list[InstanceSetup] = []
    for j, spec in enumerate(cl.instances):
        key = f"cluster.instances[{j}]"
        gpu = spec.gpu if isinstance(spec.gpu, GPUSpec) else resolve_gpu(spec.gpu)
        for c in range(spec.count):
            idx = len(out)
            base = spec.name or gpu.name
            name = (
                base if spec.count == 1 and spec.name else f"{base}-{idx if not spec.name else c}"
            )
            out.append(_setup(cfg, model, gpu, idx, name, spec, key))
    return out
