"""Concurrent transfers (KV handoff, swap) sharing link bandwidth, for a discrete-event engine.

Units: time in **seconds** (the engine's clock), sizes in **bytes**, rates in **bytes/s**.

Model
-----
A transfer from ``src`` to ``dst`` follows :meth:`Topology.path(src, dst, nbytes)
<kvsim.serving.topology.Topology.path>` and crosses that path's shared resources
(:attr:`PathInfo.links`). It first waits the path latency (no bandwidth used), then its bytes
flow. Flowing transfers get **max-min fair** rates (progressive filling): every transfer's rate
rises together until some resource is saturated; the transfers crossing it are frozen at that
rate, and the rest keep rising. So two equal transfers on one link each get half of it, and a
transfer bottlenecked elsewhere leaves its unused share to the others. Rates change only when
a transfer starts flowing or finishes; between such moments every rate is constant, so finish
times are exact (piecewise-linear progress, no time stepping).

Invariants (tested): bytes sent by a transfer never exceed its size and equal it when it
finishes; the rates crossing a resource never sum above its capacity; a transfer never
finishes before ``start + latency + nbytes / path_bandwidth``.

Engine protocol
---------------
Finish times of running transfers move whenever another transfer starts or finishes, so the
engine keeps **one** pending wake-up event and tags it with :attr:`TransferManager.version`,
which changes on every :meth:`start`, :meth:`complete` and :meth:`cancel`::

    tm = TransferManager(topology)

    def reschedule(loop):                       # call after every start/complete/cancel
        nxt = tm.next_completion()
        if nxt is not None:
            loop.push(nxt[0], Phase.TRANSFER, on_transfer_done, tm.version)

    def on_transfer_done(now, version):
        if version != tm.version:               # stale: something changed since; a newer
            return                              # wake-up was scheduled by reschedule()
        _, tid = tm.next_completion()           # finishes exactly at `now`
        tag = tm.complete(tid, now)             # -> the tag given to start()
        ...                                     # e.g. free the source KV, start decode
        reschedule(loop)

    tid = tm.start(now, src=0, dst=1, nbytes=kv_bytes, tag=request_id)
    reschedule(loop)

Network variance
----------------
With ``cluster.topology.jitter_cv`` / ``tail_*`` set (:class:`~kvsim.serving.topology.
NetworkVariance`), pass a seeded ``numpy.random.Generator`` as ``rng``: each :meth:`start`
draws one factor ``F`` (or takes ``slowdown=F``), pays ``F * latency`` and crosses one more
*private* resource of capacity ``path bandwidth / F`` (id ``-(tid + 1)``). Alone on its path
a transfer with ``F >= 1`` takes exactly ``F`` times its nominal time; with ``F < 1`` only its
latency shrinks (bytes never flow faster than the ports carry), so the mean time over many
transfers is slightly above ``E[F]`` times nominal. Under sharing it never beats its cap.
Without an rng a configured variance is a ConfigError (never silently ignored).

Contention on the cross-rack uplink: every cross-rack transfer of a rack crosses that rack's
uplink resource (``rack_uplink_gbytes_per_s``), so ``k`` concurrent flows each get
``min(per-flow cap, uplink / k)``: the uplink carries ``uplink / per-flow bandwidth`` flows
at full speed (e.g. 400 GB/s / 50 GB/s = 8) before each one slows down.

``advance(now)`` is optional (complete/start/cancel advance themselves); call it before reading
:meth:`bytes_sent` or :meth:`rates`. :meth:`estimate_finish_s` answers exactly "when would
a new transfer finish if started now (and nothing else started)" for routing scores; it is
O(path) on an idle path, else a projection over the transfers in flight.
:meth:`estimate_quick_s` is an O(path) equal-share approximation for hot loops.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from kvsim.errors import ConfigError, SimulationError
from kvsim.serving.topology import Topology

__all__ = ["Transfer", "TransferManager", "max_min_rates"]

# Finishes within a few dozen ulps of an event time are merged into it (rounding of
# remaining / rate); a wake-up is accepted as on time within a looser 1e-9 relative slack.
_MERGE_TOL = 1e-14
_WAKEUP_TOL = 1e-9


def _close_enough(t: float, now: float, tol: float = _MERGE_TOL) -> bool:
    return t <= now + tol * max(1.0, abs(now))


@dataclass(slots=True)
class Transfer:
    """One transfer. ``remaining`` bytes left as of the manager's clock; ``rate`` its current
    share (0 while in its latency phase); ``finish_s`` set once its last byte has arrived."""

    tid: int
    src: int
    dst: int
    nbytes: float
    tag: Any
    start_s: float
    flow_start_s: float
    links: tuple[int, ...]
    path_bandwidth: float
    remaining: float
    rate: float = 0.0
    flowing: bool = False
    finish_s: float | None = None


def max_min_rates(
    flows: Iterable[tuple[int, tuple[int, ...]]], capacity: Callable[[int], float]
) -> dict[int, float]:
    """Max-min fair rates of ``flows`` = ``(id, resources crossed)`` by progressive filling.

    A flow crossing no resource gets ``inf``. Deterministic: ties between bottleneck
    resources go to the lowest resource id. O(R * F) per frozen resource.
    """
    rates: dict[int, float] = {}
    users: dict[int, list[int]] = {}
    route: dict[int, tuple[int, ...]] = {}
    for fid, links in flows:
        if not links:
            rates[fid] = math.inf
            continue
        route[fid] = links
        for r in links:
            users.setdefault(r, []).append(fid)
    left = {r: capacity(r) for r in users}
    count = {r: len(fids) for r, fids in users.items()}
    unfrozen = set(route)
    while unfrozen:
        level, bottleneck = min((left[r] / count[r], r) for r in count if count[r] > 0)
        level = max(level, 0.0)
        for fid in users[bottleneck]:
            if fid in unfrozen:
                unfrozen.discard(fid)
                rates[fid] = level
                for r in route[fid]:
                    left[r] -= level
                    count[r] -= 1
    return rates


class TransferManager:
    """Transfers in flight over a :class:`Topology`, sharing bandwidth max-min fairly.

    Invariants: the manager's clock (:attr:`now`) never decreases; ``version`` changes on every
    start/complete/cancel; a finished transfer stays (with ``finish_s``) until the engine
    collects it with :meth:`complete`, and no longer takes bandwidth.
    """

    __slots__ = (
        "_busy",
        "_done",
        "_flowing",
        "_next_cache",
        "_next_id",
        "_pending",
        "_private",
        "_rng",
        "now",
        "topology",
        "transfers",
        "version",
    )

    def __init__(self, topology: Topology, rng: np.random.Generator | None = None) -> None:
        if topology.variance.enabled and rng is None:
            raise ConfigError(
                "cluster.topology.jitter_cv",
                "network variance is configured but this driver passed no random generator",
            )
        self.topology = topology
        self._rng = rng if topology.variance.enabled else None
        self._private: dict[int, float] = {}  # private resource id (< 0) -> capacity
        self.now = 0.0
        self.version = 0
        self.transfers: dict[int, Transfer] = {}
        self._pending: list[tuple[float, int]] = []  # (flow_start_s, tid) heap, latency phase
        self._flowing: dict[int, Transfer] = {}
        self._done: list[tuple[float, int]] = []  # (finish_s, tid) heap, not yet collected
        self._next_id = 0
        self._next_cache: tuple[int, tuple[float, int] | None] | None = None
        self._busy: dict[int, int] = {}  # resource -> unfinished transfers crossing it

    # ------------------------------------------------------------------ engine API

    def start(
        self,
        now: float,
        src: int,
        dst: int,
        nbytes: float,
        tag: Any = None,
        slowdown: float | None = None,
    ) -> int:
        """Start moving ``nbytes`` from ``src`` to ``dst`` at ``now``; returns the transfer id.

        The path is the topology's best path for ``nbytes``; bytes flow after its latency.
        ``slowdown`` (> 0) forces the variance factor of this transfer; otherwise one is drawn
        from the rng when the topology has network variance (module doc).
        """
        if nbytes < 0 or not math.isfinite(nbytes):
            raise SimulationError(f"transfer size must be finite and >= 0, got {nbytes}")
        self.advance(now)
        path = self.topology.path(src, dst, nbytes)
        tid = self._next_id
        self._next_id += 1
        factor = slowdown
        if factor is None and self._rng is not None:
            factor = self.topology.variance.factor(self._rng)
        links, latency = path.links, path.latency_s
        if factor is not None and factor != 1.0 and links:
            if not (factor > 0 and math.isfinite(factor)):
                raise SimulationError(f"slowdown must be finite and > 0, got {factor}")
            self._private[-(tid + 1)] = path.bandwidth_bytes_per_s / factor
            links = (*links, -(tid + 1))
            latency *= factor
        tr = Transfer(
            tid,
            src,
            dst,
            float(nbytes),
            tag,
            now,
            now + latency,
            links,
            path.bandwidth_bytes_per_s if factor is None else path.bandwidth_bytes_per_s / factor,
            float(nbytes),
        )
        self.transfers[tid] = tr
        self._occupy(tr, +1)
        heapq.heappush(self._pending, (tr.flow_start_s, tid))
        self.advance(now)  # a zero-latency transfer starts flowing right away
        self.version += 1
        return tid

    def next_completion(self) -> tuple[float, int] | None:
        """``(finish time s, tid)`` of the earliest transfer to finish given the transfers
        known now (ties: lowest tid), or None when there are none. Never earlier than
        :attr:`now` (a transfer that finished before the last call is reported at ``now``).
        Changes nothing; cached per :attr:`version`."""
        cache = self._next_cache
        if cache is not None and cache[0] == self.version:
            return cache[1]
        result: tuple[float, int] | None = None
        if self._done:  # finished during an advance(); the engine has not collected it yet
            result = (max(self._done[0][0], self.now), self._done[0][1])
        if result is None and self.transfers:
            finish = self._project(stop_at_first=True)
            result = min((t, tid) for tid, t in finish.items()) if finish else None
        self._next_cache = (self.version, result)
        return result

    def complete(self, tid: int, now: float) -> Any:
        """Collect finished transfer ``tid`` at ``now`` and return its tag.

        Raises :class:`SimulationError` if it has not finished by ``now`` (a stale wake-up).
        """
        cache = self._next_cache
        announced = (
            cache is not None
            and cache[0] == self.version
            and cache[1] is not None
            and cache[1][1] == tid
            and _close_enough(cache[1][0], now, _WAKEUP_TOL)
        )
        self.advance(now)
        tr = self.transfers.get(tid)
        if tr is None:
            raise SimulationError(f"transfer {tid} is unknown or already collected")
        if tr.finish_s is None:
            if not announced:  # not the wake-up next_completion() announced: check the time
                eta = self._project(stop_at_first=False).get(tid, math.inf)
                if not _close_enough(eta, now, _WAKEUP_TOL):
                    raise SimulationError(f"transfer {tid} completes at {eta!r} s, not {now!r} s")
            self._finish(tr, now)
            self._reshare()
        del self.transfers[tid]
        self._private.pop(-(tid + 1), None)
        self._done = [(t, i) for t, i in self._done if i != tid]
        heapq.heapify(self._done)
        self.version += 1
        return tr.tag

    def cancel(self, tid: int, now: float) -> float:
        """Abort transfer ``tid`` at ``now`` (e.g. its request was evicted); returns the bytes
        it had delivered. Its bandwidth goes back to the others."""
        self.advance(now)
        tr = self.transfers.pop(tid, None)
        if tr is None:
            raise SimulationError(f"transfer {tid} is unknown or already collected")
        self._private.pop(-(tid + 1), None)
        if tr.finish_s is None:
            self._occupy(tr, -1)
            if tr.flowing:
                del self._flowing[tid]
                self._reshare()
            else:
                self._pending = [(t, i) for t, i in self._pending if i != tid]
                heapq.heapify(self._pending)
        else:
            self._done = [(t, i) for t, i in self._done if i != tid]
            heapq.heapify(self._done)
        self.version += 1
        return tr.nbytes - tr.remaining

    def advance(self, now: float) -> None:
        """Account the bytes sent up to ``now``: starts flows whose latency has passed and
        marks transfers whose last byte arrived by ``now`` as finished (exact times)."""
        if now < self.now and not _close_enough(self.now, now, _WAKEUP_TOL):
            raise SimulationError(f"transfer clock cannot go back from {self.now} to {now}")
        now = max(now, self.now)
        while True:
            t_evt = self._next_internal_event()
            if t_evt is None or t_evt > now:
                break
            self._drain(t_evt)
            self._apply_events_at(t_evt)
        self._drain(now)

    # ------------------------------------------------------------------ queries

    def bytes_sent(self, tid: int) -> float:
        """Bytes of ``tid`` delivered as of :attr:`now`."""
        tr = self.transfers[tid]
        return tr.nbytes - tr.remaining

    def rates(self) -> dict[int, float]:
        """Current rate (bytes/s) of every uncollected transfer (0 in latency phase/finished)."""
        return {tid: tr.rate for tid, tr in self.transfers.items()}

    def estimate_finish_s(self, now: float, src: int, dst: int, nbytes: float) -> float:
        """When a transfer started at ``now`` would finish if nothing else started later.

        Accounts for the transfers in flight (their sharing, their finishes). Changes no
        finish time (it only advances the accounting clock to ``now``, like :meth:`advance`).
        O(path length) when no transfer in flight shares a resource with the path, else a
        projection over the transfers in flight.
        """
        self.advance(now)
        path = self.topology.path(src, dst, nbytes)
        if not any(r in self._busy for r in path.links):  # alone on its path: closed form
            flow = now + path.latency_s
            return flow + nbytes / path.bandwidth_bytes_per_s if path.links and nbytes > 0 else flow
        probe = Transfer(
            -1,
            src,
            dst,
            float(nbytes),
            None,
            now,
            now + path.latency_s,
            path.links,
            path.bandwidth_bytes_per_s,
            float(nbytes),
        )
        return self._project(stop_at_first=False, extra=probe).get(-1, math.inf)

    def estimate_quick_s(self, now: float, src: int, dst: int, nbytes: float) -> float:
        """O(path length) approximation of :meth:`estimate_finish_s` for hot routing loops.

        Assumes the new transfer gets an equal share ``capacity / (k + 1)`` of each resource
        that ``k`` unfinished transfers cross now, for its whole duration (ignores finishes
        and unequal shares). Exact when the path is idle. Does not touch any state.
        """
        path = self.topology.path(src, dst, nbytes)
        flow = now + path.latency_s
        if not path.links or nbytes <= 0:
            return flow
        busy, cap = self._busy, self.topology.link_capacity
        rate = min(cap(r) / (busy.get(r, 0) + 1) for r in path.links)
        return flow + nbytes / rate

    # ------------------------------------------------------------------ internals

    def _capacity(self, link: int) -> float:
        """Capacity of a topology resource, or of a transfer's private (variance) cap."""
        return self._private[link] if link < 0 else self.topology.link_capacity(link)

    def _next_internal_event(self) -> float | None:
        """Earliest flow start or finish after the clock, at current rates."""
        t = self._pending[0][0] if self._pending else math.inf
        for tr in self._flowing.values():
            t = min(t, self.now + tr.remaining / tr.rate)
        return None if math.isinf(t) else t

    def _drain(self, t: float) -> None:
        dt = t - self.now
        if dt > 0:
            for tr in self._flowing.values():
                tr.remaining = max(0.0, tr.remaining - tr.rate * dt)
        self.now = max(self.now, t)

    def _apply_events_at(self, t: float) -> None:
        changed = False
        for tr in list(self._flowing.values()):
            if _close_enough(self.now + tr.remaining / tr.rate, t):
                self._finish(tr, t)
                changed = True
        while self._pending and self._pending[0][0] <= t:
            _, tid = heapq.heappop(self._pending)
            tr = self.transfers[tid]
            changed = True
            if tr.remaining <= 0 or not tr.links:  # 0 bytes, or src == dst: done at once
                self._finish(tr, t)
            else:
                tr.flowing = True
                self._flowing[tid] = tr
        if changed:
            self._reshare()

    def _occupy(self, tr: Transfer, delta: int) -> None:
        busy = self._busy
        for r in tr.links:
            left = busy.get(r, 0) + delta
            if left:
                busy[r] = left
            else:
                del busy[r]

    def _finish(self, tr: Transfer, t: float) -> None:
        self._occupy(tr, -1)
        tr.remaining = 0.0
        tr.rate = 0.0
        tr.flowing = False
        tr.finish_s = max(t, tr.flow_start_s)
        self._flowing.pop(tr.tid, None)
        heapq.heappush(self._done, (tr.finish_s, tr.tid))

    def _reshare(self) -> None:
        flows = [(tid, tr.links) for tid, tr in self._flowing.items()]
        for tid, rate in max_min_rates(flows, self._capacity).items():
            self._flowing[tid].rate = rate

    def _project(self, stop_at_first: bool, extra: Transfer | None = None) -> dict[int, float]:
        """Finish times of uncollected transfers (plus ``extra``) if nothing else starts.

        Simulates the piecewise-constant-rate future on copies; with ``stop_at_first`` it
        stops at the first finishing moment and returns the transfers finishing then.
        """
        now = self.now
        finish = {tid: tr.finish_s for tid, tr in self.transfers.items() if tr.finish_s is not None}
        remaining = {tid: tr.remaining for tid, tr in self._flowing.items()}
        links = {tid: tr.links for tid, tr in self._flowing.items()}
        pending = list(self._pending)
        if extra is not None:
            pending.append((extra.flow_start_s, extra.tid))
            heapq.heapify(pending)
        route = {tid: tr.links for tid, tr in self.transfers.items()}
        size = {tid: tr.remaining for tid, tr in self.transfers.items()}
        if extra is not None:
            route[extra.tid], size[extra.tid] = extra.links, extra.nbytes
        rates = {tid: tr.rate for tid, tr in self._flowing.items()}  # current shares
        while remaining or pending:
            t = pending[0][0] if pending else math.inf
            for tid, left in remaining.items():
                t = min(t, now + left / rates[tid])
            if math.isinf(t):
                raise SimulationError("a transfer can never finish (a link has zero capacity)")
            dt = t - now
            newly: list[int] = []
            for tid in list(remaining):
                r = rates[tid]
                eta = now + remaining[tid] / r
                if _close_enough(eta, t):
                    newly.append(tid)
                    finish[tid] = t
                    del remaining[tid], links[tid]
                else:
                    remaining[tid] = max(0.0, remaining[tid] - r * dt)
            while pending and pending[0][0] <= t:
                _, tid = heapq.heappop(pending)
                if size[tid] <= 0 or not route[tid]:
                    newly.append(tid)
                    finish[tid] = t
                else:
                    remaining[tid], links[tid] = size[tid], route[tid]
            if newly and stop_at_first:
                return {tid: finish[tid] for tid in newly}
            now = t
            rates = max_min_rates(links.items(), self._capacity)
        return finish
