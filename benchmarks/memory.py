"""Time the memory study on a 1M-step alloc/free trace (a script, not a test).

    .venv/bin/python benchmarks/memory.py                       # 1e6 steps, paged
    .venv/bin/python benchmarks/memory.py --kinds all --steps 200000
    .venv/bin/python benchmarks/memory.py --record-every 100

Generates the trace once (mixed sizes 1..32, free probability 1.0 so the pool churns
instead of filling up for good, lifetimes 5..50 steps, 512 slots: some pressure), then
replays it against each allocator with metrics recorded every ``--record-every`` steps, and
prints steps/s per allocator (replay and recording; generation is timed separately).
Deterministic work; only the timing uses the wall clock.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from kvsim.kv.alloc import AllocatorSpec, allocator_kinds, create_allocator
from kvsim.memory.config import EventsInput
from kvsim.memory.inputs import generate_events
from kvsim.memory.replay import replay_events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--kinds", default="paged", help="comma list of kinds, or 'all'")
    parser.add_argument("--slots", type=int, default=512)
    parser.add_argument("--block-size", type=int, default=4)
    parser.add_argument("--record-every", type=int, default=1)
    args = parser.parse_args()
    kinds = allocator_kinds() if args.kinds == "all" else args.kinds.split(",")
    cfg = EventsInput(
        num_steps=args.steps, workload="mixed", free_probability=1.0, lifetime_range=(5, 50)
    )
    t0 = time.perf_counter()
    trace = generate_events(cfg, np.random.default_rng(0))
    gen_s = time.perf_counter() - t0
    print(f"generated {len(trace):,} events in {gen_s:.2f} s ({len(trace) / gen_s:,.0f} steps/s)")
    for kind in kinds:
        spec = AllocatorSpec(kind=kind, block_size=args.block_size, max_len=32)
        alloc = create_allocator(spec, args.slots)
        t0 = time.perf_counter()
        res = replay_events(trace, alloc, args.record_every)
        elapsed = time.perf_counter() - t0
        print(
            f"{kind:17s} {len(trace) / elapsed:>12,.0f} steps/s  ({elapsed:.2f} s; "
            f"failed {alloc.num_failed:,}, peak {alloc.peak_reserved_slots}, "
            f"{len(res.steps):,} rows recorded)"
        )


if __name__ == "__main__":
    main()
