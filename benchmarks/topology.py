"""Hierarchical topology at cluster scale: build a 10,240-GPU Topology, answer 1M path queries.

Cluster: 160 racks x 8 nodes x 8 GPUs (the default hierarchy), cross-rack 25 GB/s / 15 us,
a 400 GB/s rack uplink. Prints: build time and the memory the Topology holds (tracemalloc
peak during the build), ``path()`` and ``transfer_time_s()`` queries per second over random
GPU pairs (pairs drawn up front from a seeded Generator), the share of queries per level,
the time of 100k variance factors, and peak RSS of the process.

Usage: python benchmarks/topology.py [--racks 160] [--queries 1000000]
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc
from collections import Counter

import numpy as np

from kvsim.config.topology import TopologyConfig
from kvsim.serving.topology import Topology


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--racks", type=int, default=160)
    ap.add_argument("--queries", type=int, default=1_000_000)
    args = ap.parse_args()
    cfg = TopologyConfig(
        racks=args.racks,
        cross_rack_gbytes_per_s=25,
        cross_rack_latency_us=15,
        rack_uplink_gbytes_per_s=400,
        jitter_cv=0.2,
        tail_probability=0.001,
        tail_multiplier=10,
    )
    tracemalloc.start()
    t0 = time.perf_counter()
    topo = Topology.hierarchical(cfg)
    build_s = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    n = topo.num_gpus
    rng = np.random.default_rng(0)
    src = rng.integers(0, n, args.queries).tolist()
    dst = rng.integers(0, n, args.queries).tolist()
    path = topo.path
    t0 = time.perf_counter()
    kinds = Counter(path(a, b).kind for a, b in zip(src, dst, strict=True))
    path_s = time.perf_counter() - t0
    tt = topo.transfer_time_s
    t0 = time.perf_counter()
    for a, b in zip(src, dst, strict=True):
        tt(a, b, 1e8)
    tt_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    topo.variance.factors(np.random.default_rng(1), 100_000)
    var_s = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"GPUs: {n:,} ({topo.num_racks} racks x {cfg.gpus_per_rack} GPUs), "
          f"resources: {topo.num_links:,}")  # fmt: skip
    print(f"build: {build_s * 1e3:.1f} ms, memory held during build (tracemalloc peak): "
          f"{peak / 2**20:.1f} MiB")  # fmt: skip
    print(f"path(): {args.queries:,} queries in {path_s:.2f} s = "
          f"{args.queries / path_s:,.0f} queries/s")  # fmt: skip
    print(f"transfer_time_s(): {args.queries / tt_s:,.0f} queries/s")
    share = ", ".join(f"{k} {v / args.queries:.2%}" for k, v in sorted(kinds.items()))
    print(f"levels: {share}")
    print(f"100k variance factors: {var_s * 1e3:.1f} ms")
    print(f"peak RSS: {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
