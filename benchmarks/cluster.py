"""Cluster scale and PD disaggregation: the 10,240-GPU presets and the Mooncake trace.

Part 1: the ``cluster-10k`` (10,240 H100, one Llama-3-8B replica each, cluster_p2c routing)
and ``pd-10k`` (the same GPUs as 2,560 prefill + 7,680 decode) presets with N synthetic
multi-turn requests (default 1,000,000). Each runs in its own subprocess so that peak RSS is
per preset; printed: wall and CPU seconds of ``kvsim.simulate`` (workload generation, build,
run and summary; no files written), events per request, peak RSS, and headline metrics.
Targets on the 2-core dev machine: each under 5 minutes and 8 GB.

Part 2: the Mooncake FAST'25 conversation trace (``../shared/data/mooncake/
conversation_trace.jsonl``, 12,031 requests over 3,537 s; skipped when absent) through a
16-node cluster of Llama-3.1-70B replicas (TP 8, one per node, 400 GB/s of RDMA per node):
PD 8 prefill + 8 decode (pipelined push, 8 layer chunks) vs the unified baseline on the same
16 replicas. Printed: TTFT / TPOT percentiles, prefix hit ratio, PD transfer figures.

Usage: python benchmarks/cluster.py [--requests N] [--presets cluster-10k,pd-10k]
                                    [--set key=value ...] [--no-mooncake] [--no-scale]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MOONCAKE = Path(__file__).resolve().parents[2] / "shared" / "data" / "mooncake"
LLAMA31_70B = {
    "name": "llama-3.1-70b",
    "num_layers": 80,
    "hidden_size": 8192,
    "num_attention_heads": 64,
    "num_kv_heads": 8,
    "head_dim": 128,
    "num_params": 70.6e9,
    "dtype_bytes": 2,
    "max_model_len": 131072,
    "source": "https://huggingface.co/meta-llama/Llama-3.1-70B (config.json)",
}


def child(preset: str, requests: int, extra: list[str]) -> None:
    """Run one preset and print one JSON line of figures."""
    from kvsim.api import simulate
    from kvsim.config.loader import load_config

    cfg = load_config(preset=preset, overrides=[f"workload.num_requests={requests}", *extra])
    wall0, cpu0 = time.perf_counter(), time.process_time()
    res = simulate(cfg, plots=False)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    s = res.summary
    keys = (
        "finished", "rejected", "num_events", "events_per_request", "active_gpus",
        "gpu_load_max_mean", "gpu_load_cv", "rack_load_max_mean", "rack_load_cv",
        "p50_ttft_ms", "p99_ttft_ms", "p50_tpot_ms", "p99_tpot_ms", "prefix_hit_ratio",
        "throughput_tokens_per_sec", "pd_transfers", "pd_mean_transfer_ms", "pd_decode_waits",
    )  # fmt: skip
    out: dict[str, Any] = {k: s.get(k) for k in keys}
    out.update(
        preset=preset,
        requests=requests,
        wall_s=wall,
        cpu_s=cpu,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
    print(json.dumps(out))


def run_scale(presets: list[str], requests: int, extra: list[str]) -> None:
    print(f"== cluster scale: {requests:,} synthetic multi-turn requests per preset {extra}")
    for preset in presets:
        cmd = [sys.executable, __file__, "--child", preset, "--requests", str(requests)]
        cmd += [f"--set={x}" for x in extra]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(f"{preset}: failed\n{proc.stderr[-2000:]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(
            f"{preset:12s} wall {r['wall_s']:7.1f} s  cpu {r['cpu_s']:7.1f} s  "
            f"events/req {r['events_per_request']:.2f}  peak RSS {r['peak_rss_mb'] / 1024:.2f} GB  "
            f"({r['requests'] / r['cpu_s']:,.0f} req per CPU-s)"
        )
        print(
            f"{'':12s} finished {r['finished']:,}  active GPUs {r['active_gpus']:,}  "
            f"GPU load max/mean {r['gpu_load_max_mean']:.2f} CV {r['gpu_load_cv']:.2f}  "
            f"rack max/mean {r['rack_load_max_mean']:.2f} CV {r['rack_load_cv']:.3f}"
        )
        line = (
            f"{'':12s} TTFT p50/p99 {r['p50_ttft_ms']:.1f}/{r['p99_ttft_ms']:.1f} ms  "
            f"TPOT p50/p99 {r['p50_tpot_ms']:.2f}/{r['p99_tpot_ms']:.2f} ms  "
            f"hit ratio {r['prefix_hit_ratio']:.3f}"
        )
        if r.get("pd_transfers"):
            line += (
                f"  transfers {r['pd_transfers']:,} mean {r['pd_mean_transfer_ms']:.2f} ms"
                f"  decode waits {r['pd_decode_waits']:,}"
            )
        print(line)


def mooncake_config(pd: bool) -> Any:
    from kvsim.config.schema import SimConfig

    return SimConfig.model_validate(
        {
            "model": LLAMA31_70B,
            "gpu": "h100",
            "cluster": {
                "num_instances": 16,
                "tensor_parallel": 8,
                "router": "cluster_p2c",
                "topology": {
                    "gpus_per_node": 1,  # one TP-8 replica per node
                    "nodes_per_rack": 16,
                    "network_gbytes_per_s": 400.0,  # 8 x 400 Gb/s RDMA NICs per node
                },
                "pd": {
                    "enabled": pd,
                    "ratio": "1:1",
                    "placement": "any",
                    "transfer": "push",
                    "pipelined": True,
                    "layer_chunks": 8,
                },
            },
            "scheduler": {"max_num_seqs": 256, "max_num_batched_tokens": 8192},
            "workload": {
                "kind": "trace",
                "path": str(MOONCAKE / "conversation_trace.jsonl"),
                "format": "mooncake",
            },
            "outputs": {"plots": False, "timeseries_dt_s": 10.0},
        }
    )


def run_mooncake() -> None:
    from kvsim.api import simulate

    if not (MOONCAKE / "conversation_trace.jsonl").exists():
        print(f"== mooncake: skipped ({MOONCAKE} absent)")
        return
    print("== Mooncake conversation trace, 16 x (Llama-3.1-70B, TP 8, H100)")
    for pd in (False, True):
        t0 = time.perf_counter()
        s = simulate(mooncake_config(pd), plots=False).summary
        name = "PD 8P+8D" if pd else "unified 16"
        print(
            f"{name:11s} finished {s['finished']:,}/{s['num_requests']:,}  "
            f"TTFT p50/p95/p99 {s['p50_ttft_ms']:.0f}/{s['p95_ttft_ms']:.0f}/"
            f"{s['p99_ttft_ms']:.0f} ms  TPOT p50/p95/p99 {s['p50_tpot_ms']:.1f}/"
            f"{s['p95_tpot_ms']:.1f}/{s['p99_tpot_ms']:.1f} ms  "
            f"hit ratio {s['prefix_hit_ratio']:.3f}  ({time.perf_counter() - t0:.1f} s)"
        )
        if pd:
            print(
                f"{'':11s} transfers {s['pd_transfers']:,}  "
                f"{s['pd_transfer_bytes'] / 1e12:.2f} TB  mean {s['pd_mean_transfer_ms']:.1f} ms"
                f" (first chunk {s['pd_mean_first_chunk_ms']:.1f} ms)  decode waits "
                f"{s['pd_decode_waits']:,}  mean wait {s['pd_mean_wait_ms']:.1f} ms"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--presets", default="cluster-10k,pd-10k")
    ap.add_argument("--no-mooncake", action="store_true")
    ap.add_argument("--no-scale", action="store_true")
    ap.add_argument("--set", action="append", default=[], help="extra override a.b=value")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.requests, args.set)
        return
    if not args.no_scale:
        run_scale(args.presets.split(","), args.requests, args.set)
    if not args.no_mooncake:
        run_mooncake()


if __name__ == "__main__":
    main()
