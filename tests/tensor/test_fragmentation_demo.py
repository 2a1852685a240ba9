"""The fragmentation demo: exact numbers, the printed table, and the first-fit allocator."""

from __future__ import annotations

import io

import pytest

pytest.importorskip("torch")

from rich.console import Console

from kvsim.tensor.demo import (
    ContiguousFirstFit,
    fragmentation_scenario,
    run_fragmentation_demo,
)


def test_scenario_numbers_are_exact() -> None:
    res = fragmentation_scenario()
    assert (res.num_blocks, res.block_size, res.bytes_per_block) == (16, 4, 1024)
    rows = [
        (
            s.event,
            s.seq,
            s.num_tokens,
            s.num_blocks,
            s.contiguous_ok,
            s.contiguous_start,
            s.contiguous_free_blocks,
            s.contiguous_largest_hole,
            s.paged_ok,
            s.paged_block_ids,
            s.paged_free_blocks,
        )
        for s in res.steps
    ]
    assert rows == [
        ("arrive", "A", 12, 3, True, 0, 13, 13, True, (0, 1, 2), 13),
        ("arrive", "B", 20, 5, True, 3, 8, 8, True, (3, 4, 5, 6, 7), 8),
        ("arrive", "C", 16, 4, True, 8, 4, 4, True, (8, 9, 10, 11), 4),
        ("arrive", "D", 16, 4, True, 12, 0, 0, True, (12, 13, 14, 15), 0),
        ("finish", "A", 0, 0, True, None, 3, 3, True, None, 3),
        ("finish", "C", 0, 0, True, None, 7, 4, True, None, 7),
        ("arrive", "E", 24, 6, False, None, 7, 4, True, (2, 1, 0, 11, 10, 9), 1),
    ]
    assert [s.step for s in res.steps] == list(range(1, 8))
    assert res.contiguous_map == "...BBBBB....DDDD"
    assert res.paged_map == "EEEBBBBB.EEEDDDD"
    assert res.paged_gather_exact is True


def test_demo_prints_table_and_verdict() -> None:
    buf = io.StringIO()
    console = Console(file=buf, width=100, color_system=None)
    run_fragmentation_demo(console)
    text = buf.getvalue()
    assert "16 blocks x 4 tokens = 16 KiB (1 KiB per block)" in text
    assert "contiguous first-fit vs paged" in text
    assert "FAILED" in text
    assert "2,1,0,11,10,9" in text
    assert "contiguous map: ...BBBBB....DDDD" in text
    assert "paged map:      EEEBBBBB.EEEDDDD" in text
    assert "E needs 6 blocks; 7 are free in both allocators." in text
    assert "contiguous: largest hole 4 -> cannot place it (external fragmentation)" in text
    assert "paged:      placed in blocks [2, 1, 0, 11, 10, 9]" in text
    assert "paged gather() returns exactly the appended K/V: True" in text


def test_demo_fits_an_80_column_terminal() -> None:
    buf = io.StringIO()
    run_fragmentation_demo(Console(file=buf, width=80, color_system=None))
    assert "…" not in buf.getvalue()  # no column was truncated


def test_first_fit_places_lowest_hole_and_merges_on_free() -> None:
    alloc = ContiguousFirstFit(10)
    assert [alloc.allocate(n) for n in (2, 3, 2, 3)] == [0, 2, 5, 7]
    assert alloc.allocate(1) is None
    alloc.free(2, 3)  # hole [2, 5)
    alloc.free(7, 3)  # hole [7, 10)
    assert (alloc.num_free_blocks, alloc.largest_hole) == (6, 3)
    assert alloc.allocate(4) is None  # 6 free, but in two pieces of 3
    alloc.free(5, 2)  # merges both sides: [2, 10)
    assert (alloc.num_free_blocks, alloc.largest_hole) == (8, 8)
    assert alloc.allocate(4) == 2
    alloc.free(0, 2)  # [0, 2) merges with nothing; [6, 10) stays
    assert alloc._holes == [(0, 2), (6, 4)]
    alloc.free(2, 4)
    assert alloc._holes == [(0, 10)]
    assert ContiguousFirstFit(0).allocate(1) is None
