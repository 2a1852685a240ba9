"""Phase-level routing: after its prefill a request may decode on another instance.

At the end of a request's first prefill the prefill instance asks :class:`HandoffRouter`
whether to keep it. Staying scores ``load(src) / decode_speed(src)`` (the request is counted in
``src``'s load); moving to ``dst`` scores ``(load(dst) + 1) / decode_speed(dst) + w * t``
where ``t`` is the time the KV handoff would take if started now (latency + bytes / bandwidth
over the topology's best path, sharing bandwidth with transfers in flight). The lowest score
wins; staying wins ties. A move reserves the request's blocks on ``dst`` first (all of
``prompt + output`` under safe admission, else enough for the next decode step); if ``dst``
lacks them the request stays. The transfer then runs in the :class:`TransferManager`; when
it completes the source copy is freed and the request resumes decoding at the head of
``dst``'s queue. Its first token is delivered there: TTFT includes the handoff.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kvsim.engine.loop import EventLoop, Phase
from kvsim.kv.block_pool import KVBlock
from kvsim.metrics.collector import Collector
from kvsim.serving.instance import Instance
from kvsim.serving.seq import Seq
from kvsim.serving.topology import Topology
from kvsim.serving.transfer import TransferManager

__all__ = ["HandoffRouter"]


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


class HandoffRouter:
    """Decides and performs KV handoffs; counts ``handoffs_total`` and ``cross_gpu_decodes``."""

    def __init__(
        self,
        instances: Sequence[Instance],
        topology: Topology,
        loop: EventLoop,
        collector: Collector,
        kv_bytes_per_token: float,
        handoff_weight: float,
        safe: bool,
        rng: np.random.Generator,
    ) -> None:
        self.instances = instances
        self.transfers = TransferManager(topology, rng)
        self.loop = loop
        self.collector = collector
        self.kv_bytes_per_token = kv_bytes_per_token
        self.weight = handoff_weight
        self.safe = safe
        self.num_handoffs = 0
        self.num_cross_gpu_decodes = 0
        self.in_flight: dict[int, Seq] = {}

    def on_prefill_done(self, src: Instance, seq: Seq, now: float) -> bool:
        """Move ``seq``'s decode if another instance scores strictly lower (see module)."""
        nbytes = seq.num_computed * self.kv_bytes_per_token
        best: Instance = src
        best_score = src.load() / src.decode_speed
        for inst in self.instances:
            if inst is src:
                continue
            eta = self.transfers.estimate_finish_s(now, src.index, inst.index, nbytes) - now
            score = (inst.load() + 1) / inst.decode_speed + self.weight * eta
            if score < best_score:
                best, best_score = inst, score
        if best is src:
            return False
        bs = src.block_size
        need = _cdiv(seq.max_kv_tokens if self.safe else seq.num_computed + 1, bs)
        blocks = best.reserve_blocks(need, now)
        if blocks is None:
            return False
        src_blocks = src.hand_out(seq)
        seq.blocks = blocks
        seq.num_cached_blocks = 0
        seq.prefill_instance = src.index
        best.num_incoming += 1
        tid = self.transfers.start(now, src.index, best.index, nbytes, (seq, src, best, src_blocks))
        self.in_flight[tid] = seq
        self.num_handoffs += 1
        self.collector.on_handoff_start(seq, now, best.index)
        self._reschedule()
        return True

    def _reschedule(self) -> None:
        nxt = self.transfers.next_completion()
        if nxt is not None:
            self.loop.push(nxt[0], Phase.TRANSFER, self._on_done, self.transfers.version)

    def _on_done(self, now: float, version: int) -> None:
        if version != self.transfers.version:
            return
        nxt = self.transfers.next_completion()
        assert nxt is not None
        tid = nxt[1]
        seq, src, dst, src_blocks = self._collect(tid, now)
        src.release_handoff(src_blocks, now)
        seq.handoff_s = now
        seq.first_token_s = now
        self.num_cross_gpu_decodes += 1
        dst.accept_handoff(seq, now)
        self.collector.on_handoff_complete(seq, now)
        self.collector.on_first_token(seq, now)
        self._reschedule()

    def _collect(self, tid: int, now: float) -> tuple[Seq, Instance, Instance, list[KVBlock]]:
        tag = self.transfers.complete(tid, now)
        del self.in_flight[tid]
        seq, src, dst, src_blocks = tag
        return seq, src, dst, src_blocks
