"""run_sweep: one row per point, resume, failures, crash leftovers, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sweep_helpers import write_spec
from typer.testing import CliRunner

from kvsim.cli import app
from kvsim.sweep import load_sweep_spec, run_sweep
from kvsim.sweep.store import MARKER

RUN_FILES = {
    "summary.json",
    "summary_flat.csv",
    "requests.csv",
    "timeseries.csv",
    "run_meta.json",
    MARKER,
}


def test_grid_2x3_gives_6_rows_with_the_axis_values(tiny_spec: Path, tmp_path: Path) -> None:
    spec, d = load_sweep_spec(tiny_spec)
    seen: list[tuple[int, int, int]] = []
    run = run_sweep(
        spec,
        tmp_path / "out",
        spec_dir=d,
        workers=1,
        on_progress=lambda done, failed, total: seen.append((done, failed, total)),
    )
    df = pd.read_csv(tmp_path / "out" / "results.csv")
    assert list(df["point"]) == [0, 1, 2, 3, 4, 5]
    assert list(df["cluster.num_instances"]) == [1, 1, 1, 2, 2, 2]
    assert list(df["workload.rate"]) == [5.0, 10.0, 40.0] * 2
    assert list(df["status"]) == ["ok"] * 6
    assert list(df["num_requests"]) == [20] * 6
    assert list(df.columns[:7]) == [
        "point",
        "key",
        "cluster.num_instances",
        "workload.rate",
        "seed",
        "status",
        "error",
    ]
    assert "wall_time_s" not in df.columns and "per_instance" not in df.columns
    pq = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert list(pq["key"]) == list(df["key"]) == [p.key for p in run.points]
    assert seen[0] == (0, 0, 6) and seen[-1] == (6, 0, 6) and len(seen) == 7
    for key in df["key"]:
        files = {p.name for p in (tmp_path / "out" / "points" / key).iterdir()}
        assert files == RUN_FILES
        summary = json.loads((tmp_path / "out" / "points" / key / "summary.json").read_text())
        row = df[df["key"] == key].iloc[0]
        assert row["finished"] == summary["finished"]
        assert row["p99_ttft_ms"] == pytest.approx(summary["p99_ttft_ms"], rel=1e-8)
    # Rows carry the same numbers as a direct simulate() of each point's config.
    from kvsim.api import simulate

    direct = simulate(run.points[4].config, plots=False).summary
    assert df.loc[4, "throughput_tokens_per_sec"] == pytest.approx(
        direct["throughput_tokens_per_sec"], rel=1e-8
    )


def test_rerun_skips_finished_points_and_keeps_the_table(tiny_spec: Path, tmp_path: Path) -> None:
    spec, d = load_sweep_spec(tiny_spec)
    out = tmp_path / "out"
    run_sweep(spec, out, spec_dir=d, workers=1)
    before = (out / "results.csv").read_bytes()
    again = run_sweep(spec, out, spec_dir=d, workers=2)
    assert (again.num_ran, again.num_skipped) == (0, 6)
    assert (out / "results.csv").read_bytes() == before
    # A grown spec runs only the new points and appends their rows.
    bigger = spec.model_copy(
        update={"grid": {**spec.grid, "workload.rate": [5.0, 10.0, 40.0, 80.0]}}
    )
    grown = run_sweep(bigger, out, spec_dir=d, workers=1)
    assert (grown.num_ran, grown.num_skipped) == (2, 6)
    df = pd.read_csv(out / "results.csv")
    assert len(df) == 8 and df["key"].is_unique


def test_failed_points_are_recorded_and_retried_only_on_request(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("# id arrival_ms prompt gen streaming\nr1 0 50 5 0\nr2 100 40 4 0\n")
    base = tmp_path / "base.yaml"
    base.write_text("workload: {kind: trace, path: PLACEHOLDER}\noutputs: {plots: false}\n")
    f = write_spec(
        tmp_path / "s.yaml",
        {
            "base": "base.yaml",
            "grid": {"workload.path": [str(good), str(tmp_path / "later.txt")]},
        },
    )
    spec, d = load_sweep_spec(f)
    out = tmp_path / "out"
    run = run_sweep(spec, out, spec_dir=d, workers=1)
    assert run.num_failed == 1
    df = pd.read_csv(out / "results.csv")
    assert list(df["status"]) == ["ok", "failed"]
    assert "later.txt" in df.loc[1, "error"] and "\n" not in df.loc[1, "error"]
    assert pd.isna(df.loc[1, "finished"])
    assert df.loc[0, "finished"] == 2
    (tmp_path / "later.txt").write_text(good.read_text())
    again = run_sweep(spec, out, spec_dir=d, workers=1)
    assert again.num_ran == 0 and list(again.table["status"]) == ["ok", "failed"]
    retried = run_sweep(spec, out, spec_dir=d, workers=1, retry_failed=True)
    assert retried.num_ran == 1 and list(retried.table["status"]) == ["ok", "ok"]
    assert not [p for p in (out / "points").iterdir() if p.name.startswith(".")]


def test_leftovers_of_a_killed_run_are_removed_and_rerun(tiny_spec: Path, tmp_path: Path) -> None:
    spec, d = load_sweep_spec(tiny_spec)
    out = tmp_path / "out"
    run = run_sweep(spec, out, spec_dir=d, workers=1)
    key = run.points[2].key
    # Simulate a kill between staging and rename, and one inside an atomic table write.
    (out / "points" / key).rename(out / "points" / f".staging-{key}-999")
    (out / ".results.csv.999.0.tmp").write_text("half")
    again = run_sweep(spec, out, spec_dir=d, workers=1)
    assert again.num_ran == 1
    assert sorted(p.name for p in (out / "points").iterdir()) == sorted(p.key for p in run.points)
    assert not list(out.glob(".*.tmp"))
    assert len(pd.read_csv(out / "results.csv")) == 6


def test_plots_are_written_and_deterministic(tiny_spec: Path, tmp_path: Path) -> None:
    spec, d = load_sweep_spec(tiny_spec)
    a = run_sweep(spec, tmp_path / "a", spec_dir=d, workers=1)
    b = run_sweep(spec, tmp_path / "b", spec_dir=d, workers=1)
    names = sorted(p.name for p in a.plots)
    assert names == sorted(p.name for p in b.plots)
    assert len(names) == 3  # three default metrics vs num_instances, by rate
    for pa in a.plots:
        data = pa.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert data == (tmp_path / "b" / "plots" / pa.name).read_bytes()


def test_cli_sweep_runs_a_spec_and_lists_builtins(tiny_spec: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(
        app, ["sweep", str(tiny_spec), "--out", str(tmp_path / "o"), "--workers", "1", "--no-plots"]
    )
    assert res.exit_code == 0, res.output
    assert "6 points: 6 run now, 0 already done, 0 failed" in res.output
    assert not (tmp_path / "o" / "plots").exists()
    listed = runner.invoke(app, ["sweep", "--list"])
    assert listed.exit_code == 0 and "qps-sweep" in listed.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["nope-sweep"], "nope-sweep"),
        (["BAD"], "workload.rate: input should be greater than 0"),
        (["BAD", "--backend", "slurm"], "backend"),
        (["BAD", "--workers", "0"], "workers"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    bad = write_spec(tmp_path / "bad.yaml", {"base": "smoke", "grid": {"workload.rate": [0]}})
    if "--backend" in args or "--workers" in args:
        bad = write_spec(
            tmp_path / "bad.yaml", {"base": "smoke", "set": {"workload.num_requests": 5}}
        )
    args = [str(bad) if a == "BAD" else a for a in args]
    res = CliRunner().invoke(app, ["sweep", *args, "--out", str(tmp_path / "o"), "-q"])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.output
    assert needle in lines[0]


def test_cli_runs_a_builtin_by_name_with_set(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app,
        [
            "sweep",
            "qps-sweep",
            "--set",
            "workload.num_requests=8",
            "--out",
            str(tmp_path / "o"),
            "--workers",
            "1",
            "--no-plots",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    df = pd.read_csv(tmp_path / "o" / "results.csv")
    assert len(df) == 16 and list(df["num_requests"]) == [8] * 16
    assert list(df["workload.rate"][:4]) == [25, 25, 50, 50]
    clash = CliRunner().invoke(
        app, ["sweep", "qps-sweep", "--set", "workload.rate=3", "--out", str(tmp_path / "p")]
    )
    assert clash.exit_code == 2 and "workload.rate: is a sweep axis" in clash.output
