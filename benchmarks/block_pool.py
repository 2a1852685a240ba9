"""Time BlockPool allocate/free pairs (a script, not a test).

    .venv/bin/python benchmarks/block_pool.py            # 1e6 pairs of 1 block
    .venv/bin/python benchmarks/block_pool.py --blocks-per-op 16 --pairs 200000

Each pair is ``allocate(k)`` followed by ``free(reversed(blocks))``. Every other request
registers a hash on its first block, so half of the allocations also evict a cached block
(the lazy-eviction path). Deterministic work; only the timing uses the wall clock.
"""

from __future__ import annotations

import argparse
import time

from kvsim.kv.block_pool import BlockPool


def run(num_pairs: int, blocks_per_op: int, num_blocks: int) -> float:
    """Return allocate/free pairs per second."""
    pool = BlockPool(num_blocks)
    allocate = pool.allocate
    free = pool.free
    cache_block = pool.cache_block
    start = time.perf_counter()
    for i in range(num_pairs):
        blocks = allocate(blocks_per_op)
        assert blocks is not None
        if i & 1:
            cache_block(blocks[0], i)
        blocks.reverse()
        free(blocks)
    elapsed = time.perf_counter() - start
    assert pool.num_free_blocks == num_blocks
    return num_pairs / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--blocks-per-op", type=int, default=1)
    parser.add_argument("--num-blocks", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=3, help="report the best of N runs")
    args = parser.parse_args()
    best = max(run(args.pairs, args.blocks_per_op, args.num_blocks) for _ in range(args.repeat))
    k = args.blocks_per_op
    print(
        f"BlockPool({args.num_blocks}): {args.pairs:,} allocate({k})/free pairs, "
        f"best of {args.repeat}: {best:,.0f} pairs/s = {2 * best:,.0f} ops/s "
        f"({1e9 / best:,.0f} ns/pair, {k * best:,.0f} blocks/s)"
    )


if __name__ == "__main__":
    main()
