"""KV access to an instance from outside its own steps: reading or reserving blocks and
prefix-cache entries mid-span, and the two ends of a KV handoff.

A fast-forward span allocates the blocks of its steps 1.. and registers decode-filled blocks
only when it ends. Whoever reads or changes the pool mid-span first brings it to the state
exact stepping would show at that moment (:meth:`SpanKVAccess._materialise_span`), so both
modes make the same decisions (tests/serving/test_multi_gpu_fuzz.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from kvsim.engine.loop import EventLoop, Phase
from kvsim.kv.block_pool import BlockPool, KVBlock
from kvsim.serving.queues import WaitQueue
from kvsim.serving.seq import Seq, SeqState
from kvsim.serving.span import DecodeSpan
from kvsim.serving.span_blocks import block_demand, steps_within_free_blocks

__all__ = ["SpanKVAccess"]


class SpanKVAccess:
    """Mixin of :class:`~kvsim.serving.instance.Instance` (state declared there)."""

    index: int
    block_size: int
    caching: bool
    span_registers: bool
    pool: BlockPool
    loop: EventLoop
    running: list[Seq]
    waiting: WaitQueue
    num_incoming: int
    num_outgoing: int
    _busy: bool
    _span: DecodeSpan | None
    _span_firsts: list[int]
    _span_alloc_through: int
    _version: int
    _step_end_s: float
    _step_event: int

    def _request_schedule(self, now: float) -> None:
        raise NotImplementedError

    def _maybe_truncate(self, now: float) -> None:
        raise NotImplementedError

    def _allocate_span_blocks(self, needy: list[tuple[int, int]], last: int) -> None:
        raise NotImplementedError

    def _on_step_end(self, now: float, version: int) -> None:
        raise NotImplementedError

    def accept_handoff(self, seq: Seq, now: float) -> None:
        """A decode arrives by KV handoff (its blocks here were reserved when it started):
        it resumes at the head of the waiting queue."""
        self.num_incoming -= 1
        seq.instance = self.index
        seq.state = SeqState.WAITING
        self.waiting.push_front(seq)
        if not self._busy:
            self._request_schedule(now)
        elif self._span is not None:
            self._maybe_truncate(now)

    def _span_pending_blocks(self, last: int) -> int:
        """Blocks steps 1..``last`` of the current span take that are not allocated yet."""
        bs = self.block_size
        firsts = self._span_firsts
        done = self._span_alloc_through
        if last <= done:
            return 0
        return block_demand(firsts, bs, last) - (block_demand(firsts, bs, done) if done else 0)

    def _span_step_in_flight(self, now: float) -> int:
        """Index of the span step exact stepping has started last before ``now`` (strictly:
        a step starting at ``now`` has not taken its blocks yet when a same-time event runs)."""
        span = self._span
        assert span is not None
        k = span.steps_done_by(now)
        if k > 0 and span.end_time(k) >= now:
            k -= 1
        return min(k, span.num_steps - 1)

    def free_blocks_at(self, now: float) -> int:
        """Free KV blocks as exact stepping would show them at ``now`` (no side effect)."""
        free = self.pool.num_free_blocks
        if self._span is not None and self._busy:
            free -= self._span_pending_blocks(self._span_step_in_flight(now))
        return free

    def cached_prefix_blocks(self, hashes: Sequence[int], now: float) -> int:
        """Leading blocks of ``hashes`` in this instance's prefix cache at ``now``.

        Mid-span, the blocks that the span's steps done by ``now`` filled are registered
        first (as exact stepping would have by then); the lookup itself has no side effect."""
        if not self.caching:
            return 0
        if self._span is not None and self._busy:
            self._sync_span_prefix_cache(now)
        return len(self.pool.match_prefix(hashes))

    def _sync_span_prefix_cache(self, now: float) -> None:
        span = self._span
        assert span is not None
        bs = self.block_size
        done = min(span.steps_done_by(now), span.num_steps)
        if done == 0:  # nothing filled yet (a mixed step 0 registers its prompts at its end)
            return
        pending = [s for s in self.running if s.num_cached_blocks < len(s.hashes)]
        if not pending:
            return
        last = self._span_step_in_flight(now)
        if self._span_pending_blocks(last):
            self._materialise_span(last)
        if not self.span_registers:
            return  # radix: decode-filled blocks are registered when released
        for s in pending:
            upto = min((s.num_computed + done) // bs, len(s.hashes))
            if upto > s.num_cached_blocks:
                self.pool.cache_blocks(s.blocks, s.hashes, s.num_cached_blocks, upto)
                s.num_cached_blocks = upto

    def reserve_blocks(self, n: int, now: float) -> list[KVBlock] | None:
        """Take ``n`` free blocks at ``now`` for an incoming handoff, or None (no change).

        Mid-span, the span's allocations up to the step in flight are made first, in exact
        order, and the span is cut before the first later step whose blocks no longer fit,
        so both modes see the same blocks at every step."""
        span = self._span if self._busy else None
        if span is not None:
            last = self._span_step_in_flight(now)
            if self._span_pending_blocks(last):
                self._materialise_span(last)
        if self.pool.num_free_blocks < n:
            return None
        blocks = self.pool.allocate(n)
        if span is not None and blocks:
            self._recut_span(span)
        return blocks

    def _materialise_span(self, last: int) -> None:
        bs = self.block_size
        needy = []
        for i, s in enumerate(self.running):
            f = len(s.blocks) * bs - s.num_computed
            if f <= last:
                needy.append((f, i))
        if needy:
            self._allocate_span_blocks(needy, last)
        self._span_alloc_through = last

    def _recut_span(self, span: DecodeSpan) -> None:
        done = self._span_alloc_through
        firsts = self._span_firsts
        budget = self.pool.num_free_blocks + (
            block_demand(firsts, self.block_size, done) if done else 0
        )
        n = steps_within_free_blocks(firsts, self.block_size, span.num_steps, budget)
        if n < span.num_steps:
            span.num_steps = n
            self._version += 1
            self._step_end_s = span.end_time(n)
            self.loop.cancel(self._step_event)
            self._step_event = self.loop.push(
                self._step_end_s, Phase.STEP_END, self._on_step_end, self._version
            )

    def hand_out(self, seq: Seq) -> list[KVBlock]:
        """``seq`` leaves the running list for a handoff; returns its blocks here, which stay
        allocated until :meth:`release_handoff`."""
        self.running.remove(seq)
        seq.state = SeqState.TRANSFER
        self.num_outgoing += 1
        blocks = seq.blocks
        seq.blocks = []
        return blocks

    def release_handoff(self, blocks: list[KVBlock], now: float) -> None:
        """The handoff finished: free the source copy of the KV (mid-span: after the span's
        allocations up to the step in flight, so a prefix index sees exact-stepping order)."""
        self.num_outgoing -= 1
        if self._span is not None and self._busy:
            last = self._span_step_in_flight(now)
            if self._span_pending_blocks(last):
                self._materialise_span(last)
        blocks.reverse()
        self.pool.free(blocks)
        if self.waiting:
            if not self._busy:
                self._request_schedule(now)
            elif self._span is not None:
                self._maybe_truncate(now)  # freed blocks may let the waiting head in
