"""Deterministic, prefix-chained block hashes for synthesised prompts.

A synthesised prompt is a concatenation of *segments*: runs of tokens with one content id
each (a system prompt, a user message, a model answer, a whole seqcsv sequence). Generators
keep one rule:

    a segment id determines every token before it (segments are only ever shared together
    with everything that precedes them: a system prompt sits at offset 0, and a session turn
    re-sends the whole previous conversation).

Under that rule the prompt prefix ``[0, end)`` is identified by ``(id of the segment holding
token end - 1, end)``, so the hash of block ``i`` (ending at ``end = (i + 1) * block_size``)
is ``mix(segment_id, end)``. No sequential chaining is needed, yet the hashes are
prefix-chained: equal hashes at block ``i`` imply equal prefixes, hence equal hashes at every
``j < i``. Everything is vectorised with numpy, so millions of blocks cost milliseconds.

``mix`` is SplitMix64's finaliser on ``segment_id * GOLDEN + end`` (wrapping 64-bit
arithmetic), shifted right by one bit so that every hash is a non-negative int64. It never uses
Python's ``hash()`` (salted per process): the same inputs give the same hashes everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["leading_slices", "mix64", "segment_block_hashes", "stream_block_hashes"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_MASK64 = (1 << 64) - 1


def _splitmix64_inplace(z: np.ndarray) -> np.ndarray:
    """SplitMix64 output function on a uint64 array (a bijection of 64-bit values), in place.

    Written with ``out=`` arguments: on millions of blocks, fresh temporaries per step would
    cost more than the arithmetic.
    """
    tmp = np.empty_like(z)
    z += _GOLDEN
    for shift, mul in ((30, _M1), (27, _M2)):
        np.right_shift(z, np.uint64(shift), out=tmp)
        z ^= tmp
        z *= mul
    np.right_shift(z, np.uint64(31), out=tmp)
    z ^= tmp
    return z


def segment_block_hashes(segment_ids: np.ndarray, block_ends: np.ndarray) -> np.ndarray:
    """Hash of each prefix ``[0, block_ends[k])`` whose last token lies in ``segment_ids[k]``.

    Both arrays have the same length and non-negative integer entries. Returns an int64 array
    of values in ``[0, 2**63)``.
    """
    seg = np.asarray(segment_ids, dtype=np.int64).view(np.uint64)
    end = np.asarray(block_ends, dtype=np.int64).view(np.uint64)
    with np.errstate(over="ignore"):
        z = seg * _GOLDEN  # a new array: the inputs are never written
        z += end
        _splitmix64_inplace(z)
    z >>= np.uint64(1)
    return z.view(np.int64)


def mix64(segment_id: int, block_end: int) -> int:
    """Scalar reference of :func:`segment_block_hashes` (pure Python, for tests and tools)."""
    z = (segment_id * 0x9E3779B97F4A7C15 + block_end + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) >> 1


def leading_slices(
    flat: np.ndarray, starts: np.ndarray | Sequence[int], counts: np.ndarray | Sequence[int]
) -> list[tuple[int, ...]]:
    """``[tuple(flat[starts[k] : starts[k] + counts[k]]) for k ...]`` as Python ints.

    Slices may overlap (turns of one session, requests of one sequence): the tuples then share
    the same int objects, so memory grows with the distinct hashes, not with their copies.
    """
    values = tuple(np.asarray(flat).tolist())  # slicing a tuple makes the tuple directly
    return [
        values[a : a + c]
        for a, c in zip(np.asarray(starts).tolist(), np.asarray(counts).tolist(), strict=True)
    ]


def stream_block_hashes(
    streams: np.ndarray | Sequence[int], prompts: np.ndarray | Sequence[int], block_size: int
) -> list[tuple[int, ...]]:
    """Synthetic hashes when request k's prompt is the first ``prompts[k]`` tokens of content
    stream ``streams[k]`` (a stream id >= 0; -1 = no hashes, ``()``).

    Requests of one stream share every full block both have; different streams share
    nothing. Block ``i`` of stream ``s`` hashes to ``mix64(s, (i + 1) * block_size)``. Each
    stream is hashed once, up to its longest prompt, and every request takes a leading slice.
    """
    seg = np.asarray(streams, dtype=np.int64)
    if seg.size == 0:
        return []
    has = seg >= 0
    blocks = np.where(has, np.asarray(prompts, dtype=np.int64) // block_size, 0)
    owner_of = np.where(has, seg, 0)
    max_blocks = np.zeros(int(owner_of.max()) + 1, dtype=np.int64)
    np.maximum.at(max_blocks, owner_of, blocks)
    start = np.cumsum(max_blocks) - max_blocks
    owner = np.repeat(np.arange(len(max_blocks), dtype=np.int64), max_blocks)
    end = (np.arange(int(max_blocks.sum()), dtype=np.int64) - start[owner] + 1) * block_size
    flat = segment_block_hashes(owner, end)
    return leading_slices(flat, start[owner_of], blocks)
