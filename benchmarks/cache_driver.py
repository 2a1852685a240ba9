"""Time the full ``kvsim cache`` driver on the Mooncake conversation trace (a script, not a test).

    .venv/bin/python benchmarks/cache_driver.py
    .venv/bin/python benchmarks/cache_driver.py --policy arc --workers 4 --repeat 3
    .venv/bin/python benchmarks/cache_driver.py --trace PATH/TO/synthetic_trace.jsonl

Loads the trace once (timed separately), then runs ``run_cache`` (routing, lookups,
promotions/demotions, inserts, TTFT model, summary; no files) for two stacks:

* ``1 tier``:  HBM 10% of the unique blocks;
* ``3 tiers``: HBM 10% -> DRAM 30% -> SSD 60% (exclusive, write-back);

and prints requests/s and block accesses/s (looked-up prompt blocks per second of driver
time), best of ``--repeat`` runs. Deterministic work; only the timing uses the wall clock.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from kvsim.cache import load_cache_config, run_cache
from kvsim.cache.driver import load_requests

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TRACE = ROOT.parent / "shared" / "data" / "mooncake" / "conversation_trace.jsonl"
STACKS = {
    "1 tier": "[{name: hbm, capacity: '10%'}]",
    "3 tiers": "[{name: hbm, capacity: '10%'}, {name: dram, capacity: '30%'},"
    " {name: ssd, capacity: '60%'}]",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", type=Path, default=DEFAULT_TRACE)
    parser.add_argument("--policy", default="lru")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not args.trace.is_file():
        raise SystemExit(f"trace not found: {args.trace}")
    base = [
        f"workload={{kind: trace, path: '{args.trace}'}}",
        f"workers={args.workers}",
        "warmup_fraction=0",
        "outputs.plots=false",
    ]
    t0 = time.perf_counter()
    requests = load_requests(load_cache_config(overrides=base))
    load_s = time.perf_counter() - t0
    print(f"{args.trace.name}: {len(requests):,} requests loaded in {load_s:.2f} s")
    for label, tiers in STACKS.items():
        cfg = load_cache_config(overrides=[*base, f"tiers={tiers}"])
        cfg = cfg.model_copy(
            update={"tiers": [t.model_copy(update={"policy": args.policy}) for t in cfg.tiers]}
        )
        best = float("inf")
        summary: dict = {}
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            summary = run_cache(cfg, requests=requests).summary
            best = min(best, time.perf_counter() - t0)
        n_req = summary["num_requests"]
        n_acc = summary["num_block_accesses"]
        print(
            f"{label:8s} {args.policy:6s} workers={args.workers}: {n_req / best:>9,.0f} req/s  "
            f"{n_acc / best:>11,.0f} block accesses/s  ({best:.2f} s; "
            f"hit ratio {summary['hit_ratio_blocks']:.3f}, evictions {summary['evictions']:,})"
        )


if __name__ == "__main__":
    main()
