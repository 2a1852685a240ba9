"""The serving driver: routes arrivals to instances and runs the event loop to the end.

Placement of a request (arrival, global-queue drain, or retry):

1. ``max_model_len`` too small -> rejected;
2. candidates = instances not tried yet; with ``scheduler.max_queue`` only those with
   ``queued + active < max_queue``; none -> the cluster-wide FIFO global queue (if enabled and
   below ``max_depth``), else rejected (``queue_full``);
3. the router picks one; if it cannot take the request (``kv_capacity``, ``max_waiting``, or
   later ``kv_pressure`` at admission under ``memory_pressure: reject``) the request is retried
   on another instance up to ``max_retries`` times, then rejected.

The global queue is drained (head first) whenever an instance's load goes down. Every request
ends in exactly one terminal state: finished, rejected or (clock stopped) unfinished.

With ``cluster.pd.enabled`` (:mod:`kvsim.serving.pd`) arrivals are placed on the prefill pool
only (the candidates above are prefill instances), a request that could never fit on a
decode instance is rejected (``kv_capacity``), and every prefilled request moves to the decode
pool. Per-event work never scans all instances: candidates are the pool list itself unless
``max_queue`` or a retry filters it, and ``outputs.per_gpu_timeseries: auto`` drops the
per-GPU columns above 64 GPUs.
"""

from __future__ import annotations

import gc
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from kvsim.config.catalog import GPUSpec, ModelSpec
from kvsim.config.schema import SimConfig
from kvsim.config.topology import TopologyConfig
from kvsim.engine.loop import EventLoop, Phase
from kvsim.kv.hashing import rechunk_hashes
from kvsim.metrics.collector import Collector, EventSink
from kvsim.metrics.skew import skew_stats
from kvsim.perf.roofline import RooflineModel
from kvsim.serving.build import build_setups, kv_capacity_blocks
from kvsim.serving.handoff import HandoffRouter
from kvsim.serving.instance import Instance
from kvsim.serving.pd import PDCoordinator
from kvsim.serving.routing import create_router
from kvsim.serving.seq import Seq, SeqState
from kvsim.workload.request import Request

if TYPE_CHECKING:
    from kvsim.serving.topology import Topology

__all__ = ["RunOutput", "ServingSimulation", "kv_capacity_blocks"]


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
    stats: dict[str, int] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    roles: list[str] = field(default_factory=list)  # per instance: unified|prefill|decode


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
        resolve_gpu: Callable[[str], GPUSpec] | None = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        self.cfg = cfg
        self.model = model
        self.requests = requests
        self.setups = build_setups(cfg, model, gpu, resolve_gpu or _no_catalog)
        self.time_model = self.setups[0].time_model
        self.num_blocks = self.setups[0].num_blocks
        self.block_bytes = cfg.scheduler.block_size * model.kv_bytes_per_token
        self.loop = EventLoop()
        self.instances: list[Instance] = []
        self.global_queue: deque[Seq] = deque()
        per_gpu = cfg.outputs.per_gpu_timeseries
        self.collector = Collector(
            self.instances,
            cfg.outputs.timeseries_dt_s,
            self.block_bytes,
            event_sink,
            global_depth=self.global_queue.__len__,
            per_gpu=per_gpu == "on" or (per_gpu == "auto" and len(self.setups) <= 64),
        )
        for setup in self.setups:
            self.instances.append(
                Instance(
                    setup,
                    cfg.scheduler,
                    self.loop,
                    self.collector,
                    self,
                    prefix_caching=cfg.cache.prefix_caching,
                    exact_steps=exact_steps,
                    cache=cfg.cache,
                )
            )
        cl = cfg.cluster
        seed_rng = rng if rng is not None else np.random.default_rng([cfg.seed, 0x5E11])
        self.router = create_router(cl.router, cl.router_params, seed_rng)
        self.max_queue = cfg.scheduler.max_queue
        self.max_retries = cl.max_retries
        self.gq_enabled = cl.global_queue.enabled
        self.gq_max = cl.global_queue.max_depth
        self.handoff: HandoffRouter | None = None
        if cl.decode_routing.enabled and len(self.instances) > 1:
            self.handoff = self._build_handoff()
        self.pd: PDCoordinator | None = None
        self.pool: list[Instance] = self.instances  # where arrivals are placed
        if cl.pd.enabled:
            self.pd = self._build_pd()
            self.pool = self.pd.prefill
        self.seqs: list[Seq] = []
        self._caching = cfg.cache.prefix_caching
        self._block_size = cfg.scheduler.block_size
        self._streams = self.collector.streams_events
        self._next = 0
        self._drain_pending = False
        self._on_progress = on_progress
        self.stats = {
            "retry_attempts": 0,
            "retry_successes": 0,
            "max_global_queue_depth": 0,
        }

    def _build_handoff(self) -> HandoffRouter:
        cl = self.cfg.cluster
        topology = self._topology()
        for inst in self.instances:
            inst.route_decodes = True
        return HandoffRouter(
            self.instances,
            topology,
            self.loop,
            self.collector,
            self.model.kv_bytes_per_token,
            cl.decode_routing.handoff_weight,
            self.cfg.scheduler.admission == "safe",
            np.random.default_rng([self.cfg.seed, 0x7A45]),  # network variance draws
        )

    def _topology(self) -> Topology:
        from kvsim.serving.topology import Topology, node_ids

        cl = self.cfg.cluster
        topo_cfg = cl.topology if cl.topology is not None else TopologyConfig()
        nodes = node_ids([s.node for s in self.setups], topo_cfg.gpus_per_node)
        return Topology.build(nodes, topo_cfg)

    def _build_pd(self) -> PDCoordinator:
        from kvsim.serving.pd import split_pools

        topology = self._topology()
        rack_of = [topology.rack_of(i) for i in range(len(self.instances))]
        is_prefill = split_pools(len(self.instances), rack_of, self.cfg.cluster.pd)
        return PDCoordinator(
            self.instances,
            is_prefill,
            topology,
            self.loop,
            self.collector,
            self.model.kv_bytes_per_token,
            self.cfg.cluster.pd,
            self.cfg.seed,
        )

    # ------------------------------------------------------------------ placement
    def _on_arrival(self, now: float, req: Request) -> None:
        seq = Seq.from_request(req, self._hashes(req) if self._caching else [])
        self.seqs.append(seq)
        if self._streams:
            self.collector.on_arrival(seq, now)
        self._push_next_arrival()
        if self.model.max_model_len < req.prompt_tokens + req.output_tokens:
            self._reject_final(seq, now, "max_model_len")
        elif self.pd is not None and (why := self.pd.cannot_decode(seq)):
            self._reject_final(seq, now, why)
        else:
            self._place(seq, now)
        if self._on_progress is not None and len(self.seqs) % 1024 == 0:
            self._on_progress(len(self.seqs))

    def _hashes(self, req: Request) -> list[int]:
        bs = self._block_size
        if not self._caching:
            return []
        if req.output_block_hashes:
            return rechunk_hashes(
                req.block_hashes + req.output_block_hashes,
                req.hash_block_size,
                bs,
                req.prompt_tokens + req.output_tokens,
            )
        return rechunk_hashes(req.block_hashes, req.hash_block_size, bs, req.prompt_tokens)

    def _candidates(self, seq: Seq) -> list[Instance]:
        insts = self.pool
        if seq.tried:
            insts = [i for i in insts if i.index not in seq.tried]
        if self.max_queue is not None:
            mq = self.max_queue
            insts = [i for i in insts if i.load() < mq]
        return insts

    def _place(self, seq: Seq, now: float) -> None:
        cands = self._candidates(seq)
        if not cands:
            if len(seq.tried) >= len(self.pool):
                self._reject_final(seq, now, seq.reject_reason or "queue_full")
            elif self.gq_enabled and (self.gq_max is None or len(self.global_queue) < self.gq_max):
                seq.state = SeqState.GLOBAL
                self.global_queue.append(seq)
                depth = len(self.global_queue)
                if depth > self.stats["max_global_queue_depth"]:
                    self.stats["max_global_queue_depth"] = depth
                self.collector.on_enqueue(seq, now, -1)
            else:
                self._reject_final(seq, now, "queue_full")
            return
        inst = self.router.choose(seq, cands, now)
        seq.instance = inst.index
        reason = inst.submit_reason(seq)
        if reason:
            self.reject(inst, seq, now, reason, True)
            return
        if self._streams:
            self.collector.on_enqueue(seq, now, inst.index)
        inst.submit(seq, now)

    # ------------------------------------------------------------------ InstanceHooks
    def reject(self, inst: Instance, seq: Seq, now: float, reason: str, retryable: bool) -> None:
        """Retry ``seq`` elsewhere while allowed, else reject it for good."""
        seq.reject_reason = reason
        if retryable and seq.num_retries < self.max_retries and len(self.pool) > 1:
            seq.tried = (*seq.tried, inst.index)
            if len(seq.tried) < len(self.pool):
                seq.num_retries += 1
                self.stats["retry_attempts"] += 1
                self.collector.on_retry(seq, now, inst.index)
                self._place(seq, now)
                self._maybe_drain(now)
                return
        self._reject_final(seq, now, reason)
        self._maybe_drain(now)

    def _reject_final(self, seq: Seq, now: float, reason: str) -> None:
        seq.state = SeqState.REJECTED
        seq.reject_reason = reason
        self.collector.on_reject(seq, now)

    def on_capacity(self, inst: Instance, now: float) -> None:
        """An instance's load went down: drain the global queue (in its own event)."""
        if self.global_queue:
            self._maybe_drain(now)
        if self.pd is not None:
            self.pd.on_capacity(now)

    def on_prefill_done(self, inst: Instance, seq: Seq, now: float) -> bool:
        if self.pd is not None:
            return self.pd.on_prefill_done(inst, seq, now)
        return self.handoff is not None and self.handoff.on_prefill_done(inst, seq, now)

    def _maybe_drain(self, now: float) -> None:
        if self.global_queue and not self._drain_pending:
            self._drain_pending = True
            self.loop.push(now, Phase.SCHEDULE, self._drain)

    def _drain(self, now: float, _arg: object) -> None:
        """Place global-queue heads while some instance is below ``max_queue``."""
        self._drain_pending = False
        gq = self.global_queue
        while gq and self._candidates(gq[0]):
            self._place(gq.popleft(), now)

    def _push_next_arrival(self) -> None:
        if self._next < len(self.requests):
            req = self.requests[self._next]
            self._next += 1
            self.loop.push(req.arrival_s, Phase.ARRIVAL, self._on_arrival, req)

    # ------------------------------------------------------------------ run
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
                # Everything the run allocated is still in the youngest generation: enabling
                # as is makes the next allocation traverse all of it (~5% of the run). Park it
                # in the oldest generation instead (freeze + unfreeze: O(1) list splices).
                gc.freeze()
                gc.enable()
                gc.unfreeze()
        end_s = self.loop.now if limit is None or not len(self.loop) else limit
        # the grid runs to the first point at or after the end, so deltas sum to the totals
        dt = self.cfg.outputs.timeseries_dt_s
        self.collector.sample_through(math.ceil(end_s / dt - 1e-9) * dt)
        self._abort_all(end_s)
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
            stats=self._final_stats(),
            diagnostics=self._diagnostics(),
            roles=self._roles(),
        )

    def _abort_all(self, end_s: float) -> None:
        for inst in self.instances:
            inst.abort_all(end_s)
        for seq in self.global_queue:
            seq.state = SeqState.UNFINISHED
        self.global_queue.clear()
        if self.handoff is not None:
            for seq in self.handoff.in_flight.values():
                seq.state = SeqState.UNFINISHED
        if self.pd is not None:
            self.pd.abort()
        # requests never routed because the clock stopped first
        for req in self.requests[len(self.seqs) :]:
            seq = Seq.from_request(req, [])
            seq.state = SeqState.UNFINISHED
            self.seqs.append(seq)

    def _final_stats(self) -> dict[str, int]:
        stats = dict(self.stats)
        stats["retry_successes"] = sum(
            1 for s in self.seqs if s.num_retries and s.state is SeqState.FINISHED
        )
        h = self.handoff
        stats["handoffs_total"] = h.num_handoffs if h is not None else 0
        stats["cross_gpu_decodes"] = h.num_cross_gpu_decodes if h is not None else 0
        stats["evictions"] = sum(i.num_evictions for i in self.instances)
        if self.pd is not None:
            stats["handoffs_total"] = self.pd.stats.num_transfers
        return stats

    def _roles(self) -> list[str]:
        if self.pd is None:
            return ["unified"] * len(self.instances)
        return ["prefill" if p else "decode" for p in self.pd.is_prefill]

    def _rack_of(self) -> list[int]:
        from kvsim.serving.topology import node_ids

        cl = self.cfg.cluster
        topo = cl.topology if cl.topology is not None else TopologyConfig()
        nodes = node_ids([s.node for s in self.setups], topo.gpus_per_node)
        return [v // topo.nodes_per_rack for v in nodes]

    def _diagnostics(self) -> dict[str, Any]:
        """Active GPUs, per-GPU and per-rack load skew (busy seconds), PD totals, warnings."""
        busy = [i.busy_s for i in self.instances]
        racks: dict[int, float] = {}
        for r, b in zip(self._rack_of(), busy, strict=True):
            racks[r] = racks.get(r, 0.0) + b
        d: dict[str, Any] = {
            "num_instances": len(self.instances),
            "num_gpus": sum(s.tensor_parallel for s in self.setups),
            "active_gpus": sum(i.setup.tensor_parallel for i in self.instances if i.busy_s > 0),
            "num_racks": len(racks),
            "per_gpu_timeseries": self.collector.per_gpu,
        }
        d.update(skew_stats(busy, "gpu_load"))
        d.update(skew_stats([racks[r] for r in sorted(racks)], "rack_load"))
        warnings: list[str] = []
        idle = d["num_instances"] - d["gpu_load_active"]
        if idle:
            warnings.append(f"{idle} of {d['num_instances']} instances never ran a step")
        if self.pd is not None:
            pd = self.pd
            d["pd_prefill_instances"] = len(pd.prefill)
            d["pd_decode_instances"] = len(pd.decode)
            d.update(pd.stats.to_summary())
            if pd.stats.num_waited:
                warnings.append(
                    f"pd: {pd.stats.num_waited} requests waited for decode KV room "
                    "(their KV held on the prefill GPU)"
                )
        d["warnings"] = warnings
        return d


def _no_catalog(name: str) -> GPUSpec:
    from kvsim.errors import ConfigError

    raise ConfigError("cluster.instances", f"gpu {name!r} needs the catalog (use kvsim.simulate)")
