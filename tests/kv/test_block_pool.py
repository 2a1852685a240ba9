"""Step-by-step tests of the block pool: exact block ids and free-queue order after each call."""

from __future__ import annotations

import pytest

from kvsim.errors import SimulationError
from kvsim.kv.block_pool import BlockPool, FreeBlockQueue, KVBlock


def free_ids(pool: BlockPool) -> list[int]:
    return [b.block_id for b in pool.free_block_queue.get_all_free_blocks()]


def ids(blocks: list[KVBlock] | None) -> list[int]:
    assert blocks is not None
    return [b.block_id for b in blocks]


def cached(pool: BlockPool) -> dict[int, int]:
    return {h: b.block_id for h, b in pool.cached_hash_to_block.items()}


def holders(pool: BlockPool) -> dict[int, list[int]]:
    return {h: ids(pool.get_hash_holders(h)) for h in pool.cached_hash_to_block}


def snapshot(pool: BlockPool) -> tuple[object, ...]:
    return (
        free_ids(pool),
        [b.ref_cnt for b in pool.blocks],
        [b.block_hash for b in pool.blocks],
        cached(pool),
        holders(pool),
        pool.num_free_blocks,
        pool.num_evictions,
    )


# --------------------------------------------------------------------------- FreeBlockQueue


def test_queue_initial_order_and_ops() -> None:
    blocks = [KVBlock(i) for i in range(5)]
    q = FreeBlockQueue(blocks)
    assert q.num_free_blocks == 5
    assert [b.block_id for b in q.get_all_free_blocks()] == [0, 1, 2, 3, 4]

    assert q.popleft().block_id == 0
    q.remove(blocks[2])  # from the middle
    assert [b.block_id for b in q.get_all_free_blocks()] == [1, 3, 4]
    q.remove(blocks[4])  # last real block
    q.append(blocks[0])
    q.append(blocks[2])
    assert [b.block_id for b in q.get_all_free_blocks()] == [1, 3, 0, 2]
    assert q.num_free_blocks == 4
    assert blocks[4].prev_free is None and blocks[4].next_free is None

    assert [b.block_id for b in q.popleft_n(3)] == [1, 3, 0]
    assert [b.block_id for b in q.get_all_free_blocks()] == [2]
    assert q.popleft().block_id == 2
    assert q.num_free_blocks == 0
    assert q.get_all_free_blocks() == []


def test_queue_empty_and_misuse_raise() -> None:
    blocks = [KVBlock(0), KVBlock(1)]
    q = FreeBlockQueue([])
    with pytest.raises(SimulationError):
        q.popleft()
    with pytest.raises(SimulationError):
        q.popleft_n(1)
    assert q.popleft_n(0) == []
    with pytest.raises(SimulationError):
        q.remove(blocks[0])  # not in the queue
    q.append(blocks[0])
    with pytest.raises(SimulationError):
        q.append(blocks[0])  # already in the queue
    assert [b.block_id for b in q.get_all_free_blocks()] == [0]
    assert q.num_free_blocks == 1


def test_block_repr_does_not_walk_the_list() -> None:
    pool = BlockPool(10_000)
    text = repr(pool.blocks[5])
    assert text == ("KVBlock(block_id=5, ref_cnt=0, block_hash=None, prev_free=4, next_free=6)")


# --------------------------------------------------------------------------- BlockPool script


def test_scripted_sequence_exact_ids_and_order() -> None:
    pool = BlockPool(8)
    assert (pool.num_free_blocks, pool.num_used_blocks, pool.num_cached_blocks) == (8, 0, 0)
    assert free_ids(pool) == [0, 1, 2, 3, 4, 5, 6, 7]

    # Request A: 3 blocks from the head.
    a = pool.allocate(3)
    assert ids(a) == [0, 1, 2]
    assert a is not None
    assert [b.ref_cnt for b in a] == [1, 1, 1]
    assert free_ids(pool) == [3, 4, 5, 6, 7]
    assert (pool.num_free_blocks, pool.num_used_blocks) == (5, 3)

    # A's blocks are full: register their prefix-chained hashes.
    for block, h in zip(a, [100, 101, 102], strict=True):
        pool.cache_block(block, h)
    assert cached(pool) == {100: 0, 101: 1, 102: 2}
    assert pool.num_cached_blocks == 3

    # A finishes; its blocks go to the tail in reverse, so its last block is evicted first.
    pool.free(list(reversed(a)))
    assert free_ids(pool) == [3, 4, 5, 6, 7, 2, 1, 0]
    assert [b.ref_cnt for b in pool.blocks] == [0] * 8
    # Lazy eviction: free blocks keep their hash and are still hittable.
    assert cached(pool) == {100: 0, 101: 1, 102: 2}
    assert pool.get_cached_block(101) is pool.blocks[1]

    # Request B shares the first two blocks of A's prefix, then diverges.
    hit = pool.match_prefix([100, 101, 999, 102])
    assert ids(hit) == [0, 1]
    assert pool.match_prefix([999, 100]) == []
    assert free_ids(pool) == [3, 4, 5, 6, 7, 2, 1, 0]  # match_prefix has no side effect

    # touch removes 1 from the middle and 0 from the tail.
    pool.touch(hit)
    assert free_ids(pool) == [3, 4, 5, 6, 7, 2]
    assert [b.ref_cnt for b in pool.blocks[:3]] == [1, 1, 0]
    assert (pool.num_free_blocks, pool.num_used_blocks) == (6, 2)

    # B needs 3 new blocks: they come from the head; none had a hash.
    b_new = pool.allocate(3)
    assert ids(b_new) == [3, 4, 5]
    assert pool.num_evictions == 0
    assert free_ids(pool) == [6, 7, 2]

    # C needs 3 blocks: 6, 7, then 2, which still holds hash 102 -> evicted.
    c = pool.allocate(3)
    assert ids(c) == [6, 7, 2]
    assert pool.num_evictions == 1
    assert pool.blocks[2].block_hash is None
    assert pool.get_cached_block(102) is None
    assert cached(pool) == {100: 0, 101: 1}
    assert free_ids(pool) == []
    assert pool.num_used_blocks == 8

    # Pool is full: a prefix hit on in-use blocks just adds references.
    d_hit = pool.match_prefix([100, 101])
    pool.touch(d_hit)
    assert [b.ref_cnt for b in pool.blocks[:2]] == [2, 2]
    assert pool.allocate(1) is None

    # B finishes (shared prefix + its own blocks, reversed): 0 and 1 are still held by D.
    assert b_new is not None
    pool.free(list(reversed(hit + b_new)))
    assert free_ids(pool) == [5, 4, 3]
    assert [b.ref_cnt for b in pool.blocks[:2]] == [1, 1]

    # D finishes: 1 then 0 join the tail.
    pool.free(list(reversed(d_hit)))
    assert free_ids(pool) == [5, 4, 3, 1, 0]

    # Allocating 4 reuses 5, 4, 3 (unhashed) then 1 (hash 101 evicted); 0 keeps 100.
    e = pool.allocate(4)
    assert ids(e) == [5, 4, 3, 1]
    assert pool.num_evictions == 2
    assert cached(pool) == {100: 0}
    assert free_ids(pool) == [0]

    # A duplicate of an already-cached hash becomes a second holder; lookups return the
    # smallest-id holder, whatever the registration order.
    assert e is not None
    pool.cache_block(e[0], 100)  # block 5
    assert e[0].block_hash == 100
    assert cached(pool) == {100: 0}
    assert holders(pool) == {100: [0, 5]}
    pool.cache_block(e[0], 100)  # idempotent
    pool.cache_block(e[3], 100)  # block 1: a third holder, between the two
    assert holders(pool) == {100: [0, 1, 5]}
    assert (pool.num_cached_blocks, pool.num_hashed_blocks) == (1, 3)
    pool.cache_block(e[1], 200)
    pool.cache_block(e[1], 200)  # idempotent
    assert cached(pool) == {100: 0, 200: 4}
    with pytest.raises(SimulationError):
        pool.cache_block(e[1], 201)
    assert c is not None
    pool.cache_block(c[2], 200)  # block 2 < 4 becomes the primary of 200
    assert cached(pool) == {100: 0, 200: 2}
    assert holders(pool) == {100: [0, 1, 5], 200: [2, 4]}
    assert ids(pool.match_prefix([100, 200, 300])) == [0, 2]
    assert (pool.num_cached_blocks, pool.num_hashed_blocks) == (2, 5)

    # Evicting the primary (free block 0) promotes the smallest remaining holder.
    f = pool.allocate(1)
    assert ids(f) == [0]
    assert pool.num_evictions == 3
    assert pool.blocks[0].block_hash is None
    assert cached(pool) == {100: 1, 200: 2}
    assert holders(pool) == {100: [1, 5], 200: [2, 4]}
    assert pool.get_cached_block(100) is pool.blocks[1]
    assert free_ids(pool) == []

    # reset_prefix_cache is refused while blocks are in use ...
    assert pool.reset_prefix_cache() is False
    assert cached(pool) == {100: 1, 200: 2}
    # ... and clears every hash (extra holders too) once the pool is idle, without counting
    # evictions.
    assert f is not None
    pool.free(list(reversed(c)))
    pool.free(list(reversed(e)))
    pool.free(f)
    assert free_ids(pool) == [2, 7, 6, 1, 3, 4, 5, 0]
    assert pool.reset_prefix_cache() is True
    assert cached(pool) == {}
    assert holders(pool) == {}
    assert all(b.block_hash is None for b in pool.blocks)
    assert (pool.num_cached_blocks, pool.num_hashed_blocks) == (0, 0)
    assert pool.num_evictions == 3
    assert free_ids(pool) == [2, 7, 6, 1, 3, 4, 5, 0]


def test_duplicate_holders_eviction_of_each_kind() -> None:
    pool = BlockPool(6)
    a = pool.allocate(6)
    assert a is not None
    # Register hash 9 on blocks 4, 1, 3 (out of id order); 7 on block 5 alone.
    for i in (4, 1, 3):
        pool.cache_block(pool.blocks[i], 9)
    pool.cache_block(pool.blocks[5], 7)
    assert holders(pool) == {9: [1, 3, 4], 7: [5]}
    assert pool.get_hash_holders(8) == []
    # Free in this order: 3 (extra), 1 (primary), 5 (sole holder), 4 (the last extra).
    pool.free([pool.blocks[i] for i in (3, 1, 5, 4)])
    assert free_ids(pool) == [3, 1, 5, 4]

    assert ids(pool.allocate(1)) == [3]  # an extra holder: the primary stays
    assert cached(pool) == {9: 1, 7: 5}
    assert holders(pool) == {9: [1, 4], 7: [5]}
    assert ids(pool.allocate(1)) == [1]  # the primary: 4 is promoted, the extras are gone
    assert cached(pool) == {9: 4, 7: 5}
    assert holders(pool) == {9: [4], 7: [5]}
    assert not pool._extra_holders
    assert ids(pool.allocate(2)) == [5, 4]  # sole holders
    assert cached(pool) == {}
    assert pool.num_evictions == 4
    assert all(b.block_hash is None for b in pool.blocks)


def test_cache_blocks_bulk_matches_one_by_one() -> None:
    hashes = [1, 2, 1, 3, 2, 1]
    one, bulk = BlockPool(8), BlockPool(8)
    a1, a2 = one.allocate(8), bulk.allocate(8)
    assert a1 is not None and a2 is not None
    one.cache_block(a1[7], 1)
    bulk.cache_block(a2[7], 1)
    for j in range(1, 5):
        one.cache_block(a1[j], hashes[j])
    bulk.cache_blocks(a2, hashes, 1, 5)
    assert holders(one) == holders(bulk) == {1: [2, 7], 2: [1, 4], 3: [3]}
    assert cached(bulk) == {1: 2, 2: 1, 3: 3}
    with pytest.raises(SimulationError):
        bulk.cache_blocks(a2, [5] * 8, 3, 4)  # block 3 already holds 3


def test_allocate_detects_unregistered_hash() -> None:
    pool = BlockPool(2)
    pool.blocks[0].block_hash = 5  # corrupt: a hash that is not in the prefix map
    with pytest.raises(SimulationError, match="not mapped"):
        pool.allocate(1)


def test_allocate_zero_and_negative() -> None:
    pool = BlockPool(2)
    assert pool.allocate(0) == []
    assert free_ids(pool) == [0, 1]
    with pytest.raises(SimulationError):
        pool.allocate(-1)


def test_over_allocation_returns_none_and_changes_nothing() -> None:
    pool = BlockPool(4)
    held = pool.allocate(2)
    assert held is not None
    pool.cache_block(held[0], 7)
    pool.free(list(reversed(held)))
    before = snapshot(pool)
    assert pool.allocate(5) is None
    assert snapshot(pool) == before
    got = pool.allocate(4)
    assert ids(got) == [2, 3, 1, 0]
    assert pool.allocate(1) is None
    assert pool.num_free_blocks == 0


def test_double_free_raises_and_leaves_state_unchanged() -> None:
    pool = BlockPool(4)
    a = pool.allocate(2)
    assert a is not None
    pool.free([a[1]])
    with pytest.raises(SimulationError, match="double free"):
        pool.free([a[1]])

    # A failing free rolls back the decrements it already made.
    pool.touch([a[0]])  # ref 2
    before = snapshot(pool)
    with pytest.raises(SimulationError):
        pool.free([a[0], a[0], a[0]])  # third decrement would go negative
    assert snapshot(pool) == before
    with pytest.raises(SimulationError):
        pool.free([pool.blocks[3]])  # never allocated
    assert snapshot(pool) == before
    assert min(b.ref_cnt for b in pool.blocks) >= 0


def test_free_same_block_twice_in_one_call_when_shared() -> None:
    pool = BlockPool(3)
    a = pool.allocate(1)
    assert a is not None
    pool.touch(a)
    pool.free([a[0], a[0]])
    assert a[0].ref_cnt == 0
    assert free_ids(pool) == [1, 2, 0]


def test_caching_disabled() -> None:
    pool = BlockPool(3, enable_caching=False)
    a = pool.allocate(2)
    assert a is not None
    pool.cache_block(a[0], 1)
    assert a[0].block_hash is None
    assert pool.num_cached_blocks == 0
    assert pool.get_cached_block(1) is None
    assert pool.match_prefix([1]) == []
    pool.free(list(reversed(a)))
    assert ids(pool.allocate(3)) == [2, 1, 0]
    assert pool.num_evictions == 0


def test_empty_pool() -> None:
    pool = BlockPool(0)
    assert (pool.num_free_blocks, pool.num_used_blocks) == (0, 0)
    assert pool.allocate(0) == []
    assert pool.allocate(1) is None
    assert pool.reset_prefix_cache() is True
    with pytest.raises(SimulationError):
        BlockPool(-1)
