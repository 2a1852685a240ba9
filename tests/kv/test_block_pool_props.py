"""Differential test of BlockPool against a deliberately naive reference, plus invariants.

The reference keeps the free queue as a plain Python list (``pop(0)``, ``list.remove``) and the
prefix map as a dict of ids; it is too slow for the engine but obviously right. A hypothesis
state machine drives both with the same random operations and compares everything observable
after every step.
"""

from __future__ import annotations

from collections.abc import Sequence

import hypothesis.strategies as st
import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from kvsim.errors import SimulationError
from kvsim.kv.block_pool import BlockPool, KVBlock

HASHES = st.integers(min_value=0, max_value=7)  # a small alphabet, so hashes collide often


class RefPool:
    """Reference block pool over ids: list free queue, dict prefix map."""

    def __init__(self, num_blocks: int, enable_caching: bool) -> None:
        self.num_blocks = num_blocks
        self.enable_caching = enable_caching
        self.free: list[int] = list(range(num_blocks))
        self.ref = [0] * num_blocks
        self.hash_of: list[int | None] = [None] * num_blocks
        self.hash_to_id: dict[int, int] = {}
        self.num_evictions = 0

    def match_prefix(self, hashes: Sequence[int]) -> list[int]:
        out: list[int] = []
        for h in hashes:
            if h not in self.hash_to_id:
                break
            out.append(self.hash_to_id[h])
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
                del self.hash_to_id[h]
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
        if not self.enable_caching or self.hash_of[i] is not None or h in self.hash_to_id:
            return
        self.hash_to_id[h] = i
        self.hash_of[i] = h

    def reset_prefix_cache(self) -> bool:
        if len(self.free) != self.num_blocks:
            return False
        self.hash_to_id.clear()
        self.hash_of = [None] * self.num_blocks
        return True


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
            pool.num_evictions,
            pool.num_free_blocks,
        )

    @invariant()
    def matches_reference(self) -> None:
        free, refs, hashes, cached, evictions, num_free = self.observe()
        assert free == self.ref.free
        assert refs == self.ref.ref
        assert hashes == self.ref.hash_of
        assert cached == self.ref.hash_to_id
        assert evictions == self.ref.num_evictions
        assert num_free == len(self.ref.free)
        assert self.pool.num_cached_blocks == len(self.ref.hash_to_id)

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
            if b.block_hash is not None:
                assert pool.cached_hash_to_block[b.block_hash] is b
        for h, b in pool.cached_hash_to_block.items():
            assert b.block_hash == h
        if not pool.enable_caching:
            assert not pool.cached_hash_to_block
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
