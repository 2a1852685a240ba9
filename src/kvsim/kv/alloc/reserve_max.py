"""``max``: contiguous extents reserving the model's maximum length (Orca-Max style).

Every sequence reserves ``max(spec.max_len, num_tokens)`` contiguous slots at admission, so
it never has to grow its extent, at the price of the slots between its final length and
``max_len`` (internal fragmentation) and of the slots reserved for tokens not yet generated.
"""

from __future__ import annotations

from kvsim.kv.alloc.base import register_allocator
from kvsim.kv.alloc.contiguous import ContiguousAllocator

__all__ = ["MaxReservationAllocator"]


@register_allocator("max")
class MaxReservationAllocator(ContiguousAllocator):
    """First-fit contiguous allocator whose reservation is the model's maximum length."""

    def reservation_slots(self, num_tokens: int, final_tokens: int) -> int:
        return max(self.spec.max_len, num_tokens)
