"""``paged_compressed``: paged block tables plus a compression gate for cold pages.

Built on the engine's :class:`~kvsim.kv.block_pool.BlockPool` like ``paged``. Before an
allocation of ``n`` blocks, if the effective usage ``(blocks in use + n) / num_blocks`` would
pass ``pressure_threshold`` (or ``n`` blocks are not free), the gate packs the *coldest*
uncompressed pages (LRU: smallest ``last_access``, ties by the order pages were written) in
groups of ``g = round(1 / compression_ratio)`` into one physical block, until the usage is at
the threshold again or fewer than ``g`` uncompressed pages are left::

    before   A0 A1 A2 A3 A4 A5 .. ..        8 blocks, 6 in use (A: 6 cold pages)
    g = 2    [A0+A1] [A2+A3] [A4+A5] .. .. .. .. ..   3 in use, 5 free

The group's physical block is the coldest member's block; the other ``g - 1`` blocks go back
to the pool. The pool's ref count of the kept block is the number of live pages packed in
it, so it returns to the free queue exactly when its last member is freed. A compressed page
is never written again: an append to a sequence whose last page is compressed starts a new
page, and the partly filled page an append is about to fill is pinned (never packed) while
the gate runs for that append. Decompression on read is not modelled (a compressed page
costs only memory here).

Freeing prefers uncompressed pages: a sequence's uncompressed blocks are returned to the
pool (in reverse table order) before its compressed memberships are released, so the free
queue hands plain blocks out first.

Counters: ``reserved_slots = blocks in use * block_size``; ``num_tokens`` counts token
states; ``used_slots = plain tokens + ceil(compressed tokens / g)`` (the slots the tokens
physically take, so ``used_slots <= reserved_slots``); ``num_compressions`` counts groups.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

from kvsim.errors import SimulationError
from kvsim.kv.alloc.base import Allocator, AllocatorSpec, register_allocator
from kvsim.kv.block_pool import BlockPool, KVBlock

__all__ = ["Page", "PagedCompressedAllocator"]


@dataclass(slots=True, eq=False)
class Page:
    """One logical page of a sequence: its physical ``block`` (shared by the members of a
    compressed group), the ``num_tokens`` it holds and when it was ``last_access``-ed."""

    block: KVBlock
    num_tokens: int
    last_access: int
    compressed: bool = False
    alive: bool = True
    version: int = field(default=0)


@register_allocator("paged_compressed")
class PagedCompressedAllocator(Allocator):
    """Paged allocator with an LRU-guided compression gate (see the module doc)."""

    reclaims_without_free = True

    def __init__(self, num_slots: int, spec: AllocatorSpec) -> None:
        super().__init__(num_slots, spec)
        if not 0.0 < spec.compression_ratio < 1.0:
            raise SimulationError(
                f"compression_ratio must be in (0, 1), got {spec.compression_ratio}"
            )
        self.block_size: int = spec.block_size
        self.group_size: int = max(2, round(1.0 / spec.compression_ratio))
        self.pressure_threshold: float = spec.pressure_threshold
        self.pool = BlockPool(num_slots // spec.block_size, enable_caching=False)
        self.seq_to_pages: dict[int, list[Page]] = {}
        self._lru: list[tuple[int, int, int, Page]] = []  # (last_access, order, version, page)
        self._order = itertools.count()
        self._plain_tokens = 0
        self._compressed_tokens = 0
        self._pinned: Page | None = None

    # ------------------------------------------------------------------ interface

    def allocate(self, seq_id: int, num_tokens: int, final_tokens: int, now: int) -> bool:
        if seq_id in self.seq_to_pages:
            raise SimulationError(f"sequence {seq_id} is already allocated")
        pages: list[Page] = []
        if not self._add_pages(pages, num_tokens, now):
            return False
        self.seq_to_pages[seq_id] = pages
        self._account(num_tokens)
        return True

    def append(self, seq_id: int, num_tokens: int, now: int) -> bool:
        pages = self.seq_to_pages.get(seq_id)
        if pages is None:
            raise SimulationError(f"append to unknown sequence {seq_id}")
        last = pages[-1] if pages else None
        room = 0
        if last is not None and not last.compressed:
            room = min(self.block_size - last.num_tokens, num_tokens)
        if num_tokens > room:
            self._pinned = last  # the page being filled must not be packed meanwhile
            added = self._add_pages(pages, num_tokens - room, now)
            self._pinned = None
            if not added:
                return False
        if room > 0:
            assert last is not None
            last.num_tokens += room
            self._touch(last, now)
        self._account(num_tokens)
        return True

    def free(self, seq_id: int, now: int) -> None:
        pages = self.seq_to_pages.pop(seq_id, None)
        if pages is None:
            raise SimulationError(f"free of unknown sequence {seq_id}")
        plain = [p for p in reversed(pages) if not p.compressed]
        packed = [p for p in reversed(pages) if p.compressed]
        for p in pages:
            p.alive = False
        self.pool.free([p.block for p in plain])
        self.pool.free([p.block for p in packed])
        plain_tokens = sum(p.num_tokens for p in plain)
        packed_tokens = sum(p.num_tokens for p in packed)
        self._plain_tokens -= plain_tokens
        self._compressed_tokens -= packed_tokens
        self.num_tokens -= plain_tokens + packed_tokens
        self._refresh()

    def reservation_slots(self, num_tokens: int, final_tokens: int) -> int:
        return -(-num_tokens // self.block_size) * self.block_size

    def external_fragmentation_slots(self, need_slots: int) -> int:
        return 0

    @property
    def num_compressed_pages(self) -> int:
        """Live pages currently stored compressed."""
        return sum(p.compressed for pages in self.seq_to_pages.values() for p in pages)

    # ------------------------------------------------------------------ internals

    def _add_pages(self, pages: list[Page], num_tokens: int, now: int) -> bool:
        """Append fresh pages for ``num_tokens`` tokens to ``pages``; False if no room."""
        n = -(-num_tokens // self.block_size)
        self._maybe_compress(n)
        blocks = self.pool.allocate(n)
        if blocks is None:
            self.num_failed += 1
            return False
        left = num_tokens
        for block in blocks:
            page = Page(block, min(self.block_size, left), now)
            left -= page.num_tokens
            pages.append(page)
            self._push(page)
        return True

    def _maybe_compress(self, n: int) -> None:
        """Compress cold groups while the usage after taking ``n`` blocks is too high."""
        pool = self.pool
        limit = self.pressure_threshold * pool.num_blocks
        while pool.num_used_blocks + n > limit or n > pool.num_free_blocks:
            group = self._coldest(self.group_size)
            if group is None:
                return
            self._compress(group)

    def _coldest(self, k: int) -> list[Page] | None:
        """Pop the ``k`` coldest live uncompressed pages, or None (heap unchanged) if fewer."""
        out: list[tuple[int, int, int, Page]] = []
        pinned: list[tuple[int, int, int, Page]] = []
        heap = self._lru
        while heap and len(out) < k:
            entry = heapq.heappop(heap)
            page = entry[3]
            if page.alive and not page.compressed and entry[2] == page.version:
                (pinned if page is self._pinned else out).append(entry)
        for entry in pinned:
            heapq.heappush(heap, entry)
        if len(out) < k:
            for entry in out:
                heapq.heappush(heap, entry)
            return None
        return [entry[3] for entry in out]

    def _compress(self, group: list[Page]) -> None:
        holder = group[0].block
        self.pool.free([p.block for p in group[1:]])
        self.pool.touch([holder] * (len(group) - 1))
        tokens = 0
        for page in group:
            page.block = holder
            page.compressed = True
            tokens += page.num_tokens
        self._plain_tokens -= tokens
        self._compressed_tokens += tokens
        self.num_compressions += 1
        self._refresh()

    def _push(self, page: Page) -> None:
        heap = self._lru
        heapq.heappush(heap, (page.last_access, next(self._order), page.version, page))
        if len(heap) > 4 * self.pool.num_blocks + 64:
            # Drop stale entries (freed, compressed or re-touched pages); amortised O(1).
            heap[:] = [
                e for e in heap if e[3].alive and not e[3].compressed and e[2] == e[3].version
            ]
            heapq.heapify(heap)

    def _touch(self, page: Page, now: int) -> None:
        if page.last_access != now:
            page.last_access = now
            page.version += 1
            self._push(page)

    def _account(self, num_tokens: int) -> None:
        self._plain_tokens += num_tokens
        self.num_tokens += num_tokens
        self._refresh()

    def _refresh(self) -> None:
        self.reserved_slots = self.pool.num_used_blocks * self.block_size
        self.used_slots = self._plain_tokens - (-self._compressed_tokens // self.group_size)
        self._note_peak()
