"""Cluster scale: O(d) routing, load-skew diagnostics, per-GPU timeseries switch, the
10,240-GPU presets on a few requests, and the flattened summary CSV."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from helpers import make_request, run_engine, toy_config
from kvsim.metrics.skew import flatten_summary, skew_stats
from kvsim.serving.routing import create_router
from kvsim.serving.seq import Seq


@dataclass(eq=False)
class FakeInst:
    """A routed instance that counts how often routers read it."""

    index: int
    queued: int = 0
    cached: int = 0
    decode_speed: float = 1.0
    reads: int = 0

    def load(self) -> int:
        self.reads += 1
        return self.queued

    def free_blocks_at(self, now: float) -> int:
        return 0

    def cached_prefix_blocks(self, hashes: Sequence[int], now: float) -> int:
        self.reads += 1
        return min(self.cached, len(hashes))


def _seq(session: int = -1, blocks: int = 0) -> Seq:
    req = make_request(0, 0.0, 16 * max(blocks, 1), 4, hashes=range(blocks), session=session)
    return Seq.from_request(req, list(range(blocks)))


def _draws(seed: int, n: int, k: int) -> list[int]:
    u = np.random.default_rng(seed).random(1024).tolist()
    return [min(int(x * n), n - 1) for x in u[:k]]


def test_power_of_d_matches_a_reference_and_reads_only_d() -> None:
    n, d = 10_240, 3
    insts = [FakeInst(i, queued=(i * 7919) % 13) for i in range(n)]
    router = create_router("power_of_d", {"d": d}, np.random.default_rng(5))
    picks = [router.choose(_seq(), insts, 0.0).index for _ in range(50)]
    u = _draws(5, n, 150)
    expected = []
    for r in range(50):
        cand = u[r * d : r * d + d]
        best = cand[0]
        for c in cand[1:]:
            if insts[c].queued < insts[best].queued:
                best = c
        expected.append(best)
    assert picks == expected
    assert sum(i.reads for i in insts) <= 50 * d  # never a scan over the 10,240 instances


def test_cluster_p2c_session_affinity_and_prefix_score() -> None:
    insts = [FakeInst(i) for i in range(1000)]
    router = create_router("cluster_p2c", {"d": 2}, np.random.default_rng(0))
    first = router.choose(_seq(session=7), insts, 0.0)
    # equal loads, no prefix: the sticky instance is listed first and wins every tie
    assert all(router.choose(_seq(session=7), insts, 0.0) is first for _ in range(20))
    # a heavily loaded sticky instance loses to a draw (load term)
    first.queued = 100
    assert router.choose(_seq(session=7), insts, 0.0) is not first
    # prefix score: a fully cached prompt is worth prefix_weight queued requests
    r2 = create_router("cluster_p2c", {"d": 2, "prefix_weight": 4.0}, np.random.default_rng(1))
    a, b = _draws(1, 1000, 2)
    insts2 = [FakeInst(i, queued=3) for i in range(1000)]
    insts2[a].queued, insts2[a].cached = 6, 8  # 6 - 4 * 8/8 = 2 < 3
    assert a != b
    assert r2.choose(_seq(blocks=8), insts2, 0.0) is insts2[a]
    reads = sum(i.reads for i in insts2)
    assert reads <= 2 * 2  # load + prefix lookup of d candidates only


def test_skew_stats_exact() -> None:
    s = skew_stats([1.0, 1.0, 2.0, 0.0], "gpu_load")
    mean = 1.0
    assert s["gpu_load_max_mean"] == 2.0 / mean
    assert math.isclose(s["gpu_load_cv"], float(np.std([1, 1, 2, 0])) / mean)
    assert s["gpu_load_active"] == 3
    assert skew_stats([0.0, 0.0], "x") == {"x_max_mean": 0.0, "x_cv": 0.0, "x_active": 0}


def test_flatten_summary_dotted_keys() -> None:
    rows = flatten_summary({"a": 1, "per_gpu": [{"busy_ms": 2.0}, {"busy_ms": 3.0}], "w": []})
    assert rows == [("a", 1), ("per_gpu.0.busy_ms", 2.0), ("per_gpu.1.busy_ms", 3.0)]


@pytest.mark.parametrize(
    ("n", "mode", "columns"), [(64, "auto", 64), (65, "auto", 0), (65, "on", 65), (2, "off", 0)]
)
def test_per_gpu_timeseries_switch(n: int, mode: str, columns: int) -> None:
    cfg = toy_config(
        cluster={"num_instances": n, "router": "power_of_d"},
        outputs={"per_gpu_timeseries": mode, "timeseries_dt_s": 0.5},
    )
    run = run_engine(cfg, [make_request(i, i * 0.01, 64, 4) for i in range(10)])
    cols = run.collector.timeseries_columns()
    assert sum(c.startswith("vram_gpu") for c in cols) == columns
    assert all(len(r) == len(cols) for r in run.collector.rows)
    d = run.diagnostics
    assert d["num_instances"] == n and 1 <= d["active_gpus"] <= 10
    assert d["gpu_load_active"] == d["active_gpus"]


def test_arrivals_read_o_d_instances(monkeypatch: pytest.MonkeyPatch) -> None:
    """Per arrival the router reads d + 1 instances at most, whatever the cluster size."""
    from kvsim.serving.instance import Instance

    calls = [0]
    orig = Instance.load

    def counting(self: Instance) -> int:
        calls[0] += 1
        return orig(self)

    monkeypatch.setattr(Instance, "load", counting)
    cfg = toy_config(cluster={"num_instances": 2048, "router": "cluster_p2c"})
    reqs = [make_request(i, i * 0.001, 64, 2) for i in range(100)]
    run = run_engine(cfg, reqs)
    assert sum(s.state.name == "FINISHED" for s in run.seqs) == 100
    assert calls[0] <= 100 * 3


def _preset(name: str, n: int, *extra: str) -> Any:
    from kvsim.config.loader import load_config

    return load_config(preset=name, overrides=[f"workload.num_requests={n}", *extra])


@pytest.mark.parametrize("name", ["cluster-10k", "pd-10k"])
def test_10k_presets_run_small(name: str, tmp_path: Path) -> None:
    from kvsim.api import simulate

    res = simulate(_preset(name, 300), out_dir=tmp_path, plots=False)
    s = res.summary
    assert s["finished"] == 300 and s["num_gpus"] == 10_240 and s["num_racks"] == 160
    assert 1 <= s["active_gpus"] <= 600
    assert s["gpu_load_max_mean"] >= 1.0 and s["rack_load_active"] >= 1
    assert not any(c.startswith("vram_gpu") for c in res.timeseries.columns)
    assert "instance_groups" in res.meta and "instances" not in res.meta
    if name == "pd-10k":
        assert (s["pd_prefill_instances"], s["pd_decode_instances"]) == (2560, 7680)
        assert s["pd_transfers"] == s["handoffs_total"] > 0
        assert s["pd_cross_rack_transfers"] == 0  # every rack has decode room at this load
        groups = res.meta["instance_groups"]
        assert [(g["first_gpu_index"], g["count"], g["pd_role"]) for g in groups[:2]] == [
            (0, 16, "prefill"),
            (16, 48, "decode"),
        ]
        assert len(groups) == 320
    with (tmp_path / "summary_flat.csv").open() as f:
        flat = {row["metric"]: row["value"] for row in csv.DictReader(f)}
    assert flat["finished"] == "300"
    assert "per_gpu.10239.busy_ms" in flat and "gpu_load_cv" in flat


@pytest.mark.parametrize("name", ["dev", "prod-eval"])
def test_small_presets_run(name: str) -> None:
    from kvsim.api import simulate

    res = simulate(_preset(name, 200), plots=False)
    assert res.summary["finished"] + res.summary["rejected"] == 200
    assert res.summary["finished"] > 0
