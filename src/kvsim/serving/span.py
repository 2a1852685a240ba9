"""Closed-form timing of a decode span (DESIGN.md §4, "fast-forward maths").

A span is ``n`` consecutive pure-decode steps of the same ``B`` sequences; at step ``k``
(0-based) their total attended context is ``S0 + k*B``. With the roofline model the step time is

    t(k) = a + max(c0 + c1*k, m0 + m1*k)

(``a`` = overhead + TP comm, ``c`` = compute, ``m`` = memory). The two lines cross at most once,
so ``[0, n)`` splits into at most two runs, each an arithmetic series:

    sum_{k=k0}^{k1-1} (A + C*k) = (k1-k0)*A + C*(k0+k1-1)*(k1-k0)/2

``end_offset(n)`` is O(1); the step boundary reached by a time is found by bisection over n.

A span may open with a *head* step (:meth:`DecodeSpan.set_head`): step 0 is then a mixed step
(prefills of newly admitted requests that complete in it, while the others decode) of its own
duration ``head_s``; steps 1.. are the decode series above (``ctx0`` then counts every
newcomer as if it had decoded at step 0, which is what its context is from step 1 on), so
``end_offset(n) = head_s + series(1, n)`` for ``n >= 1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from kvsim.perf.roofline import RooflineModel

__all__ = ["DecodeSpan"]


def _series(a: float, c: float, k0: int, k1: int) -> float:
    n = k1 - k0
    if n <= 0:
        return 0.0
    return n * a + c * (k0 + k1 - 1) * n / 2.0


@dataclass(slots=True)
class DecodeSpan:
    """Timing of up to ``num_steps`` decode steps starting at ``start_s``."""

    start_s: float
    batch: int
    num_steps: int
    base: float
    # step k's two regimes: a1 + k1*k (the one in force at step 0) and a2 + k2*k
    a1: float
    k1: float
    a2: float
    k2: float
    switch: int  # first k at which the *other* regime takes over (0..inf)
    compute_first: bool  # whether (a1, k1) is the compute regime
    head_adj: float = 0.0  # head_s - (series step 0): added to end_offset(n) for n >= 1
    head_s: float = -1.0  # duration of a mixed step 0 (-1.0: step 0 is a plain decode)

    @classmethod
    def plan(
        cls, tm: RooflineModel, start_s: float, batch: int, ctx0: int, num_steps: int
    ) -> DecodeSpan:
        base = tm.overhead_s + batch * tm.sec_per_token_comm
        c0 = batch * tm.sec_per_token_compute + ctx0 * tm.sec_per_ctx_compute
        c1 = batch * tm.sec_per_ctx_compute
        m0 = tm.sec_weights_memory + ctx0 * tm.sec_per_kv_token_memory
        m1 = batch * tm.sec_per_kv_token_memory
        compute_first = c0 > m0
        dc = c1 - m1
        if dc == 0.0:
            switch = 1 << 62
        else:
            root = (m0 - c0) / dc  # d(k) = (c0-m0) + dc*k changes sign at k = root
            if compute_first:  # compute now; memory takes over where d(k) <= 0
                switch = (1 << 62) if dc > 0 else max(0, math.ceil(root))
            else:  # memory now; compute takes over where d(k) > 0
                switch = (1 << 62) if dc < 0 else max(0, math.floor(root) + 1)
        if compute_first:
            a1, k1, a2, k2 = c0, c1, m0, m1
        else:
            a1, k1, a2, k2 = m0, m1, c0, c1
        return cls(start_s, batch, num_steps, base, a1, k1, a2, k2, switch, compute_first)

    def set_head(self, head_s: float) -> None:
        """Make step 0 a mixed step lasting ``head_s`` seconds (steps 1.. are unchanged)."""
        self.head_adj = 0.0
        self.head_adj = head_s - self.end_offset(1)
        self.head_s = head_s

    def step_time(self, k: int) -> float:
        """Duration of step ``k`` (for tests and the exact-steps reference)."""
        if k == 0 and self.head_s >= 0.0:
            return self.head_s
        return self.base + max(self.a1 + self.k1 * k, self.a2 + self.k2 * k)

    def end_offset(self, n: int) -> float:
        """Seconds from the span start to the end of its ``n``-th step (n >= 0)."""
        if n <= 0:
            return 0.0
        m = self.switch
        if n <= m:
            return n * (self.base + self.a1) + self.k1 * (n - 1) * n / 2.0 + self.head_adj
        return (
            n * self.base
            + m * self.a1
            + self.k1 * (m - 1) * m / 2.0
            + _series(self.a2, self.k2, m, n)
            + self.head_adj
        )

    def end_time(self, n: int) -> float:
        """Absolute end of the ``n``-th step (the time its STEP_END is scheduled at)."""
        if n <= 0:
            return self.start_s
        m = self.switch
        if n <= m:
            return self.start_s + (
                n * (self.base + self.a1) + self.k1 * (n - 1) * n / 2.0 + self.head_adj
            )
        return self.start_s + self.end_offset(n)

    def steps_done_by(self, time_s: float) -> int:
        """Number of steps (<= num_steps) whose end time is <= ``time_s``."""
        n = min(max(self._guess_steps(time_s - self.start_s), 0), self.num_steps)
        if n <= self.switch:  # the guess is exact up to rounding: fix it with a local walk
            for _ in range(4):
                if n > 0 and self.end_time(n) > time_s:
                    n -= 1
                elif n < self.num_steps and self.end_time(n + 1) <= time_s:
                    n += 1
                else:
                    return n
        lo, hi = 0, self.num_steps
        while lo < hi:
            mid = (lo + hi + 1) >> 1
            if self.end_time(mid) <= time_s:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def _guess_steps(self, offset: float) -> int:
        """Real-valued n with end_offset(n) ~= offset, from the first regime's quadratic
        ``c/2 n^2 + (base + a - c/2) n = offset`` (exact when no switch happens before n)."""
        offset -= self.head_adj
        if offset <= 0.0:
            return 0
        a, c = self.a1, self.k1
        lin = self.base + a - c / 2.0
        if c <= 0.0:
            return int(offset / lin) if lin > 0 else 0
        return int((-lin + math.sqrt(lin * lin + 2.0 * c * offset)) / c)

    def first_boundary_at_or_after(self, time_s: float) -> int:
        """Smallest n in [1, num_steps] whose step end is >= ``time_s`` (num_steps if none)."""
        guess = self._guess_steps(time_s - self.start_s)
        n_max = self.num_steps
        n = min(max(guess, 1), n_max)
        if n_max <= self.switch:  # one regime: end_time inlined (same expression)
            s0, ba, k1, adj = self.start_s, self.base + self.a1, self.k1, self.head_adj
            for _ in range(4):
                if n > 1 and s0 + ((n - 1) * ba + k1 * (n - 2) * (n - 1) / 2.0 + adj) >= time_s:
                    n -= 1
                elif n < n_max and s0 + (n * ba + k1 * (n - 1) * n / 2.0 + adj) < time_s:
                    n += 1
                else:
                    return n
        elif n <= self.switch:  # the guess is exact up to rounding: fix it with a local walk
            for _ in range(4):
                if n > 1 and self.end_time(n - 1) >= time_s:
                    n -= 1
                elif n < self.num_steps and self.end_time(n) < time_s:
                    n += 1
                else:
                    return n
        lo, hi = 1, self.num_steps
        while lo < hi:
            mid = (lo + hi) >> 1
            if self.end_time(mid) >= time_s:
                hi = mid
            else:
                lo = mid + 1
        return lo
