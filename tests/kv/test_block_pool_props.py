"""Differential test of BlockPool against a deliberately naive reference, plus invariants.

The reference keeps the free queue as a plain Python list (``pop(0)``, ``list.remove``) and the
prefix map as ``dict[hash, set[block_id]]`` (lookups take ``min``); it is too slow for the
engine but obviously right. A hypothesis state machine drives both with the same random
operations and compares everything observable after every step.

A second property checks that registrations on in-use blocks commute with ``allocate``: any
interleaving ends in the same state as all allocations first, then all registrations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from kvsim.errors import SimulationError
from kvsim.kv.block_pool import BlockPool, KVBlock

HASHES = st.integers(min_value=0, max_value=7)  # a small alphabet, so hashes collide often


class RefPool:
    """Reference block pool over ids: list free queue, hash -> set of holder ids."""

    def __init__(self, num_blocks: int, enable_caching: bool) -> None:
        self.num_blocks = num_blocks
        self.enable_caching = enable_caching
        self.free: list[int] = list(range(num_blocks))
        self.ref = [0] * num_blocks
        self.hash_of: list[int | None] = [None] * num_blocks
        self.holders: dict[int, set[int]] = {}
        self.num_evictions = 0

    def primary(self) -> dict[int, int]:
        return {h: min(ids) for h, ids in self.holders.items()}

    def match_prefix(self, hashes: Sequence[int]) -> list[int]:
        out: list[int] = []
        for h in hashes:
            if h not in self.holders:
                break
            out.append(min(self.holders[h]))
        return out

    def touch(self, ids: Sequence[int]) -> None:
        for i in ids:
            if self.ref[i] == 0:
                self.free.remove(i)
            self.ref[i] += 1

    def allocate(self, n: int) -> list[int] | None:
        if n > len(self.free):
            return None
        out = [self.free.pop(0) for _ in range(n)]
        for i in out:
            h = self.hash_of[i]
            if h is not None:
                self.holders[h].remove(i)
                if not self.holders[h]:
                    del self.holders[h]
                self.hash_of[i] = None
                self.num_evictions += 1
            self.ref[i] = 1
        return out

    def can_free(self, ids: Sequence[int]) -> bool:
        need: dict[int, int] = {}
        for i in ids:
            need[i] = need.get(i, 0) + 1
        return all(self.ref[i] >= k for i, k in need.items())

    def free_blocks(self, ids: Sequence[int]) -> None:
        for i in ids:
            self.ref[i] -= 1
            if self.ref[i] == 0:
                self.free.append(i)

    def cache_block(self, i: int, h: int) -> None:
        if not self.enable_caching or self.hash_of[i] is not None:
            return
        self.holders.setdefault(h, set()).add(i)
        self.hash_of[i] = h

    def reset_prefix_cache(self) -> bool:
        if len(self.free) != self.num_blocks:
            return False
        self.holders.clear()
        self.hash_of = [None] * self.num_blocks
        return True


def holder_ids(pool: BlockPool) -> dict[int, list[int]]:
    return {h: [b.block_id for b in pool.get_hash_holders(h)] for h in pool.cached_hash_to_block}


class BlockPoolMachine(RuleBasedStateMachine):
    """Requests hold lists of block ids (each entry = one reference)."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = BlockPool(1)
        self.ref = RefPool(1, True)
        self.held: list[list[int]] = []

    @initialize(num_blocks=st.integers(min_value=0, max_value=12), enable_caching=st.booleans())
    def setup(self, num_blocks: int, enable_caching: bool) -> None:
        self.pool = BlockPool(num_blocks, enable_caching=enable_caching)
        self.ref = RefPool(num_blocks, enable_caching)
        self.held = []

    def blocks(self, ids: Sequence[int]) -> list[KVBlock]:
        return [self.pool.blocks[i] for i in ids]

    # ------------------------------------------------------------------ rules

    @rule(n=st.integers(min_value=0, max_value=14))
    def allocate(self, n: int) -> None:
        got = self.pool.allocate(n)
        want = self.ref.allocate(n)
        if want is None:
            assert got is None
            return
        assert got is not None
        assert [b.block_id for b in got] == want
        if want:
            self.held.append(want)

    @rule(hashes=st.lists(HASHES, max_size=6), take=st.booleans())
    def prefix_hit(self, hashes: list[int], take: bool) -> None:
        got = self.pool.match_prefix(hashes)
        want = self.ref.match_prefix(hashes)
        assert [b.block_id for b in got] == want
        assert all(self.pool.get_cached_block(h) is b for h, b in zip(hashes, got, strict=False))
        if take and want:
            self.pool.touch(got)
            self.ref.touch(want)
            self.held.append(want)

    @precondition(lambda self: self.ref.num_blocks > 0)
    @rule(data=st.data())
    def touch_any(self, data: st.DataObject) -> None:
        ids = data.draw(
            st.lists(st.integers(min_value=0, max_value=self.ref.num_blocks - 1), max_size=4)
        )
        self.pool.touch(self.blocks(ids))
        self.ref.touch(ids)
        if ids:
            self.held.append(ids)

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data(), reverse=st.booleans())
    def free_request(self, data: st.DataObject, reverse: bool) -> None:
        idx = data.draw(st.integers(min_value=0, max_value=len(self.held) - 1))
        ids = self.held.pop(idx)
        order = list(reversed(ids)) if reverse else data.draw(st.permutations(ids))
        self.pool.free(self.blocks(order))
        self.ref.free_blocks(order)

    @precondition(lambda self: self.ref.num_blocks > 0)
    @rule(data=st.data())
    def bad_free_is_atomic(self, data: st.DataObject) -> None:
        ids = data.draw(
            st.lists(
                st.integers(min_value=0, max_value=self.ref.num_blocks - 1),
                min_size=1,
                max_size=5,
            )
        )
        if self.ref.can_free(ids):
            return  # only exercise frees that must fail
        before = self.observe()
        with pytest.raises(SimulationError):
            self.pool.free(self.blocks(ids))
        assert self.observe() == before

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data(), h=HASHES)
    def cache(self, data: st.DataObject, h: int) -> None:
        req = data.draw(st.sampled_from(self.held))
        i = data.draw(st.sampled_from(req))
        cur = self.ref.hash_of[i]
        if cur is not None and cur != h:
            with pytest.raises(SimulationError):
                self.pool.cache_block(self.pool.blocks[i], h)
            return
        self.pool.cache_block(self.pool.blocks[i], h)
        self.ref.cache_block(i, h)

    @rule()
    def reset(self) -> None:
        assert self.pool.reset_prefix_cache() == self.ref.reset_prefix_cache()

    # ------------------------------------------------------------------ comparison

    def observe(self) -> tuple[object, ...]:
        pool = self.pool
        return (
            [b.block_id for b in pool.free_block_queue.get_all_free_blocks()],
            [b.ref_cnt for b in pool.blocks],
            [b.block_hash for b in pool.blocks],
            {h: b.block_id for h, b in pool.cached_hash_to_block.items()},
            holder_ids(pool),
            pool.num_evictions,
            pool.num_free_blocks,
        )

    @invariant()
    def matches_reference(self) -> None:
        free, refs, hashes, cached, holders, evictions, num_free = self.observe()
        assert free == self.ref.free
        assert refs == self.ref.ref
        assert hashes == self.ref.hash_of
        assert cached == self.ref.primary()
        assert holders == {h: sorted(ids) for h, ids in self.ref.holders.items()}
        assert evictions == self.ref.num_evictions
        assert num_free == len(self.ref.free)
        assert self.pool.num_cached_blocks == len(self.ref.holders)
        assert self.pool.num_hashed_blocks == sum(map(len, self.ref.holders.values()))

    @invariant()
    def structural_invariants(self) -> None:
        pool = self.pool
        free = pool.free_block_queue.get_all_free_blocks()
        free_set = {id(b) for b in free}
        assert len(free_set) == len(free) == pool.num_free_blocks
        in_use = sum(1 for b in pool.blocks if b.ref_cnt > 0)
        assert pool.num_free_blocks + in_use == pool.num_blocks  # blocks conserved
        assert 0 <= pool.num_used_blocks <= pool.num_blocks
        assert pool.num_used_blocks == in_use
        for b in pool.blocks:
            assert b.ref_cnt >= 0
            assert (id(b) in free_set) == (b.ref_cnt == 0)
            assert (b.prev_free is None) == (b.ref_cnt > 0)
            if b.block_hash is not None:  # every hashed block is a holder of its hash
                assert any(x is b for x in pool.get_hash_holders(b.block_hash))
        num_holders = 0
        for h, b in pool.cached_hash_to_block.items():
            holders = pool.get_hash_holders(h)
            assert holders[0] is b  # the primary is the min-id holder
            assert all(x.block_hash == h for x in holders)
            assert len({id(x) for x in holders}) == len(holders)
            num_holders += len(holders)
        assert num_holders == sum(1 for b in pool.blocks if b.block_hash is not None)
        # Extra holders: only hashes with >= 2 holders, keyed by id, all above the primary.
        for h, extra in pool._extra_holders.items():
            assert extra and h in pool.cached_hash_to_block
            assert all(i == x.block_id for i, x in extra.items())
            assert min(extra) > pool.cached_hash_to_block[h].block_id
        if not pool.enable_caching:
            assert not pool.cached_hash_to_block
            assert not pool._extra_holders
        # References held by simulated requests account for every ref count.
        counts = [0] * pool.num_blocks
        for req in self.held:
            for i in req:
                counts[i] += 1
        assert counts == [b.ref_cnt for b in pool.blocks]


BlockPoolMachine.TestCase.settings = settings(
    max_examples=300, stateful_step_count=60, deadline=None, derandomize=True
)
TestBlockPoolDifferential = BlockPoolMachine.TestCase


# --------------------------------------------------------------------------- commutation


def full_state(pool: BlockPool) -> tuple[object, ...]:
    return (
        holder_ids(pool),
        {h: b.block_id for h, b in pool.cached_hash_to_block.items()},
        [b.block_hash for b in pool.blocks],
        [b.block_id for b in pool.free_block_queue.get_all_free_blocks()],
        [b.ref_cnt for b in pool.blocks],
        pool.num_evictions,
    )


Target = tuple[str, int]  # ("old", block id) or ("new", k): the k-th block allocated


@dataclass(frozen=True)
class Scenario:
    num_blocks: int
    initial_hash: list[int | None]  # registered on every block before the frees
    to_free: list[int]  # blocks freed, in this order (the rest stay in use)
    sizes: list[int]  # allocate() calls
    regs: list[tuple[Target, int]]  # register(target, hash)
    order: list[tuple[str, int]]  # the interleaving: ("alloc", j) / ("reg", j)


@st.composite
def commute_scenarios(draw: st.DrawFn) -> Scenario:
    """A pool state (some blocks in use, free blocks in random order, hashes on some of
    both), allocation sizes, registrations and a random interleaving of the two."""
    n = draw(st.integers(min_value=1, max_value=12))
    small = st.integers(min_value=0, max_value=3)  # few hashes: duplicates are the norm
    initial_hash = draw(st.lists(st.none() | small, min_size=n, max_size=n))
    to_free = draw(st.permutations(range(n)))[: draw(st.integers(min_value=0, max_value=n))]
    sizes = draw(st.lists(st.integers(min_value=0, max_value=3), max_size=6))
    # Keep the sizes within the free blocks, so no allocation fails.
    budget = len(to_free)
    kept: list[int] = []
    for k in sizes:
        k = min(k, budget)
        budget -= k
        kept.append(k)
    num_new = len(to_free) - budget
    in_use = [i for i in range(n) if i not in to_free]
    # A target is ("old", block id) for a block in use from the start, or ("new", k) for the
    # k-th block the allocations hand out. Each target gets one hash (its own, if it has one).
    targets = [("old", i) for i in in_use] + [("new", k) for k in range(num_new)]
    regs: list[tuple[Target, int]] = []
    if targets:
        for t in draw(st.lists(st.sampled_from(targets), max_size=10)):
            kind, x = t
            own = initial_hash[x] if kind == "old" else None
            regs.append((t, own if own is not None else draw(small)))
    # Fix one hash per target (the first drawn), so no registration can be a misuse.
    first: dict[Target, int] = {}
    regs = [(t, first.setdefault(t, h)) for t, h in regs]
    ops = [("alloc", j) for j in range(len(kept))] + [("reg", j) for j in range(len(regs))]
    order = draw(st.permutations(ops))
    return Scenario(n, initial_hash, to_free, kept, regs, order)


def build_pool(n: int, initial_hash: list[int | None], to_free: list[int]) -> BlockPool:
    pool = BlockPool(n)
    blocks = pool.allocate(n)
    assert blocks is not None
    for b, h in zip(blocks, initial_hash, strict=True):
        if h is not None:
            pool.cache_block(b, h)
    pool.free([pool.blocks[i] for i in to_free])
    return pool


@settings(max_examples=500, deadline=None, derandomize=True)
@given(commute_scenarios())
def test_registrations_commute_with_allocations(sc: Scenario) -> None:
    regs = sc.regs
    # Reference order: every allocation, then every registration (in one bulk call).
    ref = build_pool(sc.num_blocks, sc.initial_hash, sc.to_free)
    new: list[KVBlock] = []
    for k in sc.sizes:
        got = ref.allocate(k)
        assert got is not None
        new += got

    def target(pool: BlockPool, new_blocks: list[KVBlock], t: Target) -> KVBlock:
        kind, x = t
        return pool.blocks[x] if kind == "old" else new_blocks[x]

    ref.cache_blocks([target(ref, new, t) for t, _ in regs], [h for _, h in regs], 0, len(regs))

    # The interleaving: a registration on a block not yet allocated waits for its allocation.
    pool = build_pool(sc.num_blocks, sc.initial_hash, sc.to_free)
    handed: list[KVBlock] = []
    waiting: list[tuple[Target, int]] = []
    for kind, j in sc.order:
        if kind == "alloc":
            got = pool.allocate(sc.sizes[j])
            assert got is not None
            handed += got
            ready = [w for w in waiting if w[0][1] < len(handed)]
            waiting = [w for w in waiting if w[0][1] >= len(handed)]
        else:
            t, h = regs[j]
            if t[0] == "new" and t[1] >= len(handed):
                waiting.append((t, h))
                continue
            ready = [(t, h)]
        for t, h in ready:
            pool.cache_block(target(pool, handed, t), h)
    assert not waiting
    assert [b.block_id for b in handed] == [b.block_id for b in new]
    assert full_state(pool) == full_state(ref)
