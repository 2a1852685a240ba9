"""Fast-forward decode spans of one instance: planning, applying, and mixed step 0.

A span (DESIGN.md §4) is ``n`` steps in which every running sequence gains one token per step;
it is planned in closed form (:class:`~kvsim.serving.span.DecodeSpan`) and applied with ONE
event. It ends at its first completion, before the first step whose new blocks do not fit,
and no later than the step after which the blocked waiting head could gain a prefix hit.

Step 0 of a span may be a *mixed* step (:meth:`SpanSteps._start_mixed_span`): the step in
which newly admitted requests run their whole (remaining) prefill while the others decode.
Each newcomer is then recorded as if it had decoded at step 0 (``num_computed =
prefill_target - 1``, ``num_output`` unchanged): from step 1 on it is an ordinary decoder,
and after ``n`` steps it holds ``prefill_target + n - 1`` tokens and ``n`` more outputs, as
exact stepping gives. Its first token is at the end of step 0, its prompt blocks are
registered in the prefix cache when the span ends (or by a mid-span lookup after step 0:
:meth:`~kvsim.serving.instance_kv.SpanKVAccess.cached_prefix_blocks`).
"""

from __future__ import annotations

from collections.abc import Callable

from kvsim.engine.loop import EventLoop, Phase
from kvsim.errors import SimulationError
from kvsim.kv.block_pool import BlockPool
from kvsim.perf.roofline import RooflineModel
from kvsim.serving.hooks import InstanceObserver
from kvsim.serving.queues import WaitQueue
from kvsim.serving.seq import Seq
from kvsim.serving.span import DecodeSpan
from kvsim.serving.span_blocks import span_block_owners, steps_within_free_blocks

__all__ = ["SpanSteps"]

_NEVER = 1 << 62


class SpanSteps:
    """Mixin of :class:`~kvsim.serving.instance.Instance` (state declared there)."""

    block_size: int
    caching: bool
    span_registers: bool  # False with the radix index (see prefix_cache.py)
    exact_steps: bool
    route_decodes: bool
    max_num_batched_tokens: int
    pool: BlockPool
    tm: RooflineModel
    loop: EventLoop
    obs: InstanceObserver
    running: list[Seq]
    waiting: WaitQueue
    tokens_generated: int
    peak_blocks: int
    _span: DecodeSpan | None
    _span_fin: int
    _span_firsts: list[int]
    _span_alloc_through: int
    _span_prefills: int
    _emit_first_now: bool
    _begin: Callable[[float, float], None]
    _finish_done: Callable[[float], None]
    _head_admissible_soon: Callable[[], bool]

    # ------------------------------------------------------------------ planning
    def _decode_all(self) -> tuple[int, int, list[int]] | None:
        """If every running sequence is decoding and each can get its next block, allocate
        step 0 and return (total context, steps to the first completion, per-seq first step
        needing a new block). Otherwise None, with nothing allocated, and the general
        scheduler (which can preempt) takes over."""
        running = self.running
        if len(running) > self.max_num_batched_tokens:
            return None
        bs = self.block_size
        kv_read = 0
        n_fin = _NEVER
        firsts: list[int] = []
        full: list[Seq] | None = None
        for s in running:
            p = s.num_computed
            if p < s.prefill_target:
                return None
            room = len(s.blocks) * bs - p
            if room <= 0:  # the step writes token p + 1: one more block
                if full is None:
                    full = [s]
                else:
                    full.append(s)
                room += bs
            firsts.append(room)
            kv_read += p + 1
            left = s.req.output_tokens - s.num_output
            if left < n_fin:
                n_fin = left
        if full is not None:
            # one pop of len(full) blocks hands them out in running order, as the general
            # scheduler's one-by-one allocation would; None (no side effect) lets it take over
            blocks = self.pool.allocate(len(full))
            if blocks is None:
                return None
            for s, block in zip(full, blocks, strict=True):
                s.blocks.append(block)
        return kv_read, n_fin, firsts

    def _start_span(self, now: float, kv_read: int, n_fin: int, firsts: list[int]) -> None:
        """Plan a pure-decode span over every running sequence (step 0 already allocated)."""
        if self.exact_steps:
            n = n_fin = 1
        else:
            n = self._span_length(n_fin, firsts)
        self._span_fin = n_fin
        self._span_firsts = firsts
        self._span_alloc_through = 0
        self._span_prefills = 0
        span = DecodeSpan.plan(self.tm, now, len(self.running), kv_read, n)
        self._span = span
        self._begin(now, span.end_time(n))

    def _can_merge(self, newcomers: list[tuple[Seq, int]], stop: int) -> bool:
        """Whether this step (every older running sequence decodes, ``newcomers`` were just
        admitted) can be step 0 of a span: every newcomer completes its prefill in it (or
        resumes decoding), no first token is handed to decode routing, and the waiting head
        cannot be admitted at the next step either (admission stopped for lack of KV blocks,
        which decode steps only make scarcer, or nothing could be admitted next step anyway)."""
        if self.exact_steps or self.route_decodes or not self.span_registers:
            return False  # (radix: prompts of a mixed step register at its end, not a span's)
        for seq, c in newcomers:
            if seq.num_computed + c < seq.prefill_target:
                return False
        return stop < 0 or not self._head_admissible_soon()

    def _start_mixed_span(
        self,
        now: float,
        decode: tuple[int, int, list[int]] | None,
        newcomers: list[tuple[Seq, int]],
        head_s: float,
    ) -> None:
        """Plan a span whose step 0 is this mixed step of ``head_s`` seconds (the module doc
        gives the bookkeeping); ``decode`` is what :meth:`_decode_all` returned for the older
        running sequences (None: there were none)."""
        kv_read, n_fin, firsts = decode if decode is not None else (0, _NEVER, [])
        bs = self.block_size
        prefills: list[Seq] = []
        for seq, _c in newcomers:
            if seq.num_computed < seq.prefill_target:
                seq.num_computed = seq.prefill_target - 1
                prefills.append(seq)
            p = seq.num_computed
            firsts.append(len(seq.blocks) * bs - p)
            kv_read += p + 1
            left = seq.req.output_tokens - seq.num_output
            if left < n_fin:
                n_fin = left
        n = self._span_length(n_fin, firsts)
        self._span_fin = n_fin
        self._span_firsts = firsts
        self._span_alloc_through = 0
        self._span_prefills = len(prefills)
        span = DecodeSpan.plan(self.tm, now, len(self.running), kv_read, n)
        span.set_head(head_s)
        self._span = span
        # prompts done in step 0, and requests resuming after a KV handoff, whose first
        # token the decode side delivers
        due = [s for s, _c in newcomers if s.first_token_s < 0]
        if due:
            first = span.end_time(1)
            for seq in due:
                seq.first_token_s = first
            if self._emit_first_now:
                for seq in due:
                    self.obs.on_first_token(seq, first)
            else:  # the observer streams events in time order: tell it at that time
                self.loop.push(first, Phase.STEP_END, self._on_first_tokens, due)
        self._begin(now, span.end_time(n))

    def _on_first_tokens(self, now: float, seqs: list[Seq]) -> None:
        for seq in seqs:
            self.obs.on_first_token(seq, now)

    def _span_length(self, n_fin: int, firsts: list[int]) -> int:
        """Steps the pure-decode batch can run before its composition changes: up to its first
        completion, before the first step whose new blocks exceed the free ones, and no later
        than the step after which the blocked waiting head could gain a prefix hit.

        Step k (0-based) needs a new block for seq i iff k >= firsts[i] and
        (k - firsts[i]) % bs == 0; step 0's blocks are already allocated (firsts >= 1)."""
        n = self._steps_until_head_gains_a_hit(n_fin) if self.waiting.num else n_fin
        if n <= 1:
            return n
        last = n - 1
        bs = self.block_size
        demand = 0
        for f in firsts:
            if f <= last:
                demand += (last - f) // bs + 1
        if demand <= self.pool.num_free_blocks:  # the common case: everything fits
            return n
        return steps_within_free_blocks(firsts, bs, n, self.pool.num_free_blocks)

    def _steps_until_head_gains_a_hit(self, n: int) -> int:
        """Cap ``n`` at the step after which a running sequence registers a decode-filled
        block that the blocked waiting head could hit (the one way its admissibility can
        improve during a decode span: multi-turn prompts overlapping a running turn)."""
        if not self.caching:
            return n
        head = self.waiting.head().hashes
        bs = self.block_size
        for s in self.running:
            j = s.num_cached_blocks
            if j < len(s.hashes) and j < len(head) and head[j] == s.hashes[j]:
                n = min(n, max(1, (j + 1) * bs - s.num_computed))
        return n

    # ------------------------------------------------------------------ applying
    def _apply_span(self, now: float, span: DecodeSpan) -> None:
        """Advance every running sequence by the span's steps; allocate the blocks those steps
        needed in the order exact stepping would (by step, then running-list position)."""
        n = span.num_steps
        running = self.running
        last = n - 1
        if last > 0:  # step 0 needs no new block (firsts >= 1)
            if self._span_alloc_through == 0:  # nothing materialised: the span's firsts
                needy = [(f, i) for i, f in enumerate(self._span_firsts) if f <= last]
            else:
                bs = self.block_size
                needy = [
                    (f, i)
                    for i, s in enumerate(running)
                    if (f := len(s.blocks) * bs - s.num_computed) <= last
                ]
            if needy:
                self._allocate_span_blocks(needy, last)
        registering = False
        for s in running:
            s.num_computed += n
            s.num_output += n
            if s.num_cached_blocks < len(s.hashes):
                registering = True
        if registering and self.caching:
            self._cache_decoded_blocks()
        self.tokens_generated += n * len(running)
        pool = self.pool
        used = pool.num_blocks - pool.num_free_blocks
        if used > self.peak_blocks:
            self.peak_blocks = used
        if n == self._span_fin:
            self._finish_done(now)

    def _cache_decoded_blocks(self) -> None:
        """Register blocks that the span's steps filled: prompts prefilled in a mixed step 0,
        and decode-filled blocks of requests whose hashes go past the prompt (multi-turn
        conversations). Doing this once at the end of a span, after the span's allocations,
        equals exact stepping because the block pool's registrations of in-use blocks commute
        with allocations (see kv/block_pool.py)."""
        if not self.span_registers:
            return  # radix: decode-filled blocks are registered when released
        bs = self.block_size
        pool = self.pool
        for s in self.running:
            if s.num_cached_blocks < len(s.hashes):
                upto = min(s.num_computed // bs, len(s.hashes))
                if upto > s.num_cached_blocks:
                    pool.cache_blocks(s.blocks, s.hashes, s.num_cached_blocks, upto)
                    s.num_cached_blocks = upto

    def _allocate_span_blocks(self, needy: list[tuple[int, int]], last: int) -> None:
        """Blocks for steps 1..last of a span, handed out as exact stepping would."""
        bs = self.block_size
        running = self.running
        counts = [(last - f) // bs + 1 for f, _ in needy]
        total = sum(counts)
        blocks = self.pool.allocate(total)
        if blocks is None:
            raise SimulationError("span block demand exceeded the free blocks")
        if total == len(needy):  # one block each: handed out by (step, position)
            if total > 1:
                needy.sort()
            for (_f, i), block in zip(needy, blocks, strict=True):
                running[i].blocks.append(block)
            return
        for i, block in zip(span_block_owners(needy, counts, bs), blocks, strict=True):
            running[i].blocks.append(block)
