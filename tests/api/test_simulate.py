"""End-to-end: simulate() on presets, the run directory contract and determinism."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from kvsim.api import simulate
from kvsim.config.loader import load_config

RUN_FILES = ("summary.json", "requests.csv", "timeseries.csv", "run_meta.json")
PLOTS = ("kv_memory.png", "queue_depth.png", "throughput.png", "ttft_cdf.png", "latency_cdf.png")


def smoke(*overrides: str):
    return load_config(preset="smoke", overrides=list(overrides))


def test_run_directory_contract(tmp_path: Path) -> None:
    res = simulate(smoke(), out_dir=tmp_path, events=True)
    for name in RUN_FILES:
        assert (tmp_path / name).is_file(), name
    for name in PLOTS:
        assert (tmp_path / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((tmp_path / "summary.json").read_text())
    for key in (
        "finished",
        "rejected",
        "completion_rate",
        "reject_rate",
        "throughput_tokens_per_sec",
        "p50_ttft_ms",
        "p95_ttft_ms",
        "p99_ttft_ms",
        "p99_tpot_ms",
        "p99_latency_ms",
        "p99_queueing_delay_ms",
        "avg_kv_bytes",
        "peak_kv_bytes",
        "preemptions",
        "prefix_hit_ratio",
        "per_gpu",
        "evictions",
        "handoffs_total",
        "retry_attempts",
        "max_global_queue_depth",
    ):
        assert key in summary, key
    assert summary == json.loads(json.dumps(res.summary))
    n = summary["num_requests"]
    assert summary["finished"] + summary["rejected"] + summary["unfinished"] == n
    req = pd.read_csv(tmp_path / "requests.csv")
    assert len(req) == n
    assert set(req["state"]) <= {"finished", "rejected", "unfinished"}
    fin = req[req["state"] == "finished"]
    # TTFT / TPOT definitions (vLLM benchmark tooling)
    ttft = (fin["first_token_s"] - fin["arrival_s"]) * 1e3
    assert (ttft - fin["ttft_ms"]).abs().max() < 1e-3
    multi = fin[fin["output_tokens"] > 1]
    tpot = (multi["e2e_latency_ms"] - multi["ttft_ms"]) / (multi["output_tokens"] - 1)
    assert (tpot - multi["tpot_ms"]).abs().max() < 1e-3
    # timeseries on the exact dt grid, tokens add up to everything generated
    ts = pd.read_csv(tmp_path / "timeseries.csv")
    dt_ms = res.config.outputs.timeseries_dt_s * 1e3
    assert list(ts["time_ms"]) == pytest.approx([i * dt_ms for i in range(len(ts))])
    assert ts["tokens_generated_delta"].sum() == fin["output_tokens"].sum()
    assert ts["finished_delta"].sum() == summary["finished"]
    # events: one arrival and one terminal event per request, time-ordered
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds.count("arrival") == n
    assert kinds.count("finish") + kinds.count("reject") == n
    times = [e["time_ms"] for e in events]
    assert times == sorted(times)
    meta = json.loads((tmp_path / "run_meta.json").read_text())
    assert meta["seed"] == res.config.seed
    assert meta["num_events"] == summary["num_events"]
    assert meta["time_model"]["kv_bytes_per_token"] == 131072


def _files(d: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(d)): p.read_bytes()
        for p in sorted(d.rglob("*"))
        if p.is_file() and p.name != "run_meta.json"
    }


def test_same_config_and_seed_give_byte_identical_outputs(tmp_path: Path) -> None:
    cfg = load_config(preset="default", overrides=["workload.num_requests=300"])
    simulate(cfg, out_dir=tmp_path / "a", events=True)
    simulate(cfg, out_dir=tmp_path / "b", events=True)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a.keys() == b.keys()
    assert "events.jsonl" in a and "plots/kv_memory.png" in a
    for name in a:
        assert a[name] == b[name], name
    ma = json.loads((tmp_path / "a" / "run_meta.json").read_text())
    mb = json.loads((tmp_path / "b" / "run_meta.json").read_text())
    for wall in ("wall_time_s", "cpu_time_s"):
        ma.pop(wall), mb.pop(wall)
    assert ma == mb


def test_different_seed_changes_the_outcome() -> None:
    a = simulate(smoke(), plots=False)
    b = simulate(smoke("seed=1"), plots=False)
    assert a.summary["p50_ttft_ms"] != b.summary["p50_ttft_ms"]


def test_fast_forward_and_exact_agree_on_a_preset() -> None:
    cfg = load_config(
        preset="default",
        overrides=["workload.num_requests=400", "outputs.timeseries_dt_s=0.25"],
    )
    ff = simulate(cfg, plots=False)
    ex = simulate(cfg, plots=False, exact_steps=True)
    cols = ["first_token_s", "finish_s"]
    pd.testing.assert_frame_equal(ff.requests[cols], ex.requests[cols], rtol=1e-9)
    # the dt-grid samples see the same state in both modes, mid-span included
    pd.testing.assert_frame_equal(ff.timeseries, ex.timeseries)
    assert ff.summary["num_events"] < ex.summary["num_events"]


def test_time_limit_leaves_unfinished_requests() -> None:
    res = simulate(smoke("limits.max_sim_time_s=2.0"), plots=False)
    s = res.summary
    assert s["unfinished"] > 0
    assert s["finished"] + s["rejected"] + s["unfinished"] == s["num_requests"]
    assert res.timeseries["time_ms"].iloc[-1] <= 2000.0


def test_weights_that_do_not_fit_are_a_config_error() -> None:
    from kvsim.errors import ConfigError

    with pytest.raises(ConfigError, match="tensor_parallel"):
        simulate(smoke("model=llama-3-70b"), plots=False)
