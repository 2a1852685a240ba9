"""Exact counters on small hand-made traces, for every allocator kind."""

from __future__ import annotations

import pytest

from kvsim.errors import ConfigError, SimulationError
from kvsim.kv.alloc import AllocatorSpec, allocator_kinds, create_allocator
from kvsim.kv.alloc.contiguous import ContiguousAllocator
from kvsim.kv.alloc.paged import PagedAllocator
from kvsim.kv.alloc.paged_compressed import PagedCompressedAllocator
from kvsim.kv.alloc.reserve_pow2 import next_pow2
from kvsim.kv.block_pool import BlockPool


def make(kind: str, num_slots: int, **kw: object) -> object:
    return create_allocator(AllocatorSpec(kind=kind, **kw), num_slots)  # type: ignore[arg-type]


def state(a: object) -> tuple[int, int, int, int, int]:
    return (a.used_slots, a.reserved_slots, a.future_slots, a.num_tokens, a.num_failed)  # type: ignore[attr-defined]


def test_registry_lists_every_kind_and_rejects_unknown() -> None:
    assert allocator_kinds() == [
        "contiguous",
        "max",
        "monolithic",
        "oracle",
        "paged",
        "paged_compressed",
        "pow2",
    ]
    with pytest.raises(ConfigError, match="unknown allocator 'buddy'; known: contiguous"):
        create_allocator(AllocatorSpec(kind="buddy"), 10)


def test_monolithic_usage_counter() -> None:
    a = make("monolithic", 10)
    assert a.allocate(1, 4, 4, 0) and a.allocate(2, 6, 6, 0)  # type: ignore[attr-defined]
    assert state(a) == (10, 10, 0, 10, 0)
    assert not a.allocate(3, 1, 1, 1)  # type: ignore[attr-defined]
    assert not a.append(1, 1, 1)  # type: ignore[attr-defined]
    assert state(a) == (10, 10, 0, 10, 2)
    a.free(2, 2)  # type: ignore[attr-defined]
    assert a.append(1, 2, 2)  # type: ignore[attr-defined]
    assert state(a) == (6, 6, 0, 6, 2)
    assert a.peak_reserved_slots == 10  # type: ignore[attr-defined]
    assert a.external_fragmentation_slots(100) == 0  # type: ignore[attr-defined]
    with pytest.raises(SimulationError):
        a.free(2, 3)  # type: ignore[attr-defined]


def test_contiguous_sixty_free_slots_in_pieces_cannot_serve_thirty() -> None:
    a = make("contiguous", 100)
    assert isinstance(a, ContiguousAllocator)
    for sid in range(5):
        assert a.allocate(sid, 20, 20, 0)
    for sid in (0, 2, 4):
        a.free(sid, 1)
    assert a.free_slots == 60 and a.hole_starts == [0, 40, 80] and a.largest_hole == 20
    assert not a.allocate(9, 30, 30, 2)
    assert a.num_failed == 1
    assert a.external_fragmentation_slots(30) == 60
    assert a.external_fragmentation_slots(20) == 0
    paged = make("paged", 100, block_size=1)
    for sid in range(5):
        assert paged.allocate(sid, 20, 20, 0)  # type: ignore[attr-defined]
    for sid in (0, 2, 4):
        paged.free(sid, 1)  # type: ignore[attr-defined]
    assert paged.allocate(9, 30, 30, 2)  # type: ignore[attr-defined]


def test_contiguous_grows_in_place_or_relocates_and_coalesces() -> None:
    a = make("contiguous", 10)
    assert isinstance(a, ContiguousAllocator)
    assert a.allocate(1, 3, 3, 0) and a.allocate(2, 3, 3, 0)
    assert a.append(1, 1, 1)  # no hole right after 1 -> moves to [6, 10)
    assert a.num_relocations == 1 and a.seq_to_extent[1].start == 6
    assert a.hole_starts == [0] and a.hole_size == {0: 3}
    assert not a.append(2, 1, 2)  # no hole after [3, 6), hole of 3 < 4
    a.free(1, 3)
    assert a.append(2, 1, 4)  # extends in place into [6, 7)
    assert a.seq_to_extent[2].start == 3 and a.seq_to_extent[2].length == 4
    assert a.hole_starts == [0, 7] and a.hole_size == {0: 3, 7: 3}
    a.free(2, 5)
    assert a.hole_starts == [0] and a.hole_size == {0: 10} and a.hole_end_to_start == {10: 0}
    assert state(a) == (0, 0, 0, 0, 1)


def test_max_reserves_max_len() -> None:
    a = make("max", 20, max_len=8)
    assert a.allocate(1, 2, 5, 0) and a.allocate(2, 3, 4, 0)  # type: ignore[attr-defined]
    assert state(a) == (5, 16, 3 + 1, 5, 0)
    assert not a.allocate(3, 1, 1, 1)  # type: ignore[attr-defined]
    assert a.external_fragmentation_slots(a.reservation_slots(1, 1)) == 4  # type: ignore[attr-defined]
    assert a.append(1, 3, 2)  # type: ignore[attr-defined]
    assert state(a) == (8, 16, 1, 8, 1)


def test_pow2_reserves_next_power_of_two() -> None:
    assert [next_pow2(n) for n in (0, 1, 2, 3, 5, 8, 9, 1000)] == [1, 1, 2, 4, 8, 8, 16, 1024]
    a = make("pow2", 20)
    assert a.allocate(1, 3, 5, 0)  # type: ignore[attr-defined]
    assert not a.allocate(2, 9, 9, 0)  # 16 slots, only 12 left
    assert state(a) == (3, 8, 2, 3, 1)
    assert a.external_fragmentation_slots(16) == 12  # type: ignore[attr-defined]


def test_pow2_exact_state() -> None:
    a = make("pow2", 32)
    assert a.allocate(1, 3, 5, 0) and a.allocate(2, 9, 12, 0)  # type: ignore[attr-defined]
    assert state(a) == (12, 24, 2 + 3, 12, 0)


def test_oracle_reserves_exactly_and_grows_past_only_by_moving() -> None:
    a = make("oracle", 12)
    assert a.allocate(1, 3, 5, 0) and a.allocate(2, 2, 4, 0)  # type: ignore[attr-defined]
    assert state(a) == (5, 9, 4, 5, 0)
    assert a.append(1, 2, 1)  # type: ignore[attr-defined]  # within the reservation
    assert state(a) == (7, 9, 2, 7, 0)
    assert not a.append(1, 1, 2)  # type: ignore[attr-defined]  # past it: no hole of 6
    assert state(a) == (7, 9, 2, 7, 1)
    a.free(2, 3)  # type: ignore[attr-defined]
    assert a.append(1, 1, 4)  # type: ignore[attr-defined]  # extends in place into [5, 6)
    assert state(a) == (6, 6, 0, 6, 1)


def test_paged_uses_the_engine_block_pool_with_exact_ids() -> None:
    a = make("paged", 32, block_size=4)
    assert isinstance(a, PagedAllocator) and isinstance(a.pool, BlockPool)
    assert a.allocate(1, 5, 5, 0) and a.allocate(2, 4, 4, 0)
    assert [b.block_id for b in a.seq_to_blocks[1]] == [0, 1]
    assert a.append(2, 1, 1)
    assert [b.block_id for b in a.seq_to_blocks[2]] == [2, 3]
    assert state(a) == (10, 16, 0, 10, 0)
    a.free(1, 2)
    assert [b.block_id for b in a.pool.free_block_queue.get_all_free_blocks()] == [4, 5, 6, 7, 1, 0]
    assert a.allocate(3, 17, 17, 3)
    assert [b.block_id for b in a.seq_to_blocks[3]] == [4, 5, 6, 7, 1]
    assert not a.allocate(4, 5, 5, 3)  # 1 block free, 2 needed
    assert state(a) == (22, 28, 0, 22, 1)
    assert a.pool.num_used_blocks == 7
    assert a.reservation_slots(5, 9) == 8


def test_compression_makes_an_allocation_succeed_that_paged_fails() -> None:
    plain = make("paged", 32, block_size=4)
    comp = make("paged_compressed", 32, block_size=4, compression_ratio=0.5, pressure_threshold=0.9)
    assert isinstance(comp, PagedCompressedAllocator)
    for a in (plain, comp):
        assert a.allocate(1, 24, 24, 0)  # type: ignore[attr-defined]  # 6 of 8 blocks
    assert not plain.allocate(2, 16, 16, 1)  # type: ignore[attr-defined]  # 4 blocks, 2 free
    assert comp.allocate(2, 16, 16, 1)
    # (6 + 4) / 8 > 0.9 -> pack A's pages pairwise, coldest first, until (used + 4) / 8 <= 0.9
    assert comp.num_compressions == 3 and comp.group_size == 2
    assert comp.pool.num_used_blocks == 7
    assert [p.block.block_id for p in comp.seq_to_pages[1]] == [0, 0, 2, 2, 4, 4]
    assert [p.block.ref_cnt for p in comp.seq_to_pages[1]] == [2] * 6
    assert comp.num_compressed_pages == 6
    assert (comp.used_slots, comp.reserved_slots, comp.num_tokens) == (28, 28, 40)
    comp.free(2, 2)  # uncompressed pages are returned first
    comp.free(1, 2)
    free_ids = [b.block_id for b in comp.pool.free_block_queue.get_all_free_blocks()]
    assert free_ids == [5, 3, 1, 7, 6, 4, 2, 0]
    assert (comp.used_slots, comp.reserved_slots, comp.num_tokens) == (0, 0, 0)


def test_compression_picks_least_recently_written_pages() -> None:
    comp = make("paged_compressed", 16, block_size=2, compression_ratio=0.5, pressure_threshold=0.5)
    assert isinstance(comp, PagedCompressedAllocator)
    assert comp.allocate(1, 2, 2, 0)  # page 1.0, last access 0
    assert comp.allocate(2, 2, 2, 1)  # page 2.0, last access 1
    assert comp.allocate(3, 2, 2, 2)  # page 3.0, last access 2
    assert comp.append(1, 1, 3)  # 1.1 is new at step 3 (1.0 stays cold)
    assert comp.num_compressions == 0  # 4 blocks of 8: at the threshold, not past it
    assert comp.allocate(4, 2, 2, 4)  # (4 + 1) / 8 > 0.5 -> pack 1.0 + 2.0
    assert comp.num_compressions == 1
    assert [p.compressed for p in comp.seq_to_pages[1]] == [True, False]
    assert comp.seq_to_pages[2][0].compressed and not comp.seq_to_pages[3][0].compressed


@pytest.mark.parametrize(
    "kind", ["monolithic", "contiguous", "max", "pow2", "oracle", "paged", "paged_compressed"]
)
def test_every_kind_rejects_misuse(kind: str) -> None:
    a = make(kind, 64, block_size=4, max_len=16)
    assert a.allocate(1, 3, 3, 0)  # type: ignore[attr-defined]
    with pytest.raises(SimulationError):
        a.allocate(1, 3, 3, 0)  # type: ignore[attr-defined]
    with pytest.raises(SimulationError):
        a.append(2, 1, 0)  # type: ignore[attr-defined]
    with pytest.raises(SimulationError):
        a.free(2, 0)  # type: ignore[attr-defined]
