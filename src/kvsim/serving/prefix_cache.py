"""An instance's prefix cache below and around HBM: lower tiers (offload / load back) and the
admission of requests whose prefix is loaded from them.

Admission with tiers (:meth:`TieredPrefix._tier_admit`): after the HBM prefix hit, the lookup
continues into the lower tiers (prefix semantics: it stops at the first block resident
nowhere). If some blocks hit there, the request takes its HBM blocks at once (hits touched,
new blocks allocated as for a normal admission), leaves the waiting queue and *loads*: the
transfer (:meth:`LowerTiers.load`) takes ``load_time_s``; at ``now + load_time_s`` (a
``Phase.TRANSFER`` event) the loaded blocks are registered in HBM, the request releases its
blocks (the loaded ones stay cached, at the most-recent end of the free queue) and rejoins the
front of the waiting queue; its admission right then hits them in HBM, so its prefill starts
no earlier than the load's end and never recomputes them (a waiting request never holds KV,
so no waiting head can be blocked by it). While loading it counts as incoming (``load()``,
the "nothing runs" check) and it cannot be preempted. Both fast-forward and exact stepping see the
load as the same event, which truncates a running span at the next step boundary, like a
handoff arriving.

Offload: every hash whose last HBM holder is reused (``BlockPool.on_evict``) is demoted into
the lower tiers (write time counted, off the critical path). ``write_through`` copies a
request's cached blocks down when it releases them (finish or preemption), so HBM evictions
of them later write nothing.

Without tiers every hook is a :class:`NoTiers` null object: ``peek`` is 0 and nothing loads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from kvsim.engine.loop import EventLoop, Phase
from kvsim.kv.block_pool import BlockPool, KVBlock
from kvsim.serving.queues import WaitQueue
from kvsim.serving.seq import Seq, SeqState
from kvsim.serving.span import DecodeSpan
from kvsim.serving.tiers import LowerTiers, build_lower_tiers

if TYPE_CHECKING:
    from kvsim.config.schema import CacheConfig
    from kvsim.perf.roofline import RooflineModel

__all__ = ["LOADING", "NoTiers", "TieredPrefix", "interleave"]

#: :meth:`Instance._try_admit` result: the request left the queue to load its prefix.
LOADING = -2


def interleave(run: list[KVBlock | None], new: list[KVBlock]) -> list[KVBlock]:
    """The blocks of a prefix ``run`` (None: a block loaded into a new block) then the rest
    of ``new``, in order."""
    it = iter(new)
    out = [b if b is not None else next(it) for b in run]
    out.extend(it)
    return out


class NoTiers:
    """The null lower-tier stack: nothing below HBM."""

    __slots__ = ()
    tiers: tuple[()] = ()
    num_loads = 0
    num_loaded_blocks = 0
    load_time_s = 0.0

    def match(
        self, pool: BlockPool, hashes: Sequence[int]
    ) -> tuple[list[KVBlock | None], list[KVBlock], list[int]]:
        """HBM only: the pool's prefix match, nothing to load."""
        hits = pool.match_prefix(hashes)
        return hits, hits, []  # type: ignore[return-value]

    def peek(self, hashes: Sequence[int]) -> int:
        return 0

    def load(self, hashes: Sequence[int]) -> tuple[float, list[int]]:
        return 0.0, []

    def write_through(self, hashes: Sequence[int]) -> None:
        return None

    def names(self) -> list[str]:
        return []

    def used_blocks(self) -> list[int]:
        return []

    def describe(self) -> list[dict[str, object]]:
        return []

    def check_invariants(self) -> None:
        return None


def _figure(tm: RooflineModel, name: str, default: float) -> float:
    for key, val in tm.figures:
        if key == name:
            return float(val)
    return default


class TieredPrefix:
    """Mixin of :class:`~kvsim.serving.instance.Instance` (state declared there)."""

    block_size: int
    caching: bool
    span_registers: bool
    _register_on_release: bool
    pool: BlockPool
    loop: EventLoop
    waiting: WaitQueue
    num_incoming: int
    _busy: bool
    _span: DecodeSpan | None
    lower: LowerTiers | NoTiers
    tier_hit_blocks: list[int]
    _loading: dict[int, Seq]
    _write_through: bool

    def _request_schedule(self, now: float) -> None:
        raise NotImplementedError

    def _maybe_truncate(self, now: float) -> None:
        raise NotImplementedError

    def drop_kv(self, seq: Seq) -> None:
        raise NotImplementedError

    def _span_step_in_flight(self, now: float) -> int:
        raise NotImplementedError

    def _materialise_span(self, last: int) -> None:
        raise NotImplementedError

    def _span_pending_blocks(self, last: int) -> int:
        raise NotImplementedError

    def _init_tiers(self, cache: CacheConfig | None, tm: RooflineModel) -> None:
        """Build the lower tiers of ``cache`` (none: :class:`NoTiers`) and hook HBM evictions."""
        lower: LowerTiers | None = None
        self.span_registers = True
        self._register_on_release = False
        if cache is not None and self.caching and cache.index == "radix":
            from kvsim.serving.prefix_cache_radix import RadixBlockPool

            self.pool = RadixBlockPool(self.pool.num_blocks, cache.eviction_policy)
            self.span_registers = False
            self._register_on_release = True
        if cache is not None and self.caching:
            lower = build_lower_tiers(
                cache,
                block_size=self.block_size,
                kv_bytes_per_token=_figure(tm, "kv_bytes_per_token", 0.0),
                host_link_bytes_per_s=_figure(tm, "host_link_bytes_per_s", 0.0),
            )
        self._loading = {}
        if lower is None:
            self.lower = NoTiers()
            self.tier_hit_blocks = []
            self._write_through = False
            return
        self.lower = lower
        self.tier_hit_blocks = [0] * len(lower.tiers)
        self._write_through = lower.write_through_on
        self.pool.on_evict = lower.demote

    def _load_lower(self, hashes: Sequence[int], first: bool) -> float:
        """Take ``hashes`` out of (exclusive) or access them in (inclusive) the lower tiers;
        count the per-tier hits at a first admission. Returns the load's seconds."""
        load_s, per_tier = self.lower.load(hashes)
        if first:
            for k, n in enumerate(per_tier):
                self.tier_hit_blocks[k] += n
        return load_s

    def _await_load(self, seq: Seq, load_s: float, now: float) -> None:
        """``seq`` (its blocks taken, ``num_computed`` past the loaded blocks) waits for its
        load; it rejoins the front of the queue at ``now + load_s``."""
        seq.state = SeqState.TRANSFER
        self.num_incoming += 1
        self._loading[id(seq)] = seq
        self.loop.push(now + load_s, Phase.TRANSFER, self._on_loaded, seq)

    def _on_loaded(self, now: float, seq: Seq) -> None:
        """The prefix load of ``seq`` ended: register its loaded blocks, requeue it first."""
        if self._loading.pop(id(seq), None) is None:
            return  # aborted meanwhile
        self.num_incoming -= 1
        if self._span is not None and self._busy:  # tier ops in exact-stepping order
            last = self._span_step_in_flight(now)
            if self._span_pending_blocks(last):
                self._materialise_span(last)
        upto = min(seq.num_computed // self.block_size, len(seq.hashes))
        if upto > seq.num_cached_blocks:
            self.pool.cache_blocks(seq.blocks, seq.hashes, seq.num_cached_blocks, upto)
            seq.num_cached_blocks = upto
        # Its prefix is now cached in HBM: release the blocks (they keep their hashes) so a
        # waiting request never holds KV; its admission, right away at the queue front,
        # hits them like any HBM prefix.
        self.drop_kv(seq)
        seq.num_computed = 0
        seq.num_cached_blocks = 0
        seq.state = SeqState.WAITING
        self.waiting.push_front(seq)
        if not self._busy:
            self._request_schedule(now)
        elif self._span is not None:
            self._maybe_truncate(now)

    def _release_hashes(self, seq: Seq) -> None:
        """Before ``seq`` frees its blocks: radix registers its decode-filled blocks;
        ``write_through`` copies its cached blocks down."""
        if self._register_on_release and seq.blocks:
            upto = min(seq.num_computed // self.block_size, len(seq.hashes), len(seq.blocks))
            if upto > seq.num_cached_blocks:
                self.pool.cache_blocks(seq.blocks, seq.hashes, seq.num_cached_blocks, upto)
                seq.num_cached_blocks = upto
        if self._write_through and seq.num_cached_blocks:
            self.lower.write_through(seq.hashes[: seq.num_cached_blocks])

    def loading_seqs(self) -> list[Seq]:
        """Requests loading their prefix from the lower tiers, in load-start order."""
        return list(self._loading.values())

    def tier_stats(self) -> dict[str, object]:
        """Counters of the lower tiers (summary / per_gpu): per tier ``<name>`` its hits at
        first admissions, demotions (offloads), promotions (loads), bytes and seconds."""
        lower = self.lower
        out: dict[str, object] = {
            "tier_loads": lower.num_loads,
            "tier_loaded_blocks": lower.num_loaded_blocks,
            "tier_load_time_ms": lower.load_time_s * 1e3,
        }
        for k, tier in enumerate(lower.tiers):
            c = tier.counters
            out[tier.name] = {
                "hit_blocks": self.tier_hit_blocks[k],
                "demotions": c.demotions,
                "promotions": c.promotions,
                "evictions": c.evictions,
                "used_blocks": tier.policy.used,
                "capacity_blocks": tier.capacity,
                "bytes_written": c.bytes_written,
                "bytes_read": c.bytes_read,
                "write_time_ms": c.write_time_s * 1e3,
                "read_time_ms": c.read_time_s * 1e3,
            }
        return out
