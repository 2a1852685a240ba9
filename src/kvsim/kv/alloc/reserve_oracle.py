"""``oracle``: contiguous extents reserving exactly ``prompt + output`` (Orca-Oracle style).

The unattainable best case of reservation: no over-reservation, but the slots of tokens
not yet generated are still reserved from admission on, and the extents still fragment the
address space.
"""

from __future__ import annotations

from kvsim.kv.alloc.base import register_allocator
from kvsim.kv.alloc.contiguous import ContiguousAllocator

__all__ = ["OracleReservationAllocator"]


@register_allocator("oracle")
class OracleReservationAllocator(ContiguousAllocator):
    """First-fit contiguous allocator reserving the exact final length."""

    def reservation_slots(self, num_tokens: int, final_tokens: int) -> int:
        return max(final_tokens, num_tokens)
