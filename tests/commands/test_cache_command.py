"""``kvsim cache``: grid runs, outputs, exit codes and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kvsim.cli import app

runner = CliRunner()
SMALL = ["--set", "workload.num_requests=150"]


def test_grid_writes_every_output(tmp_path: Path) -> None:
    res = runner.invoke(
        app,
        ["cache", *SMALL, "--policy", "lru,arc", "--capacity", "1%,10%", "--out", str(tmp_path)],
    )
    assert res.exit_code == 0, res.output
    assert "saved" in res.output and "arc" in res.output and "10% (" in res.output
    lines = (tmp_path / "results.csv").read_text().splitlines()
    assert len(lines) == 1 + 4
    header = lines[0].split(",")
    assert header[:2] == ["policy", "capacity"]
    rows = [dict(zip(header, ln.split(","), strict=True)) for ln in lines[1:]]
    assert [(r["policy"], r["capacity"]) for r in rows] == [
        ("lru", "1%"),
        ("lru", "10%"),
        ("arc", "1%"),
        ("arc", "10%"),
    ]
    points = json.loads((tmp_path / "results.json").read_text())["points"]
    assert [p["label"] for p in points] == ["lru_1pct", "lru_10pct", "arc_1pct", "arc_10pct"]
    assert (tmp_path / "points" / "arc_10pct" / "summary.json").is_file()
    meta = json.loads((tmp_path / "run_meta.json").read_text())
    assert meta["seed"] == 0 and len(meta["grid"]) == 4
    plots = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert plots == [
        "hit_ratio_vs_capacity.png",
        "occupancy_arc_10pct.png",
        "occupancy_arc_1pct.png",
        "occupancy_lru_10pct.png",
        "occupancy_lru_1pct.png",
    ]
    lru = {r["capacity"]: float(r["hit_ratio_blocks_hbm"]) for r in rows if r["policy"] == "lru"}
    assert lru["1%"] < lru["10%"]


def test_tiers_workers_router_warmup_options(tmp_path: Path) -> None:
    res = runner.invoke(
        app,
        [
            "cache",
            *SMALL,
            "--tiers",
            "hbm=200,dram=1k,ssd=10%",
            "--workers",
            "3",
            "--router",
            "round_robin",
            "--warmup",
            "0.2",
            "--no-plots",
            "-q",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    assert res.output.strip() == ""
    s = json.loads((tmp_path / "points" / "lru_200" / "summary.json").read_text())
    assert (s["workers"], s["router"], s["num_requests"], s["num_warmup_requests"]) == (
        3,
        "round_robin",
        120,
        30,
    )
    assert (s["capacity_blocks_hbm"], s["capacity_blocks_dram"]) == (200, 1000)
    assert not (tmp_path / "plots").exists()


def test_trace_argument(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    trace.write_text(
        '{"timestamp": 0, "input_length": 1100, "output_length": 5, "hash_ids": [0, 1, 2]}\n'
        '{"timestamp": 10, "input_length": 1100, "output_length": 5, "hash_ids": [0, 1, 3]}\n'
    )
    out = tmp_path / "o"
    res = runner.invoke(app, ["cache", str(trace), "--tiers", "hbm=inf", "-q", "--out", str(out)])
    assert res.exit_code == 0, res.output
    s = json.loads((out / "points" / "lru_inf" / "summary.json").read_text())
    assert (s["num_block_accesses"], s["hit_blocks"], s["block_size"]) == (4, 2, 512)
    assert s["hit_ratio_tokens"] == pytest.approx(1024 / 2200)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--policy", "nope"], "unknown policy 'nope'"),
        (["--capacity", "lots"], "cannot parse capacity"),
        (["--preset", "nope"], "unknown cache preset"),
        (["/no/such/trace.jsonl"], "trace.jsonl"),
        (["--tiers", "hbm"], "--tiers"),
        (["--set", "tiers.0.capacity=0"], "at least 1 block"),
        (["--policy", "lru,lru"], "duplicate"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(args: list[str], needle: str) -> None:
    base = [] if args[0].startswith("/") else SMALL
    res = runner.invoke(app, ["cache", *base, *args, "-q"])
    assert res.exit_code == 2, res.output
    assert needle in res.output
    assert res.output.count("error:") == 1
    assert "Traceback" not in res.output


def test_preset_list() -> None:
    res = runner.invoke(app, ["cache", "--preset", "list"])
    assert res.exit_code == 0
    assert "mooncake-conversation" in res.output


def test_same_seed_gives_identical_outputs(tmp_path: Path) -> None:
    for name in ("a", "b"):
        args = ["cache", *SMALL, "--policy", "lru,belady", "--capacity", "2%,8%", "-q"]
        res = runner.invoke(app, [*args, "--seed", "4", "--out", str(tmp_path / name)])
        assert res.exit_code == 0, res.output
    a, b = tmp_path / "a", tmp_path / "b"
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 3 + 4 + 1 + 4  # results.csv/json, run_meta, points, plots
    for f in files:
        if f.name == "run_meta.json":  # holds wall_time_s
            meta_a, meta_b = (json.loads((d / f).read_text()) for d in (a, b))
            meta_a.pop("wall_time_s"), meta_b.pop("wall_time_s")
            assert meta_a == meta_b
        else:
            assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_calibration_option(tmp_path: Path) -> None:
    res = runner.invoke(
        app,
        ["cache", *SMALL, "--calibration", "h100-llama3-70b", "--no-plots", "-o", str(tmp_path)],
    )
    assert res.exit_code == 0, res.output
    assert "calibration h100-llama3-70b" in res.output
    meta = json.loads((tmp_path / "run_meta.json").read_text())
    assert meta["calibration"]["name"] == "h100-llama3-70b"
    assert meta["config"]["calibration"] == "h100-llama3-70b"
    assert meta["config"]["network"]["rack_uplink_gbytes_per_s"] == 1600
    listing = runner.invoke(app, ["cache", "--calibration", "list"])
    assert listing.exit_code == 0 and "h100-llama3-70b" in listing.output
    bad = runner.invoke(app, ["cache", *SMALL, "--calibration", "h100-nope"])
    assert bad.exit_code == 2
    assert bad.output.strip().splitlines() == [
        "error: calibration: unknown calibration profile 'h100-nope'; known: h100-llama3-70b"
    ]


def test_racks_and_pools_from_the_command_line(tmp_path: Path) -> None:
    args = [
        "cache", *SMALL, "--workers", "4", "--no-plots", "-q", "-o", str(tmp_path),
        "--set", "workers_per_rack=2", "--set", "pool.cross_rack=true",
        "--tiers", "hbm=1%,pool=20%", "--set", "tiers.1.scope=rack",
    ]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "points" / "lru_1pct" / "summary.json").read_text())
    assert summary["num_racks"] == 2
    assert summary["load_skew_racks"] >= 1.0 and summary["load_skew_workers"] >= 1.0
    assert summary["hit_blocks_remote_pool"] >= 0
