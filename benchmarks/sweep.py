"""Sweep throughput: 64 smoke points with 1 worker, N local workers, and Ray.

    .venv/bin/python benchmarks/sweep.py [--points 64] [--workers 2] [--requests 200]
                                         [--plots] [--no-ray]

Every run writes a fresh sweep directory (nothing is resumed). Ray is started once before
its timed run (``ray.init(num_cpus=workers)``); its start-up time is printed separately.
Prints wall time, points/s and the speed-up over 1 worker for each backend, and checks that
all backends produced the same results table.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from kvsim.sweep import SweepSpec, run_sweep


def make_spec(points: int, requests: int, plots: bool) -> SweepSpec:
    """``points`` smoke runs: rates 5, 10, ... x 4 seeds."""
    seeds = 4 if points % 4 == 0 else 1
    rates = [5.0 * (i + 1) for i in range(points // seeds)]
    return SweepSpec.model_validate(
        {
            "name": "bench",
            "base": "smoke",
            "set": {"workload.num_requests": requests, "outputs.plots": plots},
            "grid": {"workload.rate": rates},
            "seeds": list(range(seeds)),
        }
    )


def timed(spec: SweepSpec, out: Path, **kw: object) -> tuple[float, bytes]:
    plots = bool(spec.set_["outputs.plots"])
    t0 = time.perf_counter()
    run = run_sweep(spec, out, plots=plots, **kw)  # type: ignore[arg-type]
    wall = time.perf_counter() - t0
    assert run.num_ran == len(run.points) and run.num_failed == 0
    return wall, (out / "results.csv").read_bytes()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--requests", type=int, default=200, help="requests per point")
    ap.add_argument("--plots", action="store_true", help="write the per-point PNGs too")
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()
    spec = make_spec(args.points, args.requests, args.plots)
    load0 = os.getloadavg()[0]
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="kvsim-bench-sweep-") as tmp:
        root = Path(tmp)
        serial, table = timed(spec, root / "w1", workers=1)
        rows.append(("local, 1 worker (in-process)", serial))
        wall, t2 = timed(spec, root / "wN", workers=args.workers)
        rows.append((f"local, {args.workers} workers (process pool)", wall))
        assert t2 == table, "local tables differ"
        if not args.no_ray:
            try:
                import ray
            except ImportError:
                print("ray not installed: skipping the Ray run")
            else:
                t0 = time.perf_counter()
                ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
                init_s = time.perf_counter() - t0
                wall, t3 = timed(spec, root / "ray", backend="ray")
                ray.shutdown()
                assert t3 == table, "ray table differs from local"
                rows.append((f"ray, {args.workers} CPUs (start-up {init_s:.1f} s excluded)", wall))
    n = len(spec.grid["workload.rate"]) * len(spec.seeds or [0])
    print(
        f"{n} points of the smoke preset, {args.requests} requests each, "
        f"per-point plots {'on' if args.plots else 'off'}; {os.cpu_count()} cores, "
        f"1-min load average before/after {load0:.2f}/{os.getloadavg()[0]:.2f} "
        "(other processes compete for the cores)"
    )
    print(f"{'backend':<48} {'wall s':>8} {'points/s':>9} {'speed-up':>9}")
    for label, wall in rows:
        print(f"{label:<48} {wall:>8.2f} {n / wall:>9.1f} {serial / wall:>8.2f}x")
    print("results tables identical across backends: yes")


if __name__ == "__main__":
    main()
