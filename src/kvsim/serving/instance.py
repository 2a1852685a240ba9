"""One model replica running iteration-level continuous batching (vLLM-style).

Each iteration the scheduler walks the running list in admission order giving every sequence
its next chunk (1 token for a decode, up to the token budget for a prefill), allocating KV
blocks as needed and preempting from the back of the running list when blocks run out; if
nothing was preempted it then admits waiting requests in FIFO order (head-of-line blocking)
while ``max_num_seqs``, the token budget and free blocks allow.

Fast-forward (DESIGN.md §4): when a step is a pure decode of every running sequence and the
waiting head cannot be admitted, the following steps are identical in structure until the
first completion or the first step whose block demand exceeds the free blocks. Admissibility
of the waiting head can only get worse while decoding (free blocks only shrink), so those steps
are computed in closed form (:class:`DecodeSpan`) and applied with ONE event. An arrival that
could be admitted truncates the span at the next step boundary. ``exact_steps`` caps every
span at one step; both modes make the same decisions in the same order.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Protocol

from kvsim.engine.loop import EventLoop, Phase
from kvsim.errors import SimulationError
from kvsim.kv.block_pool import BlockPool
from kvsim.perf.roofline import RooflineModel
from kvsim.serving.seq import Seq, SeqState
from kvsim.serving.span import DecodeSpan

if TYPE_CHECKING:
    from kvsim.config.schema import SchedulerConfig

__all__ = ["Instance", "InstanceObserver"]


class InstanceObserver(Protocol):
    """Receives the lifecycle of sequences (implemented by the metrics collector)."""

    def on_admit(self, seq: Seq, now: float) -> None: ...
    def on_first_token(self, seq: Seq, now: float) -> None: ...
    def on_finish(self, seq: Seq, now: float) -> None: ...
    def on_preempt(self, seq: Seq, now: float) -> None: ...
    def on_reject(self, seq: Seq, now: float) -> None: ...


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


class Instance:
    """Scheduler state of one replica. Runtime-only; the request objects stay immutable."""

    def __init__(
        self,
        index: int,
        sched: SchedulerConfig,
        num_blocks: int,
        time_model: RooflineModel,
        loop: EventLoop,
        observer: InstanceObserver,
        *,
        prefix_caching: bool,
        exact_steps: bool = False,
    ) -> None:
        self.index = index
        self.block_size = sched.block_size
        self.max_num_seqs = sched.max_num_seqs
        self.max_num_batched_tokens = sched.max_num_batched_tokens
        self.chunked_prefill = sched.chunked_prefill
        self.safe = sched.admission == "safe"
        self.swap = sched.preemption == "swap"
        self.max_waiting = sched.max_waiting
        self.caching = prefix_caching
        self.exact_steps = exact_steps
        self.pool = BlockPool(num_blocks, enable_caching=prefix_caching)
        self.tm = time_model
        self.loop = loop
        self.obs = observer
        self.running: list[Seq] = []
        self.waiting: deque[Seq] = deque()
        # the step (or span) in flight
        self._batch: list[tuple[Seq, int]] = []
        self._span: DecodeSpan | None = None
        self._step_start_s = 0.0
        self._step_end_s = 0.0
        self._version = 0
        self._busy = False
        self._schedule_pending = False
        # counters
        self.tokens_generated = 0
        self.busy_s = 0.0
        self.peak_blocks = 0
        self.num_finished = 0
        self.num_preemptions = 0
        self.num_prefix_hit_blocks = 0
        self.num_prefix_query_blocks = 0
        self.num_steps = 0

    # ------------------------------------------------------------------ arrivals
    def can_ever_fit(self, seq: Seq) -> str:
        """'' if the request could run here alone, else the reason it never can."""
        if _cdiv(seq.max_kv_tokens, self.block_size) > self.pool.num_blocks:
            return "kv_capacity"
        if not self.chunked_prefill and seq.req.prompt_tokens > self.max_num_batched_tokens:
            return "max_num_batched_tokens"
        return ""

    def load(self) -> int:
        return len(self.running) + len(self.waiting)

    def submit(self, seq: Seq, now: float) -> None:
        """Accept a routed request at ``now`` (it may be rejected here)."""
        seq.instance = self.index
        reason = self.can_ever_fit(seq)
        if not reason and self.max_waiting is not None and len(self.waiting) >= self.max_waiting:
            reason = "max_waiting"
        if reason:
            seq.state = SeqState.REJECTED
            seq.reject_reason = reason
            self.obs.on_reject(seq, now)
            return
        was_empty = not self.waiting
        self.waiting.append(seq)
        if not self._busy:
            self._request_schedule(now)
        elif was_empty and self._span is not None:
            self._maybe_truncate(now)

    def _request_schedule(self, now: float) -> None:
        if self._schedule_pending:
            return
        if self.loop.peek_time() > now:
            self._schedule(now)
        else:
            self._schedule_pending = True
            self.loop.push(now, Phase.SCHEDULE, self._on_schedule_event)

    def _on_schedule_event(self, now: float, _arg: object) -> None:
        self._schedule_pending = False
        if not self._busy:
            self._schedule(now)

    def _maybe_truncate(self, now: float) -> None:
        """An admissible arrival ends the current span at the next step boundary."""
        span = self._span
        assert span is not None
        if len(self.running) >= self.max_num_seqs or span.batch >= self.max_num_batched_tokens:
            return
        k = span.first_boundary_at_or_after(now)
        if k >= span.num_steps:
            return
        span.num_steps = k
        self._version += 1
        self._step_end_s = span.end_time(k)
        self.loop.push(self._step_end_s, Phase.STEP_END, self._on_step_end, self._version)

    # ------------------------------------------------------------------ scheduling
    def _schedule(self, now: float) -> None:
        """Form the next batch at ``now`` and schedule its end (one step or a span)."""
        batch: list[tuple[Seq, int]] = []
        budget = self.max_num_batched_tokens
        preempted, swap_tokens = self._schedule_running(now, batch, budget)
        for _seq, c in batch:
            budget -= c
        admitted = False
        if not preempted:
            admitted, swap_in = self._admit_waiting(now, batch, budget)
            swap_tokens += swap_in
        if not batch:
            if self.waiting:
                raise SimulationError(f"instance {self.index}: waiting requests but nothing runs")
            return
        self._batch = batch
        self._busy = True
        self._step_start_s = now
        self.num_steps += 1
        used = self.pool.num_used_blocks
        if used > self.peak_blocks:
            self.peak_blocks = used
        if (
            not admitted
            and not preempted
            and swap_tokens == 0
            and len(batch) == len(self.running)
            and all(c == 1 and not s.prefilling for s, c in batch)
        ):
            n = 1 if self.exact_steps else self._span_length()
            ctx0 = sum(s.num_computed for s, _ in batch) + len(batch)
            self._span = DecodeSpan.plan(self.tm, now, len(batch), ctx0, n)
            self._step_end_s = self._span.end_time(n)
        else:
            self._span = None
            tokens = 0
            attn = 0.0
            kv_read = 0
            for s, c in batch:
                p = s.num_computed
                tokens += c
                attn += c * p + c * (c + 1) / 2.0
                kv_read += p + c
            dur = (
                self.tm.step_time(tokens, attn, kv_read) + swap_tokens * self.tm.swap_sec_per_token
            )
            self._step_end_s = now + dur
        self._version += 1
        self.loop.push(self._step_end_s, Phase.STEP_END, self._on_step_end, self._version)

    def _schedule_running(
        self, now: float, batch: list[tuple[Seq, int]], budget: int
    ) -> tuple[bool, int]:
        """Give running sequences their next chunk, preempting from the back when blocks run
        out. Returns (whether anything was preempted, tokens swapped out)."""
        bs = self.block_size
        pool = self.pool
        running = self.running
        preempted = False
        swap_tokens = 0
        i = 0
        while i < len(running) and budget > 0:
            seq = running[i]
            c = min(seq.prefill_target - seq.num_computed, budget) if seq.prefilling else 1
            need = _cdiv(seq.num_computed + c, bs) - len(seq.blocks)
            if need > 0:
                while pool.num_free_blocks < need:
                    victim = running[-1]
                    swap_tokens += self._preempt(victim, now)
                    preempted = True
                    if victim is seq:
                        break
                if seq.state is not SeqState.RUNNING:
                    break
                blocks = pool.allocate(need)
                assert blocks is not None
                seq.blocks.extend(blocks)
            batch.append((seq, c))
            budget -= c
            i += 1
        return preempted, swap_tokens

    def _admit_waiting(
        self, now: float, batch: list[tuple[Seq, int]], budget: int
    ) -> tuple[bool, int]:
        """Admit waiting requests in FIFO order. Returns (any admitted, tokens swapped in)."""
        admitted = False
        swap_in = 0
        waiting = self.waiting
        while waiting and budget > 0 and len(self.running) < self.max_num_seqs:
            seq = waiting[0]
            c = self._try_admit(seq, now, budget, not batch)
            if c == 0:
                break
            waiting.popleft()
            if seq.swapped:
                swap_in += seq.num_computed
                seq.swapped = False
            seq.state = SeqState.RUNNING
            self.running.append(seq)
            batch.append((seq, c))
            budget -= c
            admitted = True
        return admitted, swap_in

    def _try_admit(self, seq: Seq, now: float, budget: int, step_empty: bool) -> int:
        """Allocate blocks for ``seq``'s first chunk; return the chunk size, or 0 (no change)."""
        bs = self.block_size
        pool = self.pool
        hits = []
        if not seq.swapped:
            if self.caching and seq.hashes:
                max_hit = (seq.prefill_target - 1) // bs
                hits = pool.match_prefix(seq.hashes[:max_hit])
            base = len(hits) * bs
        else:
            base = seq.num_computed
        remaining = seq.prefill_target - base
        if remaining > 0:
            if not self.chunked_prefill and remaining > budget and not step_empty:
                return 0
            c = remaining if not self.chunked_prefill else min(remaining, budget)
        else:
            c = 1
        total = _cdiv(seq.max_kv_tokens if self.safe else base + c, bs)
        if self.safe:
            total = max(total, _cdiv(base + c, bs))
        need_new = total - len(hits)
        reclaim = sum(1 for b in hits if b.ref_cnt == 0)
        if need_new + reclaim > pool.num_free_blocks:
            return 0
        if seq.swapped:
            blocks = pool.allocate(need_new)
            assert blocks is not None
            seq.blocks = blocks
            return c
        pool.touch(hits)
        blocks = pool.allocate(need_new)
        assert blocks is not None
        seq.blocks = hits + blocks
        seq.num_computed = base
        seq.num_cached_blocks = len(hits)
        if seq.cached_tokens < 0:
            seq.cached_tokens = base
            seq.first_scheduled_s = now
            self.num_prefix_hit_blocks += len(hits)
            self.num_prefix_query_blocks += len(seq.hashes)
            self.obs.on_admit(seq, now)
        return c

    def _preempt(self, seq: Seq, now: float) -> int:
        """Evict ``seq`` (the back of the running list). Returns tokens swapped out."""
        self.running.pop()
        self._free_blocks(seq)
        swapped = 0
        if self.swap:
            seq.swapped = True
            swapped = seq.num_computed
        else:
            seq.num_computed = 0
            seq.prefill_target = seq.req.prompt_tokens + seq.num_output
        seq.num_cached_blocks = 0
        seq.state = SeqState.WAITING
        seq.num_preemptions += 1
        self.num_preemptions += 1
        self.waiting.appendleft(seq)
        self.obs.on_preempt(seq, now)
        return swapped

    def _free_blocks(self, seq: Seq) -> None:
        blocks = seq.blocks
        blocks.reverse()  # tail blocks become the first to be evicted
        self.pool.free(blocks)
        seq.blocks = []

    def _span_length(self) -> int:
        """Steps the current pure-decode batch can run before its composition changes."""
        bs = self.block_size
        n_fin = min(s.req.output_tokens - s.num_output for s in self.running)
        free = self.pool.num_free_blocks
        firsts = [len(s.blocks) * bs - s.num_computed for s in self.running]
        # step k (0-based) of the span needs a new block for seq i iff k >= firsts[i] and
        # (k - firsts[i]) % bs == 0; step 0's blocks are already allocated (firsts >= 1).
        demand = _block_demand(firsts, bs, n_fin - 1)
        if demand <= free:
            return n_fin
        lo, hi = 1, n_fin - 1  # largest n with demand(n - 1) <= free; demand(0) == 0
        while lo < hi:
            mid = (lo + hi + 1) >> 1
            if _block_demand(firsts, bs, mid - 1) <= free:
                lo = mid
            else:
                hi = mid - 1
        return lo

    # ------------------------------------------------------------------ step end
    def _on_step_end(self, now: float, version: int) -> None:
        if version != self._version:
            return  # superseded by a truncation
        self._busy = False
        self.busy_s += now - self._step_start_s
        if self._span is not None:
            self._apply_span(now, self._span)
        else:
            self._apply_step(now)
        self._batch = []
        self._span = None
        if self.running or self.waiting:
            self._request_schedule(now)

    def _apply_span(self, now: float, span: DecodeSpan) -> None:
        n = span.num_steps
        bs = self.block_size
        running = self.running
        if n > 1:
            firsts = [len(s.blocks) * bs - s.num_computed for s in running]
            order = sorted(range(len(running)), key=firsts.__getitem__)
            counts = [0 if f > n - 1 else (n - 1 - f) // bs + 1 for f in firsts]
            total = sum(counts)
            if total:
                blocks = self.pool.allocate(total)
                if blocks is None:
                    raise SimulationError("span block demand exceeded the free blocks")
                it = iter(blocks)
                if max(f for f, c in zip(firsts, counts, strict=True) if c) <= bs:
                    # every sequence's events fall one per bs-step round, in the same order
                    for rnd in range(max(counts)):
                        for i in order:
                            if counts[i] > rnd:
                                running[i].blocks.append(next(it))
                else:  # general case: sort the (step, position) events themselves
                    events = sorted(
                        (firsts[i] + m * bs, i) for i in order for m in range(counts[i])
                    )
                    for _k, i in events:
                        running[i].blocks.append(next(it))
        for s in running:
            s.num_computed += n
            s.num_output += n
        self.tokens_generated += n * len(running)
        used = self.pool.num_used_blocks
        if used > self.peak_blocks:
            self.peak_blocks = used
        self._finish_done(now)

    def _apply_step(self, now: float) -> None:
        bs = self.block_size
        pool = self.pool
        caching = self.caching
        for seq, c in self._batch:
            was_prefill = seq.prefilling
            seq.num_computed += c
            if caching and seq.num_cached_blocks < len(seq.hashes):
                upto = min(seq.num_computed // bs, len(seq.hashes))
                for j in range(seq.num_cached_blocks, upto):
                    pool.cache_block(seq.blocks[j], seq.hashes[j])
                seq.num_cached_blocks = max(seq.num_cached_blocks, upto)
            if was_prefill and seq.prefilling:
                continue  # chunk done, prefill not finished: no token yet
            seq.num_output += 1
            self.tokens_generated += 1
            if seq.first_token_s < 0:
                seq.first_token_s = now
                self.obs.on_first_token(seq, now)
        self._finish_done(now)

    def _finish_done(self, now: float) -> None:
        running = self.running
        if not any(s.num_output >= s.req.output_tokens for s in running):
            return
        keep: list[Seq] = []
        for s in running:
            if s.num_output >= s.req.output_tokens:
                self._free_blocks(s)
                s.state = SeqState.FINISHED
                s.finish_s = now
                self.num_finished += 1
                self.obs.on_finish(s, now)
            else:
                keep.append(s)
        self.running = keep

    # ------------------------------------------------------------------ observation
    def snapshot(self, time_s: float) -> tuple[int, int, int, int, int]:
        """(blocks used, tokens generated, active prefill, active decode, queued) at
        ``time_s`` (>= the last event), counting the steps of a span already done by then."""
        used = self.pool.num_used_blocks
        tokens = self.tokens_generated
        span = self._span
        if span is not None and self._busy:
            k = span.steps_done_by(time_s)
            if k:
                bs = self.block_size
                tokens += k * span.batch
                for s in self.running:
                    f = len(s.blocks) * bs - s.num_computed
                    if f <= k - 1:
                        used += (k - 1 - f) // bs + 1
        prefill = sum(1 for s in self.running if s.prefilling)
        return used, tokens, prefill, len(self.running) - prefill, len(self.waiting)

    def abort_all(self, now: float) -> list[Seq]:
        """End the run: every non-terminal sequence becomes UNFINISHED (returned)."""
        left = [*self.running, *self.waiting]
        for s in left:
            s.state = SeqState.UNFINISHED
        self.running = []
        self.waiting.clear()
        return left


def _block_demand(firsts: list[int], bs: int, k: int) -> int:
    """New blocks needed by steps 1..k of a span (see ``Instance._span_length``)."""
    return sum((k - f) // bs + 1 for f in firsts if f <= k)
