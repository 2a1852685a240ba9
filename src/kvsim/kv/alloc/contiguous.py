"""``contiguous``: first-fit over one linear address space of slots.

Each sequence owns one contiguous extent ``[start, start + length)``. Free space is a set of
maximal *holes* (adjacent holes are always merged), so external fragmentation is real: free
slots split into holes smaller than a request cannot serve it, however many there are::

    slots   0         20        40        60        80       100
            |  hole   |  seq 2  |  hole   |  seq 4  |  hole   |
    60 free slots, largest hole 20: a 30-slot request fails.

Allocation takes the lowest-addressed hole that is large enough (first fit) and carves the
extent from its start. A sequence that outgrows its extent extends it in place when a hole
starts right after it, else moves to a first-fit hole of the new length (a *relocation*, the
copy a real system would do; counted in ``num_relocations``), else the append fails.

The reservation strategies (``max``, ``pow2``, ``oracle``) are this allocator with a different
:meth:`ContiguousAllocator.reservation_slots`: plain ``contiguous`` reserves exactly the tokens
it is given.

Invariants: holes and extents tile ``[0, num_slots)`` without overlap; no two holes touch;
``reserved_slots == sum of extent lengths``; ``used_slots == num_tokens == sum of tokens``.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from kvsim.errors import SimulationError
from kvsim.kv.alloc.base import Allocator, AllocatorSpec, register_allocator

__all__ = ["ContiguousAllocator", "Extent"]


@dataclass(slots=True)
class Extent:
    """One sequence's region: ``length`` slots from ``start``; ``num_tokens`` of them hold
    token states; ``final_tokens`` is the length the sequence is expected to reach."""

    start: int
    length: int
    num_tokens: int
    final_tokens: int

    @property
    def future(self) -> int:
        """Reserved slots that will hold this sequence's coming tokens."""
        return max(0, min(self.final_tokens, self.length) - self.num_tokens)


@register_allocator("contiguous")
class ContiguousAllocator(Allocator):
    """First-fit extents over ``[0, num_slots)`` (see the module doc)."""

    def __init__(self, num_slots: int, spec: AllocatorSpec) -> None:
        super().__init__(num_slots, spec)
        self.seq_to_extent: dict[int, Extent] = {}
        self.hole_starts: list[int] = [0] if num_slots > 0 else []
        self.hole_size: dict[int, int] = {0: num_slots} if num_slots > 0 else {}
        self.hole_end_to_start: dict[int, int] = {num_slots: 0} if num_slots > 0 else {}
        self.num_relocations: int = 0

    # ------------------------------------------------------------------ strategy hook

    def reservation_slots(self, num_tokens: int, final_tokens: int) -> int:
        """Plain contiguous reserves exactly the tokens it holds."""
        return num_tokens

    # ------------------------------------------------------------------ interface

    def allocate(self, seq_id: int, num_tokens: int, final_tokens: int, now: int) -> bool:
        if seq_id in self.seq_to_extent:
            raise SimulationError(f"sequence {seq_id} is already allocated")
        length = max(self.reservation_slots(num_tokens, final_tokens), num_tokens)
        start = self._take_first_fit(length)
        if start is None:
            self.num_failed += 1
            return False
        ext = Extent(start, length, num_tokens, max(final_tokens, num_tokens))
        self.seq_to_extent[seq_id] = ext
        self.reserved_slots += length
        self.used_slots += num_tokens
        self.num_tokens += num_tokens
        self.future_slots += ext.future
        self._note_peak()
        return True

    def append(self, seq_id: int, num_tokens: int, now: int) -> bool:
        ext = self._extent(seq_id)
        before = ext.future
        need = ext.num_tokens + num_tokens - ext.length
        if need > 0 and not self._extend_in_place(ext, need) and not self._relocate(ext, need):
            self.num_failed += 1
            return False
        ext.num_tokens += num_tokens
        self.used_slots += num_tokens
        self.num_tokens += num_tokens
        self.future_slots += ext.future - before
        return True

    def free(self, seq_id: int, now: int) -> None:
        ext = self.seq_to_extent.pop(seq_id, None)
        if ext is None:
            raise SimulationError(f"free of unknown sequence {seq_id}")
        self.reserved_slots -= ext.length
        self.used_slots -= ext.num_tokens
        self.num_tokens -= ext.num_tokens
        self.future_slots -= ext.future
        self._release(ext.start, ext.length)

    def external_fragmentation_slots(self, need_slots: int) -> int:
        sizes = self.hole_size
        return sum(size for size in sizes.values() if size < need_slots)

    @property
    def largest_hole(self) -> int:
        """Size of the largest hole (0 when full)."""
        return max(self.hole_size.values(), default=0)

    # ------------------------------------------------------------------ holes

    def _extent(self, seq_id: int) -> Extent:
        ext = self.seq_to_extent.get(seq_id)
        if ext is None:
            raise SimulationError(f"append to unknown sequence {seq_id}")
        return ext

    def _take_first_fit(self, length: int) -> int | None:
        """Carve ``length`` slots from the lowest hole that fits; its start, or None."""
        if length <= 0:
            raise SimulationError(f"allocation of {length} slots")
        sizes = self.hole_size
        for start in self.hole_starts:
            if sizes[start] >= length:
                self._carve(start, length)
                return start
        return None

    def _carve(self, start: int, length: int) -> None:
        """Take ``[start, start + length)`` from the front of the hole starting at ``start``."""
        size = self.hole_size.pop(start)
        end = start + size
        idx = bisect.bisect_left(self.hole_starts, start)
        if size == length:
            del self.hole_starts[idx]
            del self.hole_end_to_start[end]
            return
        new_start = start + length
        self.hole_starts[idx] = new_start
        self.hole_size[new_start] = size - length
        self.hole_end_to_start[end] = new_start

    def _release(self, start: int, length: int) -> None:
        """Return ``[start, start + length)`` to the holes, merging with its neighbours."""
        end = start + length
        left = self.hole_end_to_start.pop(start, None)
        if left is not None:
            idx = bisect.bisect_left(self.hole_starts, left)
            del self.hole_starts[idx]
            del self.hole_size[left]
            start = left
        right_size = self.hole_size.pop(end, None)
        if right_size is not None:
            idx = bisect.bisect_left(self.hole_starts, end)
            del self.hole_starts[idx]
            del self.hole_end_to_start[end + right_size]
            end += right_size
        bisect.insort(self.hole_starts, start)
        self.hole_size[start] = end - start
        self.hole_end_to_start[end] = start

    def _extend_in_place(self, ext: Extent, need: int) -> bool:
        end = ext.start + ext.length
        size = self.hole_size.get(end)
        if size is None or size < need:
            return False
        self._carve(end, need)
        ext.length += need
        self.reserved_slots += need
        self._note_peak()
        return True

    def _relocate(self, ext: Extent, need: int) -> bool:
        """Move ``ext`` to a first-fit hole of its grown length (the old extent excluded)."""
        new_length = ext.length + need
        start = self._take_first_fit(new_length)
        if start is None:
            return False
        self._release(ext.start, ext.length)
        ext.start = start
        ext.length = new_length
        self.reserved_slots += need
        self.num_relocations += 1
        self._note_peak()
        return True
