"""Block demand of a decode span (DESIGN.md §4): when it runs out, and who gets which block.

In a span every running sequence gains one token per step. Sequence ``i`` with ``f_i`` free
token slots left after step 0 needs a new block at steps ``f_i, f_i + bs, f_i + 2*bs, ...``
(``f_i >= 1``: step 0's blocks are allocated before the span starts). Exact stepping hands
blocks out step by step, and within a step in running-list order; these functions reproduce
that order in bulk.
"""

from __future__ import annotations

__all__ = ["block_demand", "span_block_owners", "steps_within_free_blocks"]


def block_demand(firsts: list[int], bs: int, k: int) -> int:
    """New blocks needed by steps 1..k of a span."""
    return sum((k - f) // bs + 1 for f in firsts if f <= k)


def steps_within_free_blocks(firsts: list[int], bs: int, n: int, free: int) -> int:
    """Largest ``m <= n`` such that steps ``0..m-1`` need at most ``free`` new blocks
    (``m >= 1`` because step 0 needs none)."""
    last = n - 1
    firsts = [f for f in firsts if f <= last]
    if not firsts or block_demand(firsts, bs, last) <= free:
        return n
    lo, hi = 1, last  # demand(lo - 1) <= free < demand(hi)
    while lo < hi:
        mid = (lo + hi + 1) >> 1
        if block_demand(firsts, bs, mid - 1) <= free:
            lo = mid
        else:
            hi = mid - 1
    return lo


def span_block_owners(needy: list[tuple[int, int]], counts: list[int], bs: int) -> list[int]:
    """Running positions in the order exact stepping allocates their blocks.

    ``needy[j] = (f, i)``: position ``i`` first needs a block at step ``f`` and gets
    ``counts[j]`` blocks in all. Events sort by (step, position)."""
    if len(needy) == 1:
        return [needy[0][1]] * counts[0]
    if max(f for f, _ in needy) <= bs:
        # one block per bs-step round each, always in the same (f, position) order
        order = sorted(range(len(needy)), key=needy.__getitem__)
        return [needy[j][1] for rnd in range(max(counts)) for j in order if counts[j] > rnd]
    events = sorted(
        (f + m * bs, i) for (f, i), cnt in zip(needy, counts, strict=True) for m in range(cnt)
    )
    return [i for _k, i in events]
