"""Fragmentation demo: a contiguous allocator fails where the paged store succeeds.

Both sides get the same KV budget: 16 blocks of 4 tokens (a tiny model: 2 layers, 2 KV
heads, head_dim 8, fp32, so one block is 1 KiB and the budget 16 KiB). The same script of
arrivals and completions is played against

* a **contiguous** allocator — each sequence needs ONE contiguous run of blocks, placed
  first-fit in a 16-block address space; it reserves exactly the blocks the sequence needs
  (an oracle reservation), so any failure is external fragmentation alone; and
* the **paged** store (:class:`~kvsim.tensor.paged_store.PagedKVStore`) holding real K/V
  tensors, whose block table may point anywhere.

Script (tokens, blocks)::

    1  A arrives  12 tok (3 blk)    contiguous: AAA.............   paged: same ids 0-2
    2  B arrives  20 tok (5 blk)                AAABBBBB........
    3  C arrives  16 tok (4 blk)                AAABBBBBCCCC....
    4  D arrives  16 tok (4 blk)                AAABBBBBCCCCDDDD   (budget full)
    5  A finishes                               ...BBBBBCCCCDDDD
    6  C finishes                               ...BBBBB....DDDD   7 free, holes of 3 and 4
    7  E arrives  24 tok (6 blk)    contiguous: FAILS (largest hole 4 < 6)
                                    paged:      EEEBBBBB.EEEDDDD   blocks [2, 1, 0, 11, 10, 9]

Everything is deterministic (fixed script, seeded K/V), so the numbers are exact and pinned
by ``tests/tensor/test_fragmentation_demo.py``. :func:`fragmentation_scenario` returns them;
:func:`run_fragmentation_demo` prints them (wired as ``kvsim memory demo-fragmentation``).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import torch
from rich import box
from rich.console import Console, JustifyMethod
from rich.table import Table

from kvsim.tensor.paged_store import PagedKVStore

__all__ = [
    "ContiguousFirstFit",
    "FragmentationDemoResult",
    "FragmentationStep",
    "fragmentation_scenario",
    "run_fragmentation_demo",
]

NUM_BLOCKS = 16
BLOCK_SIZE = 4
NUM_LAYERS = 2
NUM_KV_HEADS = 2
HEAD_DIM = 8

# (event, sequence, tokens): "arrive" appends the sequence's prompt, "finish" frees it.
SCRIPT: tuple[tuple[str, str, int], ...] = (
    ("arrive", "A", 12),
    ("arrive", "B", 20),
    ("arrive", "C", 16),
    ("arrive", "D", 16),
    ("finish", "A", 0),
    ("finish", "C", 0),
    ("arrive", "E", 24),
)


class ContiguousFirstFit:
    """One contiguous run of blocks per sequence, placed first-fit in ``[0, num_blocks)``.

    Free space is a sorted list of disjoint, non-adjacent holes ``(start, length)``;
    :meth:`free` merges a released run with its neighbours. "Cannot allocate" is the return
    value ``None`` (no side effect), as everywhere in kvsim.
    """

    def __init__(self, num_blocks: int) -> None:
        self.num_blocks = num_blocks
        self._holes: list[tuple[int, int]] = [(0, num_blocks)] if num_blocks else []

    @property
    def num_free_blocks(self) -> int:
        return sum(length for _, length in self._holes)

    @property
    def largest_hole(self) -> int:
        return max((length for _, length in self._holes), default=0)

    def allocate(self, num_blocks: int) -> int | None:
        """Start block of a run of ``num_blocks`` at the lowest hole that fits, else None."""
        for i, (start, length) in enumerate(self._holes):
            if length >= num_blocks:
                if length == num_blocks:
                    del self._holes[i]
                else:
                    self._holes[i] = (start + num_blocks, length - num_blocks)
                return start
        return None

    def free(self, start: int, num_blocks: int) -> None:
        """Return the run ``[start, start + num_blocks)``, merging adjacent holes."""
        i = bisect.bisect_left(self._holes, (start, 0))
        end = start + num_blocks
        if i < len(self._holes) and self._holes[i][0] == end:
            end += self._holes.pop(i)[1]
        if i > 0 and sum(self._holes[i - 1]) == start:
            start = self._holes.pop(i - 1)[0]
            i -= 1
        self._holes.insert(i, (start, end - start))


@dataclass(frozen=True, slots=True)
class FragmentationStep:
    """One script step and the state of both allocators AFTER it.

    ``contiguous_start`` / ``paged_block_ids`` are None when that allocator could not place
    an arriving sequence (and are None for a finish).
    """

    step: int
    event: str
    seq: str
    num_tokens: int
    num_blocks: int
    contiguous_ok: bool
    contiguous_start: int | None
    contiguous_free_blocks: int
    contiguous_largest_hole: int
    paged_ok: bool
    paged_block_ids: tuple[int, ...] | None
    paged_free_blocks: int


@dataclass(frozen=True, slots=True)
class FragmentationDemoResult:
    """All numbers of the demo (see the module docstring for the script)."""

    num_blocks: int
    block_size: int
    bytes_per_block: int
    steps: tuple[FragmentationStep, ...]
    contiguous_map: str
    paged_map: str
    paged_gather_exact: bool


def _map(num_blocks: int, owner: dict[int, str]) -> str:
    return "".join(owner.get(i, ".") for i in range(num_blocks))


def fragmentation_scenario(device: str = "cpu") -> FragmentationDemoResult:
    """Play :data:`SCRIPT` against both allocators and return every number."""
    store = PagedKVStore(NUM_BLOCKS, BLOCK_SIZE, NUM_LAYERS, NUM_KV_HEADS, HEAD_DIM, device=device)
    contiguous = ContiguousFirstFit(NUM_BLOCKS)
    gen = torch.Generator().manual_seed(0)
    written: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    contiguous_runs: dict[str, tuple[int, int]] = {}
    steps: list[FragmentationStep] = []
    for step, (event, seq, num_tokens) in enumerate(SCRIPT, start=1):
        num_blocks = -(-num_tokens // BLOCK_SIZE)
        c_start: int | None = None
        p_ids: tuple[int, ...] | None = None
        if event == "arrive":
            c_start = contiguous.allocate(num_blocks)
            if c_start is not None:
                contiguous_runs[seq] = (c_start, num_blocks)
            shape = (NUM_LAYERS, num_tokens, NUM_KV_HEADS, HEAD_DIM)
            k = torch.randn(shape, generator=gen)
            v = torch.randn(shape, generator=gen)
            if store.append(seq, k, v) is not None:
                written[seq] = (k, v)
                p_ids = tuple(store.block_table(seq))
        else:
            if seq in contiguous_runs:
                contiguous.free(*contiguous_runs.pop(seq))
            if store.has_sequence(seq):
                store.free(seq)
                del written[seq]
        steps.append(
            FragmentationStep(
                step=step,
                event=event,
                seq=seq,
                num_tokens=num_tokens,
                num_blocks=num_blocks,
                contiguous_ok=event != "arrive" or c_start is not None,
                contiguous_start=c_start,
                contiguous_free_blocks=contiguous.num_free_blocks,
                contiguous_largest_hole=contiguous.largest_hole,
                paged_ok=event != "arrive" or p_ids is not None,
                paged_block_ids=p_ids,
                paged_free_blocks=store.num_free_blocks,
            )
        )
    c_owner = {start + i: seq for seq, (start, n) in contiguous_runs.items() for i in range(n)}
    p_owner = {b: seq for seq in written for b in store.block_table(seq)}
    exact = True
    for seq, (k, v) in written.items():
        got_k, got_v = store.gather(seq)
        exact = exact and torch.equal(got_k.cpu(), k) and torch.equal(got_v.cpu(), v)
    return FragmentationDemoResult(
        num_blocks=NUM_BLOCKS,
        block_size=BLOCK_SIZE,
        bytes_per_block=store.bytes_per_block,
        steps=tuple(steps),
        contiguous_map=_map(NUM_BLOCKS, c_owner),
        paged_map=_map(NUM_BLOCKS, p_owner),
        paged_gather_exact=exact,
    )


def run_fragmentation_demo(console: Console) -> None:
    """Print the demo: a step table, the final memory maps and a one-line verdict."""
    res = fragmentation_scenario()
    kib = res.bytes_per_block / 1024
    console.print(
        f"KV budget, both allocators: {res.num_blocks} blocks x {res.block_size} tokens = "
        f"{res.num_blocks * kib:g} KiB ({kib:g} KiB per block)"
    )
    table = Table(
        title="contiguous first-fit vs paged, same budget",
        caption="free = free blocks after the step; hole = largest contiguous free run",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("step", "right"),
        ("event", "left"),
        ("tokens", "right"),
        ("blocks", "right"),
        ("contiguous", "left"),
        ("free", "right"),
        ("hole", "right"),
        ("paged", "left"),
        ("free", "right"),
    )
    for name, justify in columns:
        table.add_column(name, justify=justify, no_wrap=True)
    for s in res.steps:
        if s.event == "arrive":
            c_cell = (
                f"[green]{s.contiguous_start}-{s.contiguous_start + s.num_blocks - 1}[/green]"
                if s.contiguous_start is not None
                else "[bold red]FAILED[/bold red]"
            )
            p_cell = (
                f"[green]{','.join(map(str, s.paged_block_ids))}[/green]"
                if s.paged_block_ids is not None
                else "[bold red]FAILED[/bold red]"
            )
            tokens, blocks = str(s.num_tokens), str(s.num_blocks)
            event = f"{s.seq} arrives"
        else:
            c_cell = p_cell = "freed"
            tokens = blocks = "-"
            event = f"{s.seq} finishes"
        table.add_row(
            str(s.step),
            event,
            tokens,
            blocks,
            c_cell,
            str(s.contiguous_free_blocks),
            str(s.contiguous_largest_hole),
            p_cell,
            str(s.paged_free_blocks),
        )
    console.print(table)
    console.print(f"contiguous map: {res.contiguous_map}")
    console.print(f"paged map:      {res.paged_map}")
    last = res.steps[-1]
    before = res.steps[-2]
    c_verdict = (
        f"placed at blocks {last.contiguous_start}-{last.contiguous_start + last.num_blocks - 1}"
        if last.contiguous_start is not None
        else "cannot place it (external fragmentation)"
    )
    p_verdict = (
        f"placed in blocks {list(last.paged_block_ids)}"
        if last.paged_block_ids is not None
        else "cannot place it"
    )
    console.print(
        f"{last.seq} needs {last.num_blocks} blocks; {before.contiguous_free_blocks} are free "
        f"in both allocators.\n"
        f"  contiguous: largest hole {before.contiguous_largest_hole} -> {c_verdict}\n"
        f"  paged:      {p_verdict}\n"
        f"  paged gather() returns exactly the appended K/V: {res.paged_gather_exact}"
    )
