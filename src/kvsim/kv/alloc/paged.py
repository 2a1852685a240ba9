"""``paged``: the serving engine's own :class:`~kvsim.kv.block_pool.BlockPool`, block tables.

The slot space is cut into ``num_slots // block_size`` fixed-size blocks held by one
``BlockPool`` (prefix caching off: the memory study has no hashes). A sequence's block table
lists its blocks in logical order; any free block can extend any sequence, so there is no
external fragmentation, and only the last block of a sequence can be partly empty::

    seq 7, 37 tokens, block_size 16:
        table  [ b4 ][ b0 ][ b9 ]          logical blocks 0, 1, 2 -> physical ids
        tokens  16    16    5 (+11 empty slots: the only internal fragmentation)

Blocks are freed in reverse table order, as the engine does. Counters: ``reserved_slots =
blocks in use * block_size``; ``used_slots = num_tokens``; ``future_slots = 0`` (nothing is
reserved ahead). Slots beyond ``num_blocks * block_size`` (a remainder smaller than a block)
are never usable and count as neither used nor reserved.
"""

from __future__ import annotations

from kvsim.errors import SimulationError
from kvsim.kv.alloc.base import Allocator, AllocatorSpec, register_allocator
from kvsim.kv.block_pool import BlockPool, KVBlock

__all__ = ["PagedAllocator"]


@register_allocator("paged")
class PagedAllocator(Allocator):
    """Block tables over a shared :class:`BlockPool` (see the module doc).

    Invariant: ``len(seq_to_blocks[s]) == ceil(seq_to_tokens[s] / block_size)`` and
    ``pool.num_used_blocks == sum of table lengths``.
    """

    def __init__(self, num_slots: int, spec: AllocatorSpec) -> None:
        super().__init__(num_slots, spec)
        if spec.block_size < 1:
            raise SimulationError(f"block_size must be >= 1, got {spec.block_size}")
        self.block_size: int = spec.block_size
        self.pool = BlockPool(num_slots // spec.block_size, enable_caching=False)
        self.seq_to_blocks: dict[int, list[KVBlock]] = {}
        self.seq_to_tokens: dict[int, int] = {}

    def allocate(self, seq_id: int, num_tokens: int, final_tokens: int, now: int) -> bool:
        if seq_id in self.seq_to_blocks:
            raise SimulationError(f"sequence {seq_id} is already allocated")
        blocks = self.pool.allocate(-(-num_tokens // self.block_size))
        if blocks is None:
            self.num_failed += 1
            return False
        self.seq_to_blocks[seq_id] = blocks
        self.seq_to_tokens[seq_id] = num_tokens
        self._account(len(blocks), num_tokens)
        return True

    def append(self, seq_id: int, num_tokens: int, now: int) -> bool:
        table = self.seq_to_blocks.get(seq_id)
        if table is None:
            raise SimulationError(f"append to unknown sequence {seq_id}")
        total = self.seq_to_tokens[seq_id] + num_tokens
        need = -(-total // self.block_size) - len(table)
        if need > 0:
            blocks = self.pool.allocate(need)
            if blocks is None:
                self.num_failed += 1
                return False
            table.extend(blocks)
        else:
            need = 0
        self.seq_to_tokens[seq_id] = total
        self._account(need, num_tokens)
        return True

    def free(self, seq_id: int, now: int) -> None:
        table = self.seq_to_blocks.pop(seq_id, None)
        if table is None:
            raise SimulationError(f"free of unknown sequence {seq_id}")
        tokens = self.seq_to_tokens.pop(seq_id)
        self.pool.free(table[::-1])
        self._account(-len(table), -tokens)

    def reservation_slots(self, num_tokens: int, final_tokens: int) -> int:
        return -(-num_tokens // self.block_size) * self.block_size

    def external_fragmentation_slots(self, need_slots: int) -> int:
        return 0

    def _account(self, num_blocks: int, num_tokens: int) -> None:
        self.reserved_slots += num_blocks * self.block_size
        self.used_slots += num_tokens
        self.num_tokens += num_tokens
        self._note_peak()
