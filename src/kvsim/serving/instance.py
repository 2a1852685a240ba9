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
could be admitted truncates the span at the next step boundary. A step that admits requests
whose whole (remaining) prefill runs in it while everyone else decodes becomes step 0 of the
following span when the head cannot be admitted at step 1 either (:mod:`.instance_span`), so
an admission costs no event of its own. ``exact_steps`` caps every span at one step (and never
merges); both modes make the same decisions in the same order.

Cluster features reach in through two narrow doors that keep that equivalence: the waiting
queue is a :class:`WaitQueue` (a policy from :mod:`kvsim.serving.queues` behind a FIFO front
lane for resumed sequences), and :class:`InstanceHooks` (rejections, freed capacity, the end
of a prefill for phase-level routing). Reading or reserving KV mid-span first materialises
the span's block allocations up to the step exact stepping would be in
(:meth:`Instance.reserve_blocks`). Memory pressure is in :mod:`kvsim.serving.pressure`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kvsim.engine.loop import EventLoop, Phase
from kvsim.errors import SimulationError
from kvsim.kv.block_pool import BlockPool, KVBlock
from kvsim.serving.hooks import InstanceHooks, InstanceObserver, InstanceSetup, TerminalHooks
from kvsim.serving.instance_kv import SpanKVAccess
from kvsim.serving.instance_span import SpanSteps
from kvsim.serving.prefix_cache import LOADING, TieredPrefix, interleave
from kvsim.serving.pressure import relieve
from kvsim.serving.queues import WaitQueue, create_queue_policy
from kvsim.serving.seq import Seq, SeqState
from kvsim.serving.span import DecodeSpan

if TYPE_CHECKING:
    from kvsim.config.schema import CacheConfig, SchedulerConfig

__all__ = ["Instance", "InstanceHooks", "InstanceObserver", "InstanceSetup", "TerminalHooks"]


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


class Instance(SpanSteps, SpanKVAccess, TieredPrefix):
    """Scheduler state of one replica. Runtime-only; the request objects stay immutable.

    ``cache`` (the config's ``cache`` section) adds lower memory tiers below HBM
    (:mod:`kvsim.serving.prefix_cache`); None: HBM only, as ``prefix_caching`` says."""

    def __init__(
        self,
        setup: InstanceSetup,
        sched: SchedulerConfig,
        loop: EventLoop,
        observer: InstanceObserver,
        hooks: InstanceHooks | None = None,
        *,
        prefix_caching: bool,
        exact_steps: bool = False,
        cache: CacheConfig | None = None,
    ) -> None:
        self.setup = setup
        self.index = setup.index
        self.decode_speed = setup.decode_speed
        self.block_size = sched.block_size
        self.max_num_seqs = setup.max_num_seqs
        self.max_num_batched_tokens = sched.max_num_batched_tokens
        self.chunked_prefill = sched.chunked_prefill
        self.safe = sched.admission == "safe"
        self.swap = sched.preemption == "swap"
        self.max_waiting = sched.max_waiting
        self.caching = prefix_caching
        self.exact_steps = exact_steps
        self.memory_pressure = sched.memory_pressure
        self.reject_on_pressure = sched.memory_pressure == "reject"
        self.evict_lru = sched.evict_victim == "lru"
        self.pool = BlockPool(setup.num_blocks, enable_caching=prefix_caching)
        self.tm = setup.time_model
        self.loop = loop
        self.obs = observer
        self.hooks: InstanceHooks = hooks if hooks is not None else TerminalHooks(observer)
        self.running: list[Seq] = []
        self.waiting = WaitQueue(create_queue_policy(sched.queue_policy, sched.fair_weights))
        self.route_decodes = False  # set by the cluster when decode routing is on
        self.num_incoming = 0  # handoffs on their way here (their blocks are reserved)
        self.num_outgoing = 0  # handoffs leaving (their blocks are freed on completion)
        # the step (or span) in flight
        self._batch: list[tuple[Seq, int]] = []
        self._span: DecodeSpan | None = None
        self._step_start_s = 0.0
        self._step_end_s = 0.0
        self._version = 0
        self._span_fin = 0
        self._span_firsts: list[int] = []
        self._span_prefills = 0  # newcomers prefilling in a mixed step 0 of the span
        # whether the observer may hear of a first token before its time (no event stream)
        self._emit_first_now = not getattr(observer, "streams_events", True)
        self._span_alloc_through = 0  # span steps whose blocks are allocated
        self._step_event = -1  # id of the pending STEP_END (cancelled when a span is cut)
        self._busy = False
        self._schedule_pending = False
        # counters
        self.tokens_generated = 0
        self.busy_s = 0.0
        self.peak_blocks = 0
        self.num_finished = 0
        self.num_preemptions = 0
        self.num_evictions = 0
        self.num_prefix_hit_blocks = 0
        self.num_prefix_query_blocks = 0
        self.num_steps = 0
        self._init_tiers(cache, setup.time_model)

    # ------------------------------------------------------------------ arrivals
    def can_ever_fit(self, seq: Seq) -> str:
        """'' if the request could run here alone, else the reason it never can."""
        if _cdiv(seq.max_kv_tokens, self.block_size) > self.pool.num_blocks:
            return "kv_capacity"
        if not self.chunked_prefill and seq.req.prompt_tokens > self.max_num_batched_tokens:
            return "max_num_batched_tokens"
        return ""

    def load(self) -> int:
        """Sequences running, queued, or on their way here by handoff."""
        return len(self.running) + self.waiting.num + self.num_incoming

    def submit_reason(self, seq: Seq) -> str:
        """'' if ``seq`` may be queued here now, else why not."""
        reason = self.can_ever_fit(seq)
        if not reason and self.max_waiting is not None and len(self.waiting) >= self.max_waiting:
            reason = "max_waiting"
        return reason

    def submit(self, seq: Seq, now: float) -> None:
        """Queue a routed request at ``now`` (check :meth:`submit_reason` first)."""
        seq.instance = self.index
        seq.state = SeqState.WAITING
        self.waiting.push(seq)
        if not self._busy:
            self._request_schedule(now)
        elif self._span is not None and self.waiting.head() is seq:
            self._maybe_truncate(now)  # a new head (FIFO: the queue was empty) may fit now

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
        self.loop.cancel(self._step_event)
        self._step_event = self.loop.push(
            self._step_end_s, Phase.STEP_END, self._on_step_end, self._version
        )

    # ------------------------------------------------------------------ scheduling
    def _schedule(self, now: float) -> None:
        """Form the next batch at ``now`` and schedule its end (one step or a span)."""
        decode = self._decode_all() if self.running else None
        if decode is not None and not self._head_admissible_soon():
            self._start_span(now, *decode)
            return
        # batch: the running sequences' chunks (all decodes when ``decode`` is set, then
        # left implicit until needed), then the admitted ones'
        batch: list[tuple[Seq, int]] = []
        n_old = len(self.running)
        if decode is not None:  # every running seq decodes; someone may join
            kv_read = decode[0]
            cost = _StepCost(n_old, float(kv_read), kv_read, 0, self.max_num_batched_tokens - n_old)
            preempted = False
        else:
            cost = _StepCost()
            preempted = self._schedule_running(now, batch, cost)
        admitted = False
        stop = 1
        if not preempted or not batch:  # (a preemption that emptied the batch: admit, as
            # nothing else could run; a waiting handoff may hold the blocks it lacked)
            admitted, stop = self._admit_waiting(now, batch, cost, decode is not None)
        if decode is not None:
            if not admitted:
                self._start_span(now, *decode)
                return
        elif not batch:
            if self.waiting and not (self.num_incoming or self.num_outgoing):
                raise SimulationError(f"instance {self.index}: waiting requests but nothing runs")
            return
        tm = self.tm
        step_s = (
            tm.step_time(cost.tokens, cost.attn, cost.kv_read)
            + cost.swap_tokens * tm.swap_sec_per_token
        )
        if (decode is not None or n_old == 0) and self._can_merge(batch, stop):
            self._start_mixed_span(now, decode, batch, step_s)  # batch: the newcomers
            return
        # Here the step prefills, admits or preempts: an all-decode batch that merely lacked
        # memory for its next blocks went through _schedule_running and preempted.
        if decode is not None:
            batch[:0] = [(s, 1) for s in self.running[:n_old]]
        self._batch = batch
        self._span = None
        self._begin(now, now + step_s)

    def _begin(self, now: float, end_s: float) -> None:
        self._busy = True
        self._step_start_s = now
        self._step_end_s = end_s
        self.num_steps += 1
        pool = self.pool
        used = pool.num_blocks - pool.num_free_blocks
        if used > self.peak_blocks:
            self.peak_blocks = used
        self._version += 1
        self._step_event = self.loop.push(end_s, Phase.STEP_END, self._on_step_end, self._version)

    def _head_admissible_soon(self) -> bool:
        """Whether the waiting head might be admitted this step (cheap necessary checks)."""
        return self.waiting.num != 0 and (
            len(self.running) < self.max_num_seqs
            and len(self.running) < self.max_num_batched_tokens
        )

    def _schedule_running(self, now: float, batch: list[tuple[Seq, int]], cost: _StepCost) -> bool:
        """Give running sequences their next chunk, preempting from the back when blocks run
        out. Returns whether anything was preempted; accumulates the step's cost."""
        bs = self.block_size
        pool = self.pool
        running = self.running
        preempted = False
        budget = self.max_num_batched_tokens
        tokens = kv_read = 0
        attn = 0.0
        i = 0
        while i < len(running) and budget > 0:
            seq = running[i]
            p = seq.num_computed
            c = min(seq.prefill_target - p, budget) if p < seq.prefill_target else 1
            nb = len(seq.blocks)
            if p + c > nb * bs:
                need = -(-(p + c) // bs) - nb
                while pool.num_free_blocks < need:
                    cost.swap_tokens += relieve(self, i, now)
                    preempted = True
                    if seq.state is not SeqState.RUNNING:
                        break
                if seq.state is not SeqState.RUNNING:
                    continue  # running[i] is the next sequence now (or the list ended)
                blocks = pool.allocate(need)
                assert blocks is not None
                seq.blocks.extend(blocks)
            batch.append((seq, c))
            budget -= c
            tokens += c
            attn += c * p + c * (c + 1) / 2.0
            kv_read += p + c
            i += 1
        cost.tokens, cost.attn, cost.kv_read = tokens, attn, kv_read
        cost.budget = budget
        return preempted

    def _admit_waiting(
        self, now: float, batch: list[tuple[Seq, int]], cost: _StepCost, decoding: bool = False
    ) -> tuple[bool, int]:
        """Admit waiting requests in FIFO order (head-of-line blocking). Returns whether any
        was admitted and why admission stopped (0: the head lacks token budget, -1: it lacks
        KV blocks, 1: no head, no budget left or ``max_num_seqs``); adds the admitted chunks
        (and swap-ins) to ``cost``. ``decoding``: the running sequences decode in this step
        without being listed in ``batch``."""
        admitted = False
        stop = 1
        waiting = self.waiting
        running = self.running
        max_seqs = self.max_num_seqs
        while waiting.num and cost.budget > 0 and len(running) < max_seqs:
            seq = waiting.head()
            c = self._try_admit(seq, now, cost.budget, not batch and not decoding)
            if c == LOADING:  # it loads its prefix from a lower tier, then comes back
                waiting.pop_head()
                continue
            if c <= 0:
                if c < 0 and self.reject_on_pressure:  # its blocks are not free: reject now
                    waiting.pop_head()
                    self.hooks.reject(self, seq, now, "kv_pressure", True)
                    continue
                stop = c
                break
            waiting.pop_head()
            if seq.swapped:
                cost.swap_tokens += seq.num_computed
                seq.swapped = False
            seq.state = SeqState.RUNNING
            seq.admitted_s = now
            running.append(seq)
            batch.append((seq, c))
            p = seq.num_computed
            cost.budget -= c
            cost.tokens += c
            cost.attn += c * p + c * (c + 1) / 2.0
            cost.kv_read += p + c
            admitted = True
        return admitted, stop

    def _try_admit(self, seq: Seq, now: float, budget: int, step_empty: bool) -> int:
        """Allocate blocks for ``seq``'s first chunk; return the chunk size, or 0 (not now:
        token budget) or -1 (not now: KV blocks), with no change; or LOADING: its blocks are
        taken and it loads its prefix from a lower tier (it left the queue; it comes back)."""
        if seq.blocks:  # resident after a KV handoff: its blocks were reserved here
            return 1
        bs = self.block_size
        pool = self.pool
        hits: list[KVBlock] = []
        run: list[KVBlock | None] = []
        loads: list[int] = []
        target = seq.prefill_target
        swapped = seq.swapped
        if not swapped:
            if self.caching and seq.hashes:
                run, hits, loads = self.lower.match(pool, seq.hashes[: (target - 1) // bs])
            base = len(run) * bs
        else:
            base = seq.num_computed
        remaining = target - base
        if remaining > 0:
            if not self.chunked_prefill:
                if remaining > budget and not step_empty:
                    return 0
                c = remaining
            else:
                c = remaining if remaining < budget else budget
        else:
            c = 1
        total = -(-(base + c) // bs)
        if self.safe:
            total = max(total, -(-seq.max_kv_tokens // bs))
        n_hits = len(hits)
        need_new = total - n_hits
        reclaim = sum(1 for b in hits if b.ref_cnt == 0) if hits else 0
        if need_new + reclaim > pool.num_free_blocks:
            return -1
        if swapped:
            blocks = pool.allocate(need_new)
            assert blocks is not None
            seq.blocks = blocks
            return c
        first = seq.cached_tokens < 0
        pool.touch(hits)
        load_s = self._load_lower(loads, first) if loads else 0.0  # before evictions demote
        blocks = pool.allocate(len(loads) if loads else need_new)  # a load: its blocks only
        assert blocks is not None
        seq.blocks = interleave(run, blocks) if loads else hits + blocks
        pool.bind(seq.blocks)
        seq.num_computed = base
        seq.num_cached_blocks = run.index(None) if loads else n_hits
        if first:
            seq.cached_tokens = base
            seq.first_scheduled_s = now
            self.num_prefix_hit_blocks += n_hits
            self.num_prefix_query_blocks += min(len(seq.hashes), seq.req.prompt_tokens // bs)
            self.obs.on_admit(seq, now)
        if loads:
            self._await_load(seq, load_s, now)
            return LOADING
        return c

    def _take_hits(self, hits: list[KVBlock], need_new: int) -> list[KVBlock]:
        """Reference the prefix hits, then allocate ``need_new`` blocks after them (they fit)."""
        self.pool.touch(hits)
        blocks = self.pool.allocate(need_new)
        assert blocks is not None
        return hits + blocks

    def preempt(self, seq: Seq, now: float) -> int:
        """Preempt ``seq`` (the back of the running list). Returns tokens swapped out."""
        self.running.pop()
        self.drop_kv(seq)
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
        self.waiting.push_front(seq)
        self.obs.on_preempt(seq, now)
        return swapped

    def drop_kv(self, seq: Seq) -> None:
        """Free ``seq``'s blocks here (tail first, so its tail is evicted first)."""
        self._release_hashes(seq)
        blocks = seq.blocks
        blocks.reverse()  # tail blocks become the first to be evicted
        self.pool.free(blocks)
        seq.blocks = []

    # ------------------------------------------------------------------ step end
    def _on_step_end(self, now: float, version: int) -> None:
        if version != self._version:
            return  # superseded by a truncation
        self._busy = False
        self.busy_s += now - self._step_start_s
        span = self._span
        if span is not None:
            self._span = None
            self._apply_span(now, span)
        else:
            self._apply_step(now)
            self._batch = []
        if self.running or self.waiting.num:
            self._request_schedule(now)

    def _apply_step(self, now: float) -> None:
        bs = self.block_size
        pool = self.pool
        caching = self.caching
        done = False
        prefilled: list[Seq] = []
        for seq, c in self._batch:
            was_prefill = seq.num_computed < seq.prefill_target
            seq.num_computed += c
            if caching and seq.num_cached_blocks < len(seq.hashes):
                upto = min(seq.num_computed // bs, len(seq.hashes))
                if upto > seq.num_cached_blocks:
                    pool.cache_blocks(seq.blocks, seq.hashes, seq.num_cached_blocks, upto)
                    seq.num_cached_blocks = upto
            if was_prefill and seq.num_computed < seq.prefill_target:
                continue  # chunk done, prefill not finished: no token yet
            seq.num_output += 1
            self.tokens_generated += 1
            if seq.first_token_s < 0:
                if self.route_decodes and seq.num_output < seq.req.output_tokens:
                    prefilled.append(seq)  # its first token is delivered where it decodes
                    continue
                seq.first_token_s = now
                self.obs.on_first_token(seq, now)
            if seq.num_output >= seq.req.output_tokens:
                done = True
        for seq in prefilled:
            if not self.hooks.on_prefill_done(self, seq, now):
                seq.first_token_s = now
                self.obs.on_first_token(seq, now)
        if done:
            self._finish_done(now)

    def _finish_done(self, now: float) -> None:
        """Retire every running sequence that produced its last token."""
        keep: list[Seq] = []
        finished = False
        for s in self.running:
            if s.num_output >= s.req.output_tokens:
                self.drop_kv(s)
                s.state = SeqState.FINISHED
                s.finish_s = now
                self.num_finished += 1
                self.obs.on_finish(s, now)
                finished = True
            else:
                keep.append(s)
        self.running = keep
        if finished:
            self.hooks.on_capacity(self, now)

    # ------------------------------------------------------------------ observation
    def snapshot(self, time_s: float) -> tuple[int, int, int, int, int]:
        """(blocks used, tokens generated, active prefill, active decode, queued) at
        ``time_s`` (>= the last event), counting the steps of a span already done by then."""
        used = self.pool.num_used_blocks
        tokens = self.tokens_generated
        span = self._span
        if span is not None and self._busy:  # a span: nobody prefills after step 0
            # k steps done, step k in flight: its blocks were taken when it started, as in
            # exact stepping (a span's STEP_END at or before time_s was already applied)
            k = span.steps_done_by(time_s)
            tokens += k * span.batch
            used += self._span_pending_blocks(min(k, span.num_steps - 1))
            prefill = self._span_prefills if k == 0 else 0
            return used, tokens, prefill, len(self.running) - prefill, len(self.waiting)
        prefill = sum(1 for s in self.running if s.prefilling)
        return used, tokens, prefill, len(self.running) - prefill, len(self.waiting)

    def abort_all(self, now: float) -> list[Seq]:
        """End the run: every non-terminal sequence becomes UNFINISHED (returned). A first
        token that a span's mixed step 0 would give after ``now`` did not happen."""
        left = [*self.running, *self.waiting, *self.loading_seqs()]
        for s in left:
            s.state = SeqState.UNFINISHED
            if s.first_token_s > now:
                s.first_token_s = -1.0
        self.running = []
        self.waiting.clear()
        self._loading.clear()
        return left


@dataclass(slots=True)
class _StepCost:
    """Composition of the step being formed (roofline inputs) and what is left of its budget."""

    tokens: int = 0
    attn: float = 0.0
    kv_read: int = 0
    swap_tokens: int = 0
    budget: int = 0
