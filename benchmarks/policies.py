"""Time every registered eviction policy on a unit-size Zipf trace (a script, not a test).

    .venv/bin/python benchmarks/policies.py                      # 1M accesses, all policies
    .venv/bin/python benchmarks/policies.py --accesses 200000 --policies lru,arc

Each access is the protocol of :func:`kvsim.kv.policies.simulate_misses` (``in`` test, then
``on_access`` or ``evict``-while-full + ``on_insert``), inlined so the loop itself costs
what a driver's would. ``ops/s`` counts trace accesses. Belady's next-use annotation (one
backward pass) is computed before the clock starts and reported on its own line; trained
policies (``learned``) are fitted on the first 10 % of the trace, untimed. The trace is
deterministic (seeded); only the timing uses the wall clock.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np

from kvsim.kv.policies import annotate_next_use, create_policy, policy_names


def zipf_trace(num_accesses: int, num_keys: int, alpha: float, seed: int) -> list[int]:
    """Seeded Zipf(alpha) keys in ``[0, num_keys)``."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, num_keys + 1) ** alpha
    return rng.choice(num_keys, size=num_accesses, p=weights / weights.sum()).tolist()


def run(
    name: str, trace: Sequence[int], capacity: int, next_use: Sequence[int]
) -> tuple[float, int]:
    """Return (accesses per second, misses) of one replay."""
    policy = create_policy(name, capacity=capacity)
    if policy.needs_training:  # learned: fit on the first 10 % (untimed), replay everything
        warmup = len(trace) // 10
        policy.fit(trace[:warmup], [float(i) for i in range(warmup)])
    on_access, on_insert, evict = policy.on_access, policy.on_insert, policy.evict
    nus = next_use if policy.needs_next_use else [None] * len(trace)
    misses = 0
    start = time.perf_counter()
    for i, key in enumerate(trace):
        if key in policy:
            on_access(key, i, next_use=nus[i])
            continue
        misses += 1
        while policy.used >= capacity:
            evict(key)
        on_insert(key, 1, i, next_use=nus[i])
    return len(trace) / (time.perf_counter() - start), misses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accesses", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--alpha", type=float, default=0.9)
    parser.add_argument("--capacity", type=int, default=10_000)
    parser.add_argument("--policies", default=",".join(policy_names()))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="report the best of N runs")
    args = parser.parse_args()
    trace = zipf_trace(args.accesses, args.keys, args.alpha, args.seed)
    start = time.perf_counter()
    next_use = annotate_next_use(trace)
    annotate_s = time.perf_counter() - start
    print(
        f"Zipf({args.alpha}) trace: {args.accesses:,} accesses over {args.keys:,} keys, "
        f"capacity {args.capacity:,} blocks"
    )
    print(f"best of {args.repeat} runs per policy")
    print(f"{'policy':<10} {'accesses/s':>12} {'ns/access':>10} {'miss ratio':>11}")
    for name in args.policies.split(","):
        runs = [run(name, trace, args.capacity, next_use) for _ in range(args.repeat)]
        rate, misses = max(runs)
        print(f"{name:<10} {rate:>12,.0f} {1e9 / rate:>10,.0f} {misses / len(trace):>11.4f}")
    print(f"annotate_next_use: {len(trace) / annotate_s:,.0f} accesses/s (belady's prerequisite)")


if __name__ == "__main__":
    main()
