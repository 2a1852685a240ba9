"""Prefill/decode disaggregation: a prefill pool, a decode pool and the KV transfers between.

Pools (:func:`split_pools`): ``cluster.pd`` names P of the N instances prefill (``ratio``
``"P:D"`` or ``prefill_instances``); ``per_rack`` placement gives every rack its share (its
first GPUs), ``any`` makes the first P instances prefill. Both pools are the same
:class:`~kvsim.serving.instance.Instance` (same batching, caching and time models as the
unified baseline on the same GPUs); only their roles differ.

Life of a request:

1. it arrives at the prefill pool (``cluster.router`` picks among prefill instances only);
2. its prefill ends: the prefill instance hands it out (:meth:`PDCoordinator.on_prefill_done`),
   keeping its KV blocks, and it joins the FIFO ``pending`` list;
3. the head of ``pending`` gets a decode instance: same rack first (``per_rack``), then any;
   ``d = decode_candidates`` of a pool are sampled when it is larger (all when it is small);
   among those with ``free_blocks >= need`` (and, for ``pull_on_demand``, a free batch slot)
   the lowest ``(load + 1) / decode_tokens_per_s + transfer_weight * transfer_s`` wins. The
   winner **reserves** the blocks of the request's whole KV (prompt + output, whatever
   ``scheduler.admission``; see :meth:`PDCoordinator._need`) before any byte moves. No
   winner: the head waits, its KV still held by the prefill GPU
   (which therefore admits less), until a decode instance finishes a request. No GPU is
   ever above its HBM capacity: every block comes from a :class:`~kvsim.kv.block_pool.BlockPool`;
4. the transfer starts at once (``push``), after a ``pull_request_us`` control message
   (``pull``, ``pull_on_demand``). With ``pipelined`` and ``layer_chunks = L`` the first of L
   equal chunks is sent first; when it lands the decode instance takes the request (its
   first decode layers can start while the rest streams in), then the remaining
   ``(L - 1) / L`` of the bytes follow; the prefill copy is freed when everything arrived;
5. the decode instance resumes the request at the head of its queue; its first decode step
   emits the first token the user sees.

So ``TTFT = queue wait + prefill compute + (wait for decode room) + transfer (first chunk if
pipelined, else all) + first decode step``. On an idle path of bandwidth B and latency l, a
pipelined transfer of S bytes saves exactly ``(L - 1) / L * S / B`` of TTFT.

Transfers share bandwidth max-min fairly in :class:`~kvsim.serving.transfer.TransferManager`
instances: one per rack for intra-rack transfers (they cross only that rack's GPU ports, so
racks share nothing: exact) and one for cross-rack transfers (which, in this model, do not
compete with intra-rack flows for the sender's NIC: an approximation, exact when no
cross-rack transfer overlaps an intra-rack one on a GPU). Sharding keeps each max-min
re-share small at 10,240 GPUs.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kvsim.config.schema import PDConfig
from kvsim.engine.loop import EventLoop, Phase
from kvsim.errors import ConfigError
from kvsim.kv.block_pool import KVBlock
from kvsim.metrics.collector import Collector
from kvsim.serving.instance import Instance
from kvsim.serving.seq import Seq, SeqState
from kvsim.serving.topology import Topology
from kvsim.serving.transfer import TransferManager

__all__ = ["PDCoordinator", "PDStats", "split_pools"]

_SCAN_ALL = 16  # a decode group this small is scanned whole instead of sampled
_DRAW_BLOCK = 1024
_CROSS = -1  # shard key of cross-rack transfers


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _round(x: float) -> int:
    return math.floor(x + 0.5)


def split_pools(num: int, rack_of: Sequence[int], cfg: PDConfig) -> list[bool]:
    """``is_prefill`` per instance (see :class:`~kvsim.config.schema.PDConfig`).

    Invariant: at least one prefill and one decode instance (else ConfigError)."""
    pair = cfg.ratio_pair()
    if cfg.prefill_instances is not None:
        frac = cfg.prefill_instances / num
    else:
        p, d = pair if pair is not None else (1, 1)
        frac = p / (p + d)
    out = [False] * num
    if cfg.placement == "any":
        k = cfg.prefill_instances if cfg.prefill_instances is not None else _round(num * frac)
        for i in range(min(max(k, 1), num - 1)):
            out[i] = True
    else:
        racks: dict[int, list[int]] = {}
        for i in range(num):
            racks.setdefault(rack_of[i], []).append(i)
        for members in racks.values():
            size = len(members)
            k = _round(size * frac)
            if size >= 2:
                k = min(max(k, 1), size - 1)
            for i in members[:k]:
                out[i] = True
    n_p = sum(out)
    if n_p == 0 or n_p == num:
        raise ConfigError(
            "cluster.pd",
            f"{num} instances split into {n_p} prefill and {num - n_p} decode; "
            "both pools need at least one instance",
        )
    return out


@dataclass(slots=True)
class _Handoff:
    """One request's KV on its way from a prefill to a decode instance."""

    key: int
    seq: Seq
    src: Instance
    src_blocks: list[KVBlock]
    nbytes: float
    ready_s: float
    dst: Instance | None = None
    start_s: float = 0.0
    rest: float = 0.0
    stage: int = 0  # 0: first (or only) chunk in flight, 1: the rest


@dataclass(slots=True)
class PDStats:
    """PD counters (``summary.json`` ``pd_*``). Times are sums in seconds."""

    num_transfers: int = 0
    num_cross_rack: int = 0
    transfer_bytes: float = 0.0
    transfer_s: float = 0.0  # start -> last byte
    first_chunk_s: float = 0.0  # start -> the decode instance takes the request
    num_waited: int = 0  # requests that found no decode room at once
    wait_s: float = 0.0  # prefill end -> transfer start (waits and pull requests)
    max_pending: int = 0

    def to_summary(self) -> dict[str, float | int]:
        n = self.num_transfers
        return {
            "pd_transfers": n,
            "pd_cross_rack_transfers": self.num_cross_rack,
            "pd_transfer_bytes": self.transfer_bytes,
            "pd_mean_transfer_ms": self.transfer_s / n * 1e3 if n else 0.0,
            "pd_mean_first_chunk_ms": self.first_chunk_s / n * 1e3 if n else 0.0,
            "pd_decode_waits": self.num_waited,
            "pd_mean_wait_ms": self.wait_s / n * 1e3 if n else 0.0,
            "pd_max_pending": self.max_pending,
        }


class PDCoordinator:
    """Moves every prefilled request to a decode instance (module doc). O(d) per request."""

    def __init__(
        self,
        instances: Sequence[Instance],
        is_prefill: Sequence[bool],
        topology: Topology,
        loop: EventLoop,
        collector: Collector,
        kv_bytes_per_token: float,
        cfg: PDConfig,
        seed: int,
    ) -> None:
        self.instances = instances
        self.is_prefill = list(is_prefill)
        self.prefill = [i for i in instances if self.is_prefill[i.index]]
        self.decode = [i for i in instances if not self.is_prefill[i.index]]
        self.topology = topology
        self.rack_of = [topology.rack_of(i.index) for i in instances]
        self.rack_decode: dict[int, list[Instance]] = {}
        for inst in self.decode:
            self.rack_decode.setdefault(self.rack_of[inst.index], []).append(inst)
        self.loop = loop
        self.collector = collector
        self.kv_bytes_per_token = kv_bytes_per_token
        self.cfg = cfg
        self.seed = seed
        self.per_rack = cfg.placement == "per_rack"
        self.on_demand = cfg.transfer == "pull_on_demand"
        self.request_s = 0.0 if cfg.transfer == "push" else cfg.pull_request_us / 1e6
        self.chunks = cfg.layer_chunks if cfg.pipelined else 1
        self.max_decode_blocks = max(i.pool.num_blocks for i in self.decode)
        self.shards: dict[int, TransferManager] = {}
        self.pending: deque[_Handoff] = deque()
        self.in_flight: dict[int, _Handoff] = {}  # handed out, not yet on the decode side
        self.stats = PDStats()
        self._next_key = 0
        self._rng = np.random.default_rng([seed, 0xD0])
        self._uniform: list[float] = []
        self._next_u = 0
        self._dispatch_pending = False
        for inst in self.prefill:
            inst.route_decodes = True

    # ------------------------------------------------------------------ admission
    def cannot_decode(self, seq: Seq) -> str:
        """'' if some decode instance could ever hold ``seq``, else the reason."""
        if _cdiv(seq.max_kv_tokens, self.decode[0].block_size) > self.max_decode_blocks:
            return "kv_capacity"
        return ""

    def on_prefill_done(self, src: Instance, seq: Seq, now: float) -> bool:
        """A prefill instance finished ``seq``'s prefill: hand it out and queue its KV."""
        if not self.is_prefill[src.index]:
            return False
        blocks = src.hand_out(seq)
        seq.prefill_instance = src.index
        seq.num_cached_blocks = 0
        key = self._next_key
        self._next_key += 1
        h = _Handoff(key, seq, src, blocks, seq.num_computed * self.kv_bytes_per_token, now)
        self.in_flight[key] = h
        self.pending.append(h)
        if len(self.pending) > self.stats.max_pending:
            self.stats.max_pending = len(self.pending)
        self._dispatch(now)
        if self.pending and self.pending[-1] is h:
            self.stats.num_waited += 1
        return True

    def on_capacity(self, now: float) -> None:
        """Some instance's load went down: retry the pending head in a SCHEDULE event."""
        if self.pending and not self._dispatch_pending:
            self._dispatch_pending = True
            self.loop.push(now, Phase.SCHEDULE, self._on_dispatch)

    def _on_dispatch(self, now: float, _arg: object) -> None:
        self._dispatch_pending = False
        self._dispatch(now)

    def _dispatch(self, now: float) -> None:
        """Send pending requests in FIFO order while the head finds decode room."""
        pending = self.pending
        while pending:
            h = pending[0]
            dst = self._reserve(h, now)
            if dst is None:
                return
            pending.popleft()
            h.dst = dst
            if self.request_s > 0:
                self.loop.push(now + self.request_s, Phase.TRANSFER, self._start_event, h)
            else:
                self._start(h, now)

    # ------------------------------------------------------------------ decode choice
    def _draw(self, n: int) -> int:
        i = self._next_u
        if i == len(self._uniform):
            self._uniform = self._rng.random(_DRAW_BLOCK).tolist()
            i = 0
        self._next_u = i + 1
        return min(int(self._uniform[i] * n), n - 1)

    def _need(self, seq: Seq) -> int:
        """Blocks reserved on the decode side: the request's whole KV (prompt + output - 1)
        in both admission modes. Reserving only the next step's (lazy) would let a decode
        GPU preempt a running request into recompute behind transferred requests that hold
        their reserved blocks in its queue: with nothing left running, the recompute at
        the queue head could never be admitted (a deadlock). So decode GPUs never preempt;
        admission waits instead (prefill GPUs keep ``scheduler.admission``)."""
        return _cdiv(seq.max_kv_tokens, self.decode[0].block_size)

    def _reserve(self, h: _Handoff, now: float) -> Instance | None:
        """Pick a decode instance with room for ``h`` and reserve its blocks there."""
        need = self._need(h.seq)
        groups: list[list[Instance]] = []
        if self.per_rack:
            local = self.rack_decode.get(self.rack_of[h.src.index])
            if local:
                groups.append(local)
        groups.append(self.decode)
        for group in groups:
            dst = self._best(group, h, need, now)
            if dst is None:
                continue
            blocks = dst.reserve_blocks(need, now)
            if blocks is None:
                continue
            h.seq.blocks = blocks
            dst.num_incoming += 1
            return dst
        return None

    def _best(self, group: list[Instance], h: _Handoff, need: int, now: float) -> Instance | None:
        n = len(group)
        d = self.cfg.decode_candidates
        if n <= max(_SCAN_ALL, d):
            cands: Sequence[Instance] = group
        else:
            cands = [group[self._draw(n)] for _ in range(d)]
        w = self.cfg.transfer_weight
        src = h.src.index
        best: Instance | None = None
        best_score = math.inf
        for inst in cands:
            if inst.free_blocks_at(now) < need:
                continue
            load = inst.load()
            if self.on_demand and load >= inst.max_num_seqs:
                continue
            score = (load + 1) / inst.decode_speed
            if w:
                mgr = self._shard(self._key(src, inst.index))
                score += w * (mgr.estimate_quick_s(now, src, inst.index, h.nbytes) - now)
            if score < best_score:
                best, best_score = inst, score
        return best

    # ------------------------------------------------------------------ transfers
    def _key(self, src: int, dst: int) -> int:
        r = self.rack_of[src]
        return r if r == self.rack_of[dst] else _CROSS

    def _shard(self, key: int) -> TransferManager:
        mgr = self.shards.get(key)
        if mgr is None:
            rng = np.random.default_rng([self.seed, 0x7A46, key + 1])
            mgr = TransferManager(self.topology, rng)
            self.shards[key] = mgr
        return mgr

    def _start_event(self, now: float, h: _Handoff) -> None:
        self._start(h, now)

    def _start(self, h: _Handoff, now: float) -> None:
        dst = h.dst
        assert dst is not None
        src, seq = h.src, h.seq
        first = h.nbytes / self.chunks
        h.rest = h.nbytes - first
        h.start_s = now
        st = self.stats
        st.num_transfers += 1
        st.transfer_bytes += h.nbytes
        st.wait_s += now - h.ready_s
        key = self._key(src.index, dst.index)
        if key == _CROSS:
            st.num_cross_rack += 1
        mgr = self._shard(key)
        mgr.start(now, src.index, dst.index, first, h)
        self.collector.on_handoff_start(seq, now, dst.index)
        self._reschedule(key, mgr)

    def _reschedule(self, key: int, mgr: TransferManager) -> None:
        nxt = mgr.next_completion()
        if nxt is not None:
            self.loop.push(nxt[0], Phase.TRANSFER, self._on_done, (key, mgr.version))

    def _on_done(self, now: float, arg: tuple[int, int]) -> None:
        key, version = arg
        mgr = self.shards[key]
        if version != mgr.version:
            return
        nxt = mgr.next_completion()
        assert nxt is not None
        h: _Handoff = mgr.complete(nxt[1], now)
        dst = h.dst
        assert dst is not None
        if h.stage == 0:
            del self.in_flight[h.key]
            seq = h.seq
            seq.handoff_s = now
            self.stats.first_chunk_s += now - h.start_s
            dst.accept_handoff(seq, now)
            self.collector.on_handoff_complete(seq, now)
            if h.rest > 0:
                h.stage = 1
                mgr.start(now, h.src.index, dst.index, h.rest, h)
            else:
                self._release(h, now)
        else:
            self._release(h, now)
        self._reschedule(key, mgr)

    def _release(self, h: _Handoff, now: float) -> None:
        self.stats.transfer_s += now - h.start_s
        h.src.release_handoff(h.src_blocks, now)

    # ------------------------------------------------------------------ end of run
    def abort(self) -> None:
        """Clock stopped: requests still waiting for or in their first transfer end
        UNFINISHED (those already on a decode instance are aborted there)."""
        for h in self.in_flight.values():
            h.seq.state = SeqState.UNFINISHED
        self.in_flight.clear()
        self.pending.clear()
