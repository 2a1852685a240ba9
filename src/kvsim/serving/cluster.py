"""The serving driver: routes arrivals to instances and runs the event loop to the end."""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kvsim.config.catalog import GPUSpec, ModelSpec
from kvsim.config.schema import SimConfig
from kvsim.engine.loop import EventLoop, Phase
from kvsim.errors import ConfigError
from kvsim.kv.hashing import rechunk_hashes
from kvsim.metrics.collector import Collector, EventSink
from kvsim.perf.roofline import RooflineModel
from kvsim.serving.instance import Instance
from kvsim.serving.seq import Seq, SeqState
from kvsim.workload.request import Request

__all__ = ["RunOutput", "ServingSimulation", "kv_capacity_blocks"]


def kv_capacity_blocks(cfg: SimConfig, model: ModelSpec, gpu: GPUSpec) -> int:
    """KV blocks per instance (DESIGN: explicit blocks > explicit bytes > HBM fraction)."""
    s = cfg.scheduler
    block_bytes = s.block_size * model.kv_bytes_per_token
    if s.kv_capacity_blocks is not None:
        return s.kv_capacity_blocks
    if s.kv_capacity_bytes is not None:
        n = int(s.kv_capacity_bytes // block_bytes)
        if n < 1:
            raise ConfigError("scheduler.kv_capacity_bytes", "smaller than one KV block")
        return n
    tp = cfg.cluster.tensor_parallel
    budget = gpu.hbm_bytes * tp * s.gpu_memory_utilization - model.weight_bytes
    if budget < block_bytes:
        raise ConfigError(
            "cluster.tensor_parallel",
            f"{model.name} weights ({model.weight_bytes / 1e9:.1f} GB) leave no KV room in "
            f"{tp} x {gpu.name} at gpu_memory_utilization={s.gpu_memory_utilization}; "
            "raise tensor_parallel or set scheduler.kv_capacity_blocks",
        )
    return int(budget // block_bytes)


@dataclass(slots=True)
class RunOutput:
    """Everything a run produced, before it is summarised."""

    seqs: list[Seq]
    instances: list[Instance]
    collector: Collector
    time_model: RooflineModel
    num_blocks: int
    block_bytes: float
    end_s: float
    num_events: int


class ServingSimulation:
    """Build instances for ``cfg`` and replay ``requests`` (sorted by arrival) through them."""

    def __init__(
        self,
        cfg: SimConfig,
        model: ModelSpec,
        gpu: GPUSpec,
        requests: Sequence[Request],
        *,
        exact_steps: bool = False,
        event_sink: EventSink | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.model = model
        self.requests = requests
        tp = cfg.cluster.tensor_parallel
        self.time_model = RooflineModel.from_specs(model, gpu, cfg.perf, tp)
        self.num_blocks = kv_capacity_blocks(cfg, model, gpu)
        self.block_bytes = cfg.scheduler.block_size * model.kv_bytes_per_token
        self.loop = EventLoop()
        self.instances: list[Instance] = []
        self.collector = Collector(
            self.instances, cfg.outputs.timeseries_dt_s, self.block_bytes, event_sink
        )
        for i in range(cfg.cluster.num_instances):
            self.instances.append(
                Instance(
                    i,
                    cfg.scheduler,
                    self.num_blocks,
                    self.time_model,
                    self.loop,
                    self.collector,
                    prefix_caching=cfg.cache.prefix_caching,
                    exact_steps=exact_steps,
                )
            )
        self.seqs: list[Seq] = []
        self._next = 0
        self._rr = 0
        self._on_progress = on_progress
        self._route = self._route_rr if cfg.cluster.router == "round_robin" else self._route_ll

    def _route_rr(self) -> Instance:
        inst = self.instances[self._rr]
        self._rr = (self._rr + 1) % len(self.instances)
        return inst

    def _route_ll(self) -> Instance:
        return min(self.instances, key=Instance.load)

    def _on_arrival(self, now: float, req: Request) -> None:
        bs = self.cfg.scheduler.block_size
        if not self.cfg.cache.prefix_caching:
            hashes: list[int] = []
        elif req.output_block_hashes:
            hashes = rechunk_hashes(
                req.block_hashes + req.output_block_hashes,
                req.hash_block_size,
                bs,
                req.prompt_tokens + req.output_tokens,
            )
        else:
            hashes = rechunk_hashes(req.block_hashes, req.hash_block_size, bs, req.prompt_tokens)
        seq = Seq.from_request(req, hashes)
        self.seqs.append(seq)
        inst = self._route()
        seq.instance = inst.index
        self.collector.on_arrival(seq, now)
        self._push_next_arrival()
        if self.model.max_model_len < req.prompt_tokens + req.output_tokens:
            seq.state = SeqState.REJECTED
            seq.reject_reason = "max_model_len"
            self.collector.on_reject(seq, now)
        else:
            inst.submit(seq, now)
        if self._on_progress is not None and len(self.seqs) % 1024 == 0:
            self._on_progress(len(self.seqs))

    def _push_next_arrival(self) -> None:
        if self._next < len(self.requests):
            req = self.requests[self._next]
            self._next += 1
            self.loop.push(req.arrival_s, Phase.ARRIVAL, self._on_arrival, req)

    def run(self) -> RunOutput:
        """Run to completion (or ``limits.max_sim_time_s``); every request ends terminal."""
        self._push_next_arrival()
        limit = self.cfg.limits.max_sim_time_s
        until = float("inf") if limit is None else limit
        # The hot loop allocates many short-lived acyclic objects; the cyclic GC only costs
        # time here (~20%). Reference counting still frees them; collection resumes after.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            self.loop.run(until, on_advance=self.collector.sample_before)
        finally:
            if gc_was_enabled:
                gc.enable()
        end_s = self.loop.now if limit is None or not len(self.loop) else limit
        # the grid runs to the first point at or after the end, so deltas sum to the totals
        dt = self.cfg.outputs.timeseries_dt_s
        self.collector.sample_through(math.ceil(end_s / dt - 1e-9) * dt)
        for inst in self.instances:
            inst.abort_all(end_s)
        # requests never routed because the clock stopped first
        for req in self.requests[len(self.seqs) :]:
            seq = Seq.from_request(req, [])
            seq.state = SeqState.UNFINISHED
            self.seqs.append(seq)
        if self._on_progress is not None:
            self._on_progress(len(self.seqs))
        return RunOutput(
            seqs=self.seqs,
            instances=self.instances,
            collector=self.collector,
            time_model=self.time_model,
            num_blocks=self.num_blocks,
            block_bytes=self.block_bytes,
            end_s=end_s,
            num_events=self.loop.num_events,
        )
