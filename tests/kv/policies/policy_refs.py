"""Naive, obviously-correct reference caches (O(n) lists) for the differential tests.

Each ``ref_*`` replays a unit-size trace in a cache of ``capacity`` keys and returns the list
of hits (True) and misses (False), one per access, so a test can point at the first access
where a policy and its reference disagree. Written from the papers' pseudo-code, not from
the policies' modules. ``make_policy`` builds any registered policy for generic tests
(fitting the ones that need training).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import pytest

from kvsim.kv.policies import EvictionPolicy, annotate_next_use, create_policy, policy_class

Trace = Sequence[Hashable]
Ref = Callable[[Trace, int], list[bool]]


def ref_lru(trace: Trace, capacity: int) -> list[bool]:
    cache: list[Hashable] = []  # LRU first
    out = []
    for key in trace:
        hit = key in cache
        if hit:
            cache.remove(key)
        elif len(cache) == capacity:
            cache.pop(0)
        cache.append(key)
        out.append(hit)
    return out


def ref_fifo(trace: Trace, capacity: int) -> list[bool]:
    cache: list[Hashable] = []  # oldest insertion first
    out = []
    for key in trace:
        hit = key in cache
        if not hit:
            if len(cache) == capacity:
                cache.pop(0)
            cache.append(key)
        out.append(hit)
    return out


def ref_mru(trace: Trace, capacity: int) -> list[bool]:
    cache: list[Hashable] = []  # LRU first, MRU last
    out = []
    for key in trace:
        hit = key in cache
        if hit:
            cache.remove(key)
        elif len(cache) == capacity:
            cache.pop()
        cache.append(key)
        out.append(hit)
    return out


def ref_lfu(trace: Trace, capacity: int) -> list[bool]:
    """Evict the smallest (in-cache count, time of last access); counts restart at 1."""
    count: dict[Hashable, int] = {}
    last: dict[Hashable, int] = {}
    out = []
    for t, key in enumerate(trace):
        hit = key in count
        if hit:
            count[key] += 1
        else:
            if len(count) == capacity:
                victim = min(count, key=lambda k: (count[k], last[k]))
                del count[victim], last[victim]
            count[key] = 1
        last[key] = t
        out.append(hit)
    return out


def ref_clock(trace: Trace, capacity: int) -> list[bool]:
    """A circular array of frames with a hand and one reference bit per frame."""
    frames: list[list] = []  # [key, ref]
    hand = 0
    out = []
    for key in trace:
        frame = next((f for f in frames if f[0] == key), None)
        out.append(frame is not None)
        if frame is not None:
            frame[1] = 1
            continue
        if len(frames) < capacity:
            frames.append([key, 0])
            continue
        while frames[hand][1]:
            frames[hand][1] = 0
            hand = (hand + 1) % capacity
        frames[hand] = [key, 0]
        hand = (hand + 1) % capacity
    return out


def ref_sieve(trace: Trace, capacity: int) -> list[bool]:
    """A list oldest -> newest, a hand index that walks towards the newest and wraps."""
    queue: list[list] = []  # [key, visited]
    hand = 0
    out = []
    for key in trace:
        entry = next((e for e in queue if e[0] == key), None)
        out.append(entry is not None)
        if entry is not None:
            entry[1] = True
            continue
        if len(queue) == capacity:
            i = hand if hand < len(queue) else 0
            while queue[i][1]:
                queue[i][1] = False
                i = (i + 1) % len(queue)
            del queue[i]
            hand = i if i < len(queue) else 0
        queue.append([key, False])
    return out


def ref_belady(trace: Trace, capacity: int) -> list[bool]:
    """Evict the resident key whose next use (found by scanning ahead) is furthest."""
    cache: list[Hashable] = []
    out = []
    for t, key in enumerate(trace):
        hit = key in cache
        if not hit:
            if len(cache) == capacity:

                def next_use(k: Hashable, t: int = t) -> int:
                    for j in range(t + 1, len(trace)):
                        if trace[j] == k:
                            return j
                    return len(trace)

                cache.remove(max(cache, key=next_use))
            cache.append(key)
        out.append(hit)
    return out


def ref_lru_k(trace: Trace, capacity: int, k: int = 2) -> list[bool]:
    """Full history kept forever; victim: fewer than k accesses (LRU) first, else the
    oldest k-th most recent access. Inserts count as accesses."""
    history: dict[Hashable, list[int]] = {}
    cache: list[Hashable] = []
    out = []
    for t, key in enumerate(trace):
        hit = key in cache
        if not hit:
            if len(cache) == capacity:

                def rank(c: Hashable) -> tuple[int, int]:
                    h = history[c]
                    return (0, h[-1]) if len(h) < k else (1, h[-k])

                cache.remove(min(cache, key=rank))
            cache.append(key)
        history.setdefault(key, []).append(t)
        out.append(hit)
    return out


def ref_arc(trace: Trace, c: int) -> list[bool]:
    """ARC exactly as Fig. 4 of Megiddo & Modha (FAST'03): lists are LRU first."""
    t1: list[Hashable] = []
    t2: list[Hashable] = []
    b1: list[Hashable] = []
    b2: list[Hashable] = []
    p = 0.0
    out = []

    def replace(x: Hashable) -> None:
        if t1 and ((x in b2 and len(t1) == p) or len(t1) > p):
            b1.append(t1.pop(0))
        else:
            b2.append(t2.pop(0))

    for x in trace:
        if x in t1 or x in t2:  # Case I
            (t1 if x in t1 else t2).remove(x)
            t2.append(x)
            out.append(True)
            continue
        out.append(False)
        if x in b1:  # Case II
            p = min(float(c), p + max(len(b2) / len(b1), 1.0))
            replace(x)
            b1.remove(x)
            t2.append(x)
        elif x in b2:  # Case III
            p = max(0.0, p - max(len(b1) / len(b2), 1.0))
            replace(x)
            b2.remove(x)
            t2.append(x)
        else:  # Case IV
            if len(t1) + len(b1) == c:
                if len(t1) < c:
                    b1.pop(0)
                    replace(x)
                else:
                    t1.pop(0)
            elif len(t1) + len(t2) + len(b1) + len(b2) >= c:
                if len(t1) + len(t2) + len(b1) + len(b2) == 2 * c:
                    b2.pop(0)
                replace(x)
            t1.append(x)
    return out


def ref_2q(trace: Trace, capacity: int, kin: int, kout: int) -> list[bool]:
    """Full 2Q from Johnson & Shasha (VLDB'94), Fig. 2; lists are oldest first."""
    a1in: list[Hashable] = []
    a1out: list[Hashable] = []
    am: list[Hashable] = []
    out = []

    def reclaim() -> None:
        if len(a1in) + len(am) < capacity:
            return
        if len(a1in) > kin or not am:  # "or not am": tiny caches where Kin >= c
            a1out.append(a1in.pop(0))
            if len(a1out) > kout:
                a1out.pop(0)
        else:
            am.pop(0)

    for x in trace:
        if x in am:
            am.remove(x)
            am.append(x)
            out.append(True)
        elif x in a1in:
            out.append(True)
        elif x in a1out:
            reclaim()  # may drop x itself from A1out: it was in A1out when looked up
            if x in a1out:
                a1out.remove(x)
            am.append(x)
            out.append(False)
        else:
            reclaim()
            a1in.append(x)
            out.append(False)
    return out


def ref_s3fifo(
    trace: Trace, capacity: int, small: int, ghost_cap: int, threshold: int = 2
) -> list[bool]:
    """S3-FIFO, Algorithm 1 of Yang et al. (SOSP'23) with libCacheSim's promotion rule."""
    s: list[Hashable] = []
    m: list[Hashable] = []
    g: list[Hashable] = []
    freq: dict[Hashable, int] = {}
    out = []

    def evict_m() -> None:
        while m:
            t = m.pop(0)
            if freq[t] > 0:
                freq[t] -= 1
                m.append(t)
            else:
                del freq[t]
                return

    def evict() -> None:
        if s and (len(s) >= small or not m):
            while s:
                t = s.pop(0)
                if freq[t] >= threshold:
                    m.append(t)
                    continue
                del freq[t]
                g.append(t)
                if len(g) > ghost_cap:
                    g.pop(0)
                return
        evict_m()

    for x in trace:
        if x in freq:
            freq[x] = min(freq[x] + 1, 3)
            out.append(True)
            continue
        out.append(False)
        while len(s) + len(m) >= capacity:
            evict()
        freq[x] = 0
        if x in g:
            g.remove(x)
            m.append(x)
        else:
            s.append(x)
    return out


def run_hits(policy: EvictionPolicy, trace: Trace, capacity: int) -> list[bool]:
    """The hit/miss list of ``policy`` under the protocol of :func:`simulate_misses`."""
    next_use = annotate_next_use(trace) if policy.needs_next_use else None
    out = []
    for i, key in enumerate(trace):
        nu = next_use[i] if next_use is not None else None
        if key in policy:
            policy.on_access(key, i, next_use=nu)
            out.append(True)
            continue
        while policy.used >= capacity:
            assert policy.evict(key) is not None
        policy.on_insert(key, 1, i, next_use=nu)
        out.append(False)
    return out


#: The warm-up split trained policies (``learned``) are fitted on in generic tests: a mix of
#: a hot loop and a stride pattern over keys 0..30 (both classes of label occur).
DEFAULT_FIT_TRACE: list[int] = [(i * 7) % 11 if i % 3 else i % 31 for i in range(300)]


def can_create(name: str) -> bool:
    """False for a trained policy whose optional dependency (LightGBM) is missing."""
    if not policy_class(name).needs_training:
        return True
    return importlib.util.find_spec("lightgbm") is not None


def make_policy(
    name: str, capacity: int, fit_trace: Sequence[Hashable] | None = None, **params: Any
) -> EvictionPolicy:
    """``create_policy`` plus, for a policy that needs training, ``fit`` on ``fit_trace``
    (default :data:`DEFAULT_FIT_TRACE`); skips the test if its dependency is missing."""
    if not can_create(name):
        pytest.skip(f"policy {name!r} needs lightgbm (pip install 'kvsim[learned]')")
    policy = create_policy(name, capacity=capacity, **params)
    if policy.needs_training:
        keys = DEFAULT_FIT_TRACE if fit_trace is None else fit_trace
        policy.fit(keys, [float(i) for i in range(len(keys))])
    return policy
