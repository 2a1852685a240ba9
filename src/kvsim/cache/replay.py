"""The replay loop of ``kvsim cache``: requests (and prefetches) in time order through N workers.

For each request, in arrival order (ties: file order)::

    w   = router.route(req, hashes, workers)
    res = workers[w].stack.lookup(hashes, now=arrival)       # prefix hit, promotions
    workers[w].stack.insert(hashes[res.num_hit:], ...)       # computed blocks
    workers[w].stack.insert(output_hashes, ...)              # blocks the output completes
    ttft = compute(missed tokens) + load_time (+ wait for an unfinished prefetch)

A session prefetch for turn ``r`` (previous turn ``p`` on worker ``w``) is an event at
``max(arrival_r - lookahead_s, arrival_p)`` on worker ``w``: it brings ``p``'s blocks (prompt
and output) up to the top tier. It is ready ``read time`` later; if ``r`` uses prefetched
blocks before then, the remainder is added to its TTFT. Events at equal times: prefetches
before requests, except a prefetch clamped to ``arrival_p``, which runs just after ``p``.

Next-use annotations (belady) are computed over the global access sequence (every request's
prompt blocks then output blocks, in arrival order); with several workers a block's next
use may be on another worker, so belady is then an oracle of the global sequence, not of each
worker's own one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kvsim.cache.routers.base import CacheRouter, Worker
from kvsim.cache.timing import PrefillTimer
from kvsim.errors import ConfigError
from kvsim.kv.hashing import rechunk_hashes
from kvsim.kv.policies.base import annotate_next_use
from kvsim.kv.tiers.remote import RemotePools
from kvsim.kv.tiers.stack import TierStack
from kvsim.kv.tiers.tier import Tier, TierSpec
from kvsim.workload.request import Request

REMOTE_TIER = "remote_pool"
"""Pseudo tier name of cross-rack pool hits in rows and summaries (``hit_blocks_remote_pool``)."""

__all__ = [
    "REMOTE_TIER",
    "CacheReplay",
    "PreparedTrace",
    "build_workers",
    "prepare_trace",
    "unique_tiers",
]

_STACK_COUNTERS = (
    "num_accesses",
    "num_hits",
    "num_remote_hits",
    "num_misses",
    "num_inserted",
    "num_dropped",
    "num_prefetch_issued",
    "num_prefetch_used",
    "num_prefetch_wasted",
)


@dataclass(slots=True)
class PreparedTrace:
    """Requests with their block hashes at ``block_size`` tokens per block.

    ``hashes[r]``: the full prompt blocks of request ``r``; ``out_hashes[r]``: the full blocks
    its output completes (empty unless the workload provides them and ``cache_outputs``).
    ``unique_blocks`` counts distinct hashes over both. The first ``num_warmup`` requests are
    the warm-up split.
    """

    requests: list[Request]
    hashes: list[tuple[int, ...]]
    out_hashes: list[tuple[int, ...]]
    block_size: int
    unique_blocks: int
    num_warmup: int
    next_use: list[int] | None = None
    offsets: list[int] = field(default_factory=list)


def _rechunk(req: Request, block_size: int, cache_outputs: bool) -> tuple[tuple, tuple]:
    src = req.hash_block_size
    outs = req.output_block_hashes if cache_outputs else ()
    if src == block_size:
        return req.block_hashes, outs
    n_prompt = req.prompt_tokens // block_size
    total = req.prompt_tokens + (req.output_tokens if outs else 0)
    both = rechunk_hashes((*req.block_hashes, *outs), src, block_size, total)
    return tuple(both[:n_prompt]), tuple(both[n_prompt:])


def prepare_trace(
    requests: Sequence[Request],
    block_size: int | None,
    *,
    cache_outputs: bool = True,
    warmup_fraction: float = 0.0,
    with_next_use: bool = False,
) -> PreparedTrace:
    """Re-chunk hashes to ``block_size`` (default: the trace's), count unique blocks, split
    off the warm-up and, if asked, annotate next uses over the global access sequence."""
    reqs = list(requests)
    if not reqs:
        raise ConfigError("workload", "the workload has no requests")
    bs = block_size or reqs[0].hash_block_size
    hashes: list[tuple[int, ...]] = []
    outs: list[tuple[int, ...]] = []
    for req in reqs:
        h, o = _rechunk(req, bs, cache_outputs)
        hashes.append(h)
        outs.append(o)
    unique: set[int] = set()
    for h, o in zip(hashes, outs, strict=True):
        unique.update(h)
        unique.update(o)
    if not unique:
        raise ConfigError(
            "workload",
            "the trace has no block hashes (no prompt reaches one full block, or the format "
            "carries none): kvsim cache needs prefix hashes (mooncake, synthetic, agentic)",
        )
    trace = PreparedTrace(
        reqs, hashes, outs, bs, len(unique), math.floor(warmup_fraction * len(reqs))
    )
    if with_next_use:
        flat: list[int] = []
        for h, o in zip(hashes, outs, strict=True):
            trace.offsets.append(len(flat))
            flat.extend(h)
            flat.extend(o)
        trace.next_use = annotate_next_use(flat)
    return trace


def _tier(spec: TierSpec) -> Tier:
    """A tier; a policy error names the tier's key path."""
    try:
        return Tier(spec)
    except ConfigError as exc:
        raise ConfigError(f"tiers.{spec.name}.policy_params", exc.message) from None


def build_workers(
    specs: Sequence[TierSpec],
    num_workers: int,
    block_bytes: float,
    *,
    workers_per_rack: int | None = None,
    cross_rack_path: tuple[float, float] | None = None,
    **stack_args: Any,
) -> list[Worker]:
    """``num_workers`` workers, each with a stack of fresh private tiers; a ``shared`` spec
    gives one tier object that every stack holds, a ``per_rack`` one one object per rack
    (worker ``w`` is in rack ``w // workers_per_rack``; None: one rack). With
    ``cross_rack_path = (bytes/s, seconds)`` every stack also reads the other racks' (first)
    per-rack tier over that path (:class:`RemotePools`)."""
    wpr = workers_per_rack or num_workers
    num_racks = -(-num_workers // wpr)
    shared = {i: _tier(s) for i, s in enumerate(specs) if s.shared and not s.per_rack}
    per_rack = {i: [_tier(s) for _ in range(num_racks)] for i, s in enumerate(specs) if s.per_rack}
    pools = next(iter(per_rack.values()), None)
    workers = []
    for w in range(num_workers):
        rack = w // wpr
        tiers = [
            shared[i] if i in shared else per_rack[i][rack] if i in per_rack else _tier(s)
            for i, s in enumerate(specs)
        ]
        remote = None
        if cross_rack_path is not None and pools is not None and num_racks > 1:
            remote = RemotePools(pools, rack, *cross_rack_path)
        stack = TierStack(tiers, block_bytes=block_bytes, remote=remote, **stack_args)
        workers.append(Worker(w, stack, rack=rack))
    return workers


def unique_tiers(workers: Sequence[Worker]) -> list[list[Tier]]:
    """Per tier level, the distinct tier objects (one per worker; one if shared)."""
    levels: list[list[Tier]] = []
    for level in range(len(workers[0].stack.tiers)):
        seen: dict[int, Tier] = {}
        for w in workers:
            tier = w.stack.tiers[level]
            seen.setdefault(id(tier), tier)
        levels.append(list(seen.values()))
    return levels


def snapshot(workers: Sequence[Worker]) -> dict[str, float]:
    """Counters summed over workers: stack counters, then ``<counter>_<tier>`` per level."""
    out: dict[str, float] = {k: sum(getattr(w.stack, k) for w in workers) for k in _STACK_COUNTERS}
    for tiers in unique_tiers(workers):
        name = tiers[0].name
        for key, _ in tiers[0].counters.as_dict().items():
            out[f"{key}_{name}"] = sum(t.counters.as_dict()[key] for t in tiers)
    return out


class CacheReplay:
    """One replay of a :class:`PreparedTrace` (see the module doc). Call :meth:`run` once."""

    def __init__(
        self,
        trace: PreparedTrace,
        workers: list[Worker],
        router: CacheRouter,
        timer: PrefillTimer,
        *,
        prefetch_lookahead_s: float | None = None,
        timeseries_points: int = 500,
    ) -> None:
        self.trace = trace
        self.workers = workers
        self.router = router
        self.timer = timer
        self.lookahead = prefetch_lookahead_s
        self.has_remote = any(w.stack.remote is not None for w in workers)
        self.tier_names = [t.name for t in workers[0].stack.tiers]
        if self.has_remote:
            self.tier_names.append(REMOTE_TIER)
        n = len(trace.requests)
        self.stride = max(1, math.ceil(n / timeseries_points))
        self.rows: list[dict[str, Any]] = []
        self.samples: list[dict[str, float]] = []
        self.warmup_counters: dict[str, float] = snapshot(workers)
        self._worker_of: list[int] = [-1] * n
        self._ready_at: dict[tuple[int, int], float] = {}
        self._prev: dict[int, int] = {}

    def _events(self) -> list[tuple[float, int, int, int]]:
        """``(time, order, seq, index)``: order 0 = prefetch for request ``index`` (before
        requests at that time), 1 = request ``index``, 2 = prefetch clamped to the arrival of
        the previous turn (just after it)."""
        reqs = self.trace.requests
        events = [(r.arrival_s, 1, i, i) for i, r in enumerate(reqs)]
        if self.lookahead is not None:
            last: dict[int, int] = {}
            for i, r in enumerate(reqs):
                sid = r.session_id
                if sid < 0:
                    continue
                p = last.get(sid)
                last[sid] = i
                if p is None:
                    continue
                self._prev[i] = p
                t = r.arrival_s - self.lookahead
                p_arr = reqs[p].arrival_s
                events.append((t, 0, i, i) if t > p_arr else (p_arr, 2, p, i))
        events.sort()
        return events

    def run(self, on_progress: Callable[[int, int], None] | None = None) -> None:
        """Replay every event; fills :attr:`rows`, :attr:`samples`, :attr:`warmup_counters`."""
        n = len(self.trace.requests)
        done = 0
        step = max(1, n // 200)
        if self.trace.num_warmup == 0:
            self.warmup_counters = snapshot(self.workers)
        for t, order, _, idx in self._events():
            if order != 1:
                self._prefetch(idx, t)
                continue
            self._serve(idx)
            done += 1
            if done == self.trace.num_warmup:
                self.warmup_counters = snapshot(self.workers)
            if done % self.stride == 0 or done == n:
                self._sample(t)
            if on_progress is not None and (done % step == 0 or done == n):
                on_progress(done, n)

    def _prefetch(self, idx: int, now: float) -> None:
        p = self._prev[idx]
        w = self._worker_of[p]
        if w < 0:
            return
        tr = self.trace
        blocks = (*tr.hashes[p], *tr.out_hashes[p])
        stack = self.workers[w].stack
        if stack.prefetch(blocks, now):
            self._ready_at[(w, tr.requests[idx].session_id)] = now + stack.last_prefetch_time_s

    def _serve(self, idx: int) -> None:
        tr = self.trace
        req = tr.requests[idx]
        hashes = tr.hashes[idx]
        w = self.router.route(req, hashes, self.workers)
        worker = self.workers[w]
        worker.num_requests += 1
        worker.last_used = idx
        self._worker_of[idx] = w
        stack = worker.stack
        now = req.arrival_s
        nu = tr.next_use
        off = tr.offsets[idx] if nu is not None else 0
        n = len(hashes)
        used_before = stack.num_prefetch_used
        res = stack.lookup(hashes, now, nu[off : off + n] if nu is not None else None)
        hit = res.num_hit
        if hit < n:
            stack.insert(
                hashes[hit:], now, first_depth=hit + 1,
                next_use=nu[off + hit : off + n] if nu is not None else None,
            )  # fmt: skip
        outs = tr.out_hashes[idx]
        if outs:
            m = len(outs)
            stack.insert(
                outs, now, first_depth=n + 1,
                next_use=nu[off + n : off + n + m] if nu is not None else None,
            )  # fmt: skip
        wait_s = 0.0
        if stack.num_prefetch_used > used_before:
            ready = self._ready_at.get((w, req.session_id), now)
            wait_s = max(0.0, ready - now)
        per_tier = res.hits_per_tier
        if self.has_remote:
            per_tier = (*per_tier, res.num_remote_hit)
        self._record(idx, w, per_tier, hit, res.load_time_s + wait_s, wait_s)

    def _record(
        self, idx: int, w: int, per_tier: tuple[int, ...], hit: int, load_s: float, wait_s: float
    ) -> None:
        tr = self.trace
        req = tr.requests[idx]
        p = req.prompt_tokens
        hit_tokens = hit * tr.block_size
        compute_s = self.timer.compute_s(p, hit_tokens)
        base_s = self.timer.nocache_s(p)
        row: dict[str, Any] = {
            "request_id": req.request_id,
            "worker": w,
            "arrival_s": req.arrival_s,
            "session_id": req.session_id,
            "warmup": idx < tr.num_warmup,
            "prompt_tokens": p,
            "num_blocks": len(tr.hashes[idx]),
            "hit_blocks": hit,
            "hit_tokens": hit_tokens,
        }
        for name, k in zip(self.tier_names, per_tier, strict=True):
            row[f"hit_blocks_{name}"] = k
        row["compute_ms"] = compute_s * 1e3
        row["load_ms"] = load_s * 1e3
        row["prefetch_wait_ms"] = wait_s * 1e3
        row["ttft_ms"] = (compute_s + load_s) * 1e3
        row["ttft_nocache_ms"] = base_s * 1e3
        self.rows.append(row)

    def _sample(self, now: float) -> None:
        sample: dict[str, float] = {"time_s": now, "requests_done": float(len(self.rows))}
        for tiers in unique_tiers(self.workers):
            name = tiers[0].name
            sample[f"used_blocks_{name}"] = float(sum(t.used for t in tiers))
            sample[f"capacity_blocks_{name}"] = float(sum(t.capacity for t in tiers))
        self.samples.append(sample)
