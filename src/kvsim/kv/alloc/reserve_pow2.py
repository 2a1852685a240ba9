"""``pow2``: contiguous extents reserving the final length rounded up to a power of two.

Orca-Pow2 style: the scheduler knows roughly how long a sequence gets and reserves the next
power of two ``>= final_tokens``; at most half of an extent is over-reservation.
"""

from __future__ import annotations

from kvsim.kv.alloc.base import register_allocator
from kvsim.kv.alloc.contiguous import ContiguousAllocator

__all__ = ["Pow2ReservationAllocator", "next_pow2"]


def next_pow2(n: int) -> int:
    """The smallest power of two ``>= n`` (1 for ``n <= 1``)."""
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


@register_allocator("pow2")
class Pow2ReservationAllocator(ContiguousAllocator):
    """First-fit contiguous allocator reserving ``next_pow2(final_tokens)`` slots."""

    def reservation_slots(self, num_tokens: int, final_tokens: int) -> int:
        return next_pow2(max(final_tokens, num_tokens))
