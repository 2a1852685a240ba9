"""``monolithic``: one pool and a usage counter — the no-fragmentation baseline.

Every sequence takes exactly the slots its tokens need, from one undivided pool:
``allocate(n)`` succeeds iff ``usage + n <= num_slots``. No addresses, no blocks, so no
internal or external fragmentation; it shows raw demand and the best any allocator could do.
"""

from __future__ import annotations

from kvsim.errors import SimulationError
from kvsim.kv.alloc.base import Allocator, AllocatorSpec, register_allocator

__all__ = ["MonolithicAllocator"]


@register_allocator("monolithic")
class MonolithicAllocator(Allocator):
    """Usage counter over ``num_slots``; ``seq_to_tokens[s]`` is what sequence ``s`` holds.

    Invariant: ``used_slots == reserved_slots == num_tokens == sum(seq_to_tokens.values())``.
    """

    def __init__(self, num_slots: int, spec: AllocatorSpec) -> None:
        super().__init__(num_slots, spec)
        self.seq_to_tokens: dict[int, int] = {}

    def allocate(self, seq_id: int, num_tokens: int, final_tokens: int, now: int) -> bool:
        if seq_id in self.seq_to_tokens:
            raise SimulationError(f"sequence {seq_id} is already allocated")
        if self.reserved_slots + num_tokens > self.num_slots:
            self.num_failed += 1
            return False
        self.seq_to_tokens[seq_id] = num_tokens
        self._add(num_tokens)
        return True

    def append(self, seq_id: int, num_tokens: int, now: int) -> bool:
        held = self.seq_to_tokens.get(seq_id)
        if held is None:
            raise SimulationError(f"append to unknown sequence {seq_id}")
        if self.reserved_slots + num_tokens > self.num_slots:
            self.num_failed += 1
            return False
        self.seq_to_tokens[seq_id] = held + num_tokens
        self._add(num_tokens)
        return True

    def free(self, seq_id: int, now: int) -> None:
        held = self.seq_to_tokens.pop(seq_id, None)
        if held is None:
            raise SimulationError(f"free of unknown sequence {seq_id}")
        self._add(-held)

    def reservation_slots(self, num_tokens: int, final_tokens: int) -> int:
        return num_tokens

    def external_fragmentation_slots(self, need_slots: int) -> int:
        return 0

    def _add(self, n: int) -> None:
        self.used_slots += n
        self.reserved_slots += n
        self.num_tokens += n
        self._note_peak()
