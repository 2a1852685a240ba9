"""Time the radix prefix index (a script, not a test).

    .venv/bin/python benchmarks/radix.py                       # 100k sequences of ~30 blocks
    .venv/bin/python benchmarks/radix.py --sequences 20000 --capacity 50000

Workload: ``--sequences`` block-hash sequences of 30 +- 5 blocks. Half of them start with a
shared prefix (one of ``--num-prefixes`` "system prompts", 5-20 blocks, Zipf-ish popularity)
and continue with unique blocks; the other half are unique throughout. Reported:

* insert/s: every sequence inserted into an empty, unbounded tree;
* match/s: every sequence matched again against the full tree (all hits);
* serve/s: the cache-driver loop on a bounded tree (match, lock, insert, unlock, evict down to
  ``--capacity`` blocks), one per sequence.

Generation uses a seeded numpy Generator and is not timed; only the timing uses the wall clock.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from kvsim.kv.radix import RadixTree


def make_sequences(num: int, num_prefixes: int, seed: int) -> list[tuple[int, ...]]:
    """Deterministic sequences of ~30 block hashes, 50% starting with a shared prefix."""
    rng = np.random.default_rng(seed)
    next_hash = 1

    def fresh(n: int) -> tuple[int, ...]:
        nonlocal next_hash
        out = tuple(range(next_hash, next_hash + n))
        next_hash += n
        return out

    prefixes = [fresh(int(rng.integers(5, 21))) for _ in range(num_prefixes)]
    weights = 1.0 / np.arange(1, num_prefixes + 1)
    weights /= weights.sum()
    lengths = rng.integers(25, 36, size=num)
    shared = rng.random(num) < 0.5
    picks = rng.choice(num_prefixes, size=num, p=weights)
    seqs: list[tuple[int, ...]] = []
    for i in range(num):
        n = int(lengths[i])
        if shared[i]:
            head = prefixes[int(picks[i])]
            seqs.append(head + fresh(max(n - len(head), 1)))
        else:
            seqs.append(fresh(n))
    return seqs


def bench_insert_match(seqs: list[tuple[int, ...]]) -> tuple[float, float, RadixTree]:
    """Return (inserts/s, matches/s) on an unbounded tree."""
    tree = RadixTree()
    insert = tree.insert
    start = time.perf_counter()
    for now, seq in enumerate(seqs):
        insert(seq, now=now)
    t_insert = time.perf_counter() - start
    match = tree.match_prefix
    total = 0
    start = time.perf_counter()
    for now, seq in enumerate(seqs, start=len(seqs)):
        total += match(seq, now=now).num_matched_blocks
    t_match = time.perf_counter() - start
    assert total == sum(len(s) for s in seqs)
    return len(seqs) / t_insert, len(seqs) / t_match, tree


def bench_serve(seqs: list[tuple[int, ...]], capacity: int) -> tuple[float, float, int]:
    """The driver loop on a bounded tree; return (requests/s, block hit ratio, evictions)."""
    tree = RadixTree()
    hits = blocks = evicted = 0
    start = time.perf_counter()
    for now, seq in enumerate(seqs):
        result = tree.match_prefix(seq, now=now)
        hits += result.num_matched_blocks
        blocks += len(seq)
        tree.lock(result.last_node)
        inserted = tree.insert(seq, now=now)
        tree.lock(inserted.last_node)
        tree.unlock(result.last_node)
        tree.unlock(inserted.last_node)
        over = tree.num_blocks - capacity
        if over > 0:
            evicted += len(tree.evict(over))
    elapsed = time.perf_counter() - start
    assert tree.num_blocks <= capacity
    return len(seqs) / elapsed, hits / blocks, evicted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=100_000)
    parser.add_argument("--num-prefixes", type=int, default=200)
    parser.add_argument("--capacity", type=int, default=200_000, help="blocks, for serve/s")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="report the best of N runs")
    args = parser.parse_args()
    seqs = make_sequences(args.sequences, args.num_prefixes, args.seed)
    mean_len = sum(len(s) for s in seqs) / len(seqs)
    runs = [bench_insert_match(seqs) for _ in range(args.repeat)]
    tree = runs[0][2]
    best_insert = max(r[0] for r in runs)
    best_match = max(r[1] for r in runs)
    serve = [bench_serve(seqs, args.capacity) for _ in range(args.repeat)]
    best_serve = max(s[0] for s in serve)
    print(
        f"RadixTree: {len(seqs):,} sequences, mean {mean_len:.1f} blocks, 50% shared prefixes "
        f"-> {tree.num_blocks:,} blocks in {tree.num_nodes:,} nodes (best of {args.repeat})"
    )
    print(f"  insert: {best_insert:,.0f} seq/s ({best_insert * mean_len:,.0f} blocks/s)")
    print(f"  match:  {best_match:,.0f} seq/s ({best_match * mean_len:,.0f} blocks/s)")
    print(
        f"  serve (match+lock+insert+unlock+evict, capacity {args.capacity:,} blocks): "
        f"{best_serve:,.0f} req/s, block hit ratio {serve[0][1]:.3f}, "
        f"{serve[0][2]:,} blocks evicted"
    )


if __name__ == "__main__":
    main()
