"""Multi-GPU serving throughput: 8 heterogeneous GPUs, 100k Poisson requests.

Cluster: Llama-3-8B on 2 x H100, 2 x H200, 2 x A100-80GB, 2 x MI300X (p2c routing), with
``gpu_memory_utilization`` 0.205 so that KV memory is scarce and uneven (0.34 GB of KV on the
80 GB parts, 12.8 GB on H200, 23 GB on MI300X): memory pressure really happens.
Lognormal lengths (mean prompt 512, output 128 tokens), prefix caching on.

Cases: 40 and 120 req/s, each with ``memory_pressure`` reject and evict. For each: simulated
requests per CPU-second of the engine run (arrival to last completion; workload generation
excluded), events per request, peak RSS of a fresh process, and the headline metrics.
Each case runs in its own subprocess so that peak RSS is per case.

Usage: python benchmarks/multi_gpu.py [--requests N] [--case RATE,POLICY]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

GPUS = ("h100", "h200", "a100-80gb", "mi300x")


def overrides(rate: float, policy: str, requests: int) -> list[str]:
    insts = ", ".join(f"{{gpu: {g}, count: 2}}" for g in GPUS)
    return [
        "model=llama-3-8b",
        f"cluster.instances=[{insts}]",
        "cluster.router=p2c",
        "scheduler.gpu_memory_utilization=0.205",
        f"scheduler.memory_pressure={policy}",
        f"workload.num_requests={requests}",
        f"workload.rate={rate}",
        "workload.prompt.mean=512",
        "workload.output.mean=128",
    ]


def run_case(rate: float, policy: str, requests: int) -> dict[str, float]:
    from kvsim.config.loader import load_config, resolve_gpu, resolve_gpu_name, resolve_model
    from kvsim.serving.cluster import ServingSimulation
    from kvsim.serving.seq import SeqState
    from kvsim.workload.synthetic import generate

    cfg = load_config(overrides=overrides(rate, policy, requests))
    reqs = generate(cfg.workload, np.random.default_rng(cfg.seed))
    sim = ServingSimulation(
        cfg,
        resolve_model(cfg),
        resolve_gpu(cfg),
        reqs,
        resolve_gpu=lambda name: resolve_gpu_name(cfg, name),
    )
    t0 = time.process_time()
    run = sim.run()
    cpu = time.process_time() - t0
    fin = [s for s in run.seqs if s.state is SeqState.FINISHED]
    ttft = np.array([s.first_token_s - s.req.arrival_s for s in fin]) * 1e3
    e2e = np.array([s.finish_s - s.req.arrival_s for s in fin]) * 1e3
    tokens = sum(s.req.output_tokens for s in fin)
    return {
        "cpu_s": cpu,
        "req_per_cpu_s": requests / cpu,
        "events_per_req": run.num_events / requests,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "completion_rate": len(fin) / requests,
        "reject_rate": sum(s.state is SeqState.REJECTED for s in run.seqs) / requests,
        "p50_ttft_ms": float(np.percentile(ttft, 50)),
        "p99_ttft_ms": float(np.percentile(ttft, 99)),
        "p99_latency_ms": float(np.percentile(e2e, 99)),
        "throughput_tok_s": tokens / run.end_s,
        "evictions": run.stats["evictions"],
        "preemptions": sum(i.num_preemptions for i in run.instances),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--case", help="RATE,POLICY: run one case in this process, print JSON")
    args = ap.parse_args()
    if args.case:
        rate, policy = args.case.split(",")
        print(json.dumps(run_case(float(rate), policy, args.requests)))
        return
    head = (
        f"{'rate':>5} {'policy':<7}{'CPU s':>7}{'req/CPU-s':>11}{'ev/req':>7}{'RSS MB':>8}"
        f"{'done':>8}{'rej':>7}{'TTFT p50':>10}{'TTFT p99':>10}{'lat p99':>10}{'tok/s':>9}"
        f"{'evict':>7}{'preempt':>8}"
    )
    print(head)
    for rate in (40, 120):
        for policy in ("reject", "evict"):
            out = subprocess.run(
                [sys.executable, __file__, "--requests", str(args.requests), "--case",
                 f"{rate},{policy}"],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            r = json.loads(out.stdout)
            print(
                f"{rate:>5} {policy:<7}{r['cpu_s']:>7.2f}{r['req_per_cpu_s']:>11,.0f}"
                f"{r['events_per_req']:>7.2f}{r['peak_rss_mb']:>8.0f}"
                f"{r['completion_rate']:>8.2%}{r['reject_rate']:>7.2%}"
                f"{r['p50_ttft_ms']:>10.1f}{r['p99_ttft_ms']:>10.1f}{r['p99_latency_ms']:>10.0f}"
                f"{r['throughput_tok_s']:>9,.0f}{r['evictions']:>7,}{r['preemptions']:>8,}"
            )


if __name__ == "__main__":
    main()
