"""Lazily created blocks behave exactly like an eagerly created pool (same ids, same order)."""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import given, settings

from kvsim.kv.block_pool import BlockPool, KVBlock

OPS = st.lists(
    st.tuples(st.sampled_from(["alloc", "free", "cache", "hit"]), st.integers(0, 6)),
    max_size=60,
)


def _free_ids(pool: BlockPool) -> list[int]:
    return [b.block_id for b in pool.free_block_queue.get_all_free_blocks()]


def test_fresh_blocks_are_created_on_first_use_in_id_order() -> None:
    pool = BlockPool(1_000_000)
    assert pool.num_created_blocks == 0 and pool.num_free_blocks == 1_000_000
    a = pool.allocate(3)
    assert a is not None and [b.block_id for b in a] == [0, 1, 2]
    pool.free(list(reversed(a)))  # freed blocks queue up behind the fresh ones
    b = pool.allocate(2)
    assert b is not None and [x.block_id for x in b] == [3, 4]
    assert pool.num_created_blocks == 5 and pool.num_used_blocks == 2


def test_materialising_puts_fresh_blocks_before_freed_ones() -> None:
    pool = BlockPool(6)
    a = pool.allocate(2)
    assert a is not None
    pool.free(list(reversed(a)))
    assert _free_ids(pool) == [2, 3, 4, 5, 1, 0]
    c = pool.allocate(5)
    assert c is not None and [x.block_id for x in c] == [2, 3, 4, 5, 1]


@settings(max_examples=200, deadline=None)
@given(ops=OPS)
def test_lazy_pool_equals_eager_pool(ops: list[tuple[str, int]]) -> None:
    """Same ops on a lazy pool and a fully materialised one: same ids, counts and queue.

    The lazy pool is only touched through the blocks it handed out, so it stays lazy until
    the final comparison materialises it.
    """
    lazy, eager = BlockPool(12), BlockPool(12)
    assert len(eager.blocks) == 12  # materialise everything up front
    held: list[list[list[KVBlock]]] = [[], []]  # per pool: live allocations
    for op, n in ops:
        outs: list[list[object]] = [[], []]
        for k, pool in enumerate((lazy, eager)):
            if op == "alloc":
                got = pool.allocate(n)
                outs[k].append(None if got is None else [b.block_id for b in got])
                if got is not None:
                    held[k].append(got)
            elif op == "free" and held[k]:
                pool.free(list(reversed(held[k].pop(n % len(held[k])))))
            elif op == "cache" and held[k]:
                blocks = held[k][n % len(held[k])]
                pool.cache_blocks(blocks, range(100, 100 + len(blocks)), 0, len(blocks))
            elif op == "hit":
                got = pool.match_prefix(range(100, 100 + n))
                pool.touch(got)
                outs[k].append([b.block_id for b in got])
                held[k].append(got)
            outs[k].append((pool.num_free_blocks, pool.num_evictions, pool.num_cached_blocks))
        assert outs[0] == outs[1]
    assert lazy.num_created_blocks <= 12
    assert _free_ids(lazy) == _free_ids(eager)
    assert [(b.ref_cnt, b.block_hash) for b in lazy.blocks] == [
        (b.ref_cnt, b.block_hash) for b in eager.blocks
    ]
