"""Capacity search: bisection, SLO checks, costs, cheapest config per target, outputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sweep_helpers import write_spec
from typer.testing import CliRunner

from kvsim.cli import app
from kvsim.config.loader import load_config
from kvsim.errors import ConfigError
from kvsim.sweep.plots import pareto_front
from kvsim.sweep.search import (
    SloSpec,
    bisect_max,
    cheapest_per_target,
    cluster_cost,
    load_search_spec,
    run_search,
    slo_ok,
)


@settings(max_examples=200, deadline=None)
@given(
    low=st.floats(0.1, 50.0),
    span=st.floats(1.0, 1000.0),
    frac=st.floats(0.0, 1.0),
    tol=st.floats(0.01, 10.0),
)
def test_bisection_brackets_a_monotone_threshold(
    low: float, span: float, frac: float, tol: float
) -> None:
    high = low + span
    threshold = low + frac * span
    res = bisect_max(lambda r: r <= threshold, low, high, tol)
    if threshold >= high:
        assert (res.status, res.max_rate) == ("above_range", high)
        return
    assert res.status == "ok"
    assert res.upper is not None
    assert res.max_rate <= threshold < res.upper
    assert res.upper - res.max_rate <= tol
    # 2 end probes + ceil(log2(span / tol)) halvings (+1 for float rounding of hi - lo)
    assert len(res.probes) <= 3 + max(0, math.ceil(math.log2(span / tol)))
    assert all(ok == (r <= threshold) for r, ok in res.probes)


def test_bisection_edges() -> None:
    res = bisect_max(lambda r: False, 1.0, 10.0, 0.5)
    assert (res.status, res.max_rate, res.probes) == ("infeasible", 0.0, [(1.0, False)])
    res = bisect_max(lambda r: r < 37.3, 0.0 + 1.0, 101.0, 1.0)
    # Probes: 1 ok, 101 no, then midpoints 51, 26, 38.5, 32.25, 35.375, 36.9375, 37.71875
    assert [r for r, _ in res.probes] == [
        1.0,
        101.0,
        51.0,
        26.0,
        38.5,
        32.25,
        35.375,
        36.9375,
        37.71875,
    ]
    assert (res.max_rate, res.upper) == (36.9375, 37.71875)


def test_slo_ok_is_strict_below_max_and_inclusive_min() -> None:
    slos = [SloSpec(metric="p99_ttft_ms", max=100.0), SloSpec(metric="completion_rate", min=1.0)]
    assert slo_ok({"p99_ttft_ms": 99.9, "completion_rate": 1.0}, slos)
    assert not slo_ok({"p99_ttft_ms": 100.0, "completion_rate": 1.0}, slos)
    assert not slo_ok({"p99_ttft_ms": 50.0, "completion_rate": 0.99}, slos)
    assert not slo_ok({"p99_ttft_ms": None, "completion_rate": 1.0}, slos)
    assert not slo_ok({"completion_rate": 1.0}, slos)
    with pytest.raises(ValueError, match="exactly one"):
        SloSpec(metric="x", max=1.0, min=0.0)


def test_cluster_cost_uses_catalog_and_overrides() -> None:
    cfg = load_config(
        preset="smoke",
        overrides=["cluster.num_instances=3", "cluster.tensor_parallel=2", "gpu=h100"],
    )
    assert cluster_cost(cfg, {}) == (6, pytest.approx(6 * 2.5), "h100")
    assert cluster_cost(cfg, {"H100": 4.0}) == (6, pytest.approx(24.0), "h100")
    inline = load_config(
        preset="smoke",
        overrides=[
            "gpu={name: mine, hbm_bytes: 8.0e10, hbm_bandwidth_bytes_per_s: 1.0e12, "
            "bf16_flops: 1.0e14, pcie_bandwidth_bytes_per_s: 1.0e10}"
        ],
    )
    with pytest.raises(ConfigError, match=r"costs\.mine"):
        cluster_cost(inline, {})
    assert cluster_cost(inline, {"mine": 1.5})[1] == pytest.approx(1.5)


def test_cheapest_per_target_replicates_configs() -> None:
    rows = [
        {"config": 0, "gpu": "a", "max_rate": 10.0, "num_gpus": 1, "cost_per_hour_usd": 1.0},
        {"config": 1, "gpu": "b", "max_rate": 35.0, "num_gpus": 2, "cost_per_hour_usd": 3.0},
        {"config": 2, "gpu": "c", "max_rate": 0.0, "num_gpus": 1, "cost_per_hour_usd": 0.1},
    ]
    best = cheapest_per_target(rows, [5.0, 30.0, 70.0], ["gpu"])
    # 5 req/s: one 'a' (1.0/h). 30: three 'a' (3.0) ties one 'b' (3.0) -> lowest index.
    # 70: seven 'a' (7.0) vs two 'b' (6.0) -> 'b'.
    assert [(b["config"], b["replicas"], b["cost_per_hour_usd"]) for b in best] == [
        (0, 1, 1.0),
        (0, 3, 3.0),
        (1, 2, 6.0),
    ]
    assert best[2]["num_gpus"] == 4 and best[2]["axes"] == {"gpu": "b"}
    assert cheapest_per_target([rows[2]], [1.0], ["gpu"]) == [{"target_rate": 1.0, "config": None}]


def test_pareto_front() -> None:
    cost = [1.0, 2.0, 2.0, 3.0, 0.5, 4.0]
    rate = [10.0, 30.0, 20.0, 25.0, 2.0, 31.0]
    assert pareto_front(cost, rate) == [4, 0, 1, 5]


KNEE_SET = {
    "workload.num_requests": 40,
    "workload.arrival": "constant",
    "workload.prompt": {"dist": "fixed", "value": 512},
    "workload.output": {"dist": "fixed", "value": 32},
    "scheduler.max_num_seqs": 8,
}


def test_search_finds_the_knee_found_by_a_dense_scan(tmp_path: Path) -> None:
    from kvsim.api import simulate

    overrides = [f"{k}={json.dumps(v)}" for k, v in KNEE_SET.items()]

    def ttft(rate: float) -> float:
        cfg = load_config(preset="smoke", overrides=[*overrides, f"workload.rate={rate}"])
        return float(simulate(cfg, plots=False).summary["p99_ttft_ms"])

    scan = np.arange(20.0, 40.0, 0.25)
    ok = [ttft(r) < 100.0 for r in scan]
    assert ok[0] and not ok[-1]
    first_bad = int(np.argmin(ok))
    assert not any(ok[first_bad:]), "feasibility is not monotone on this case"
    knee_lo, knee_hi = scan[first_bad - 1], scan[first_bad]  # known: threshold in (lo, hi]
    f = write_spec(
        tmp_path / "search.yaml",
        {
            "base": "smoke",
            "set": KNEE_SET,
            "rate": {"low": 5.0, "high": 200.0, "tolerance": 0.5},
            "slos": [{"metric": "p99_ttft_ms", "max": 100.0}],
            "targets": [100.0],
        },
    )
    spec, d = load_search_spec(f)
    res = run_search(spec, tmp_path / "out", spec_dir=d, workers=1)
    row = res.rows[0]
    assert row["status"] == "ok"
    assert knee_lo - 0.5 <= row["max_rate"] < knee_hi
    assert row["upper_rate"] - row["max_rate"] <= 0.5
    assert row["p99_ttft_ms_at_max"] < 100.0
    replicas = math.ceil(100.0 / row["max_rate"])
    assert res.cheapest[0]["replicas"] == replicas
    assert res.cheapest[0]["cost_per_hour_usd"] == pytest.approx(replicas * 2.5)


def test_search_cli_writes_csv_json_and_pareto(tmp_path: Path) -> None:
    f = write_spec(
        tmp_path / "search.yaml",
        {
            "base": "smoke",
            "set": {**KNEE_SET, "workload.num_requests": 20},
            "grid": {"gpu": ["h100", "a100-80gb"], "cluster.num_instances": [1, 2]},
            "rate": {"low": 5.0, "high": 400.0, "tolerance": 20.0},
            "slos": [
                {"metric": "p99_ttft_ms", "max": 200.0},
                {"metric": "completion_rate", "min": 1.0},
            ],
            "costs": {"a100-80gb": 1.0},
            "targets": [50.0],
        },
    )
    res = CliRunner().invoke(
        app, ["search", str(f), "--out", str(tmp_path / "o"), "--workers", "2"]
    )
    assert res.exit_code == 0, res.output
    assert "target 50 req/s" in res.output
    df = pd.read_csv(tmp_path / "o" / "search.csv")
    assert list(df["gpu"]) == ["h100", "h100", "a100-80gb", "a100-80gb"]
    assert list(df["num_gpus"]) == [1, 2, 1, 2]
    assert list(df["cost_per_hour_usd"]) == [2.5, 5.0, 1.0, 2.0]
    doc = json.loads((tmp_path / "o" / "search.json").read_text())
    assert len(doc["configs"]) == 4 and doc["cheapest"][0]["target_rate"] == 50.0
    assert all(len(c["probes"]) == c["num_probes"] for c in doc["configs"])
    assert (tmp_path / "o" / "plots" / "pareto.png").read_bytes()[:4] == b"\x89PNG"


def test_search_bad_spec_is_one_line(tmp_path: Path) -> None:
    f = write_spec(
        tmp_path / "s.yaml",
        {
            "base": "smoke",
            "rate": {"low": 10, "high": 5},
            "slos": [{"metric": "p99_ttft_ms", "max": 1}],
        },
    )
    res = CliRunner().invoke(app, ["search", str(f), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert res.output.strip().startswith("error: rate")
    assert len(res.output.strip().splitlines()) == 1
