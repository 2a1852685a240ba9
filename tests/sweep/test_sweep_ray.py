"""Local and Ray backends give identical results tables and run directories."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sweep_helpers import write_spec

from kvsim.sweep import load_sweep_spec, run_sweep

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_local_and_ray_tables_are_identical(tmp_path: Path, ray_local: None) -> None:
    f = write_spec(
        tmp_path / "s.yaml",
        {
            "base": "smoke",
            "set": {"workload.num_requests": 20, "outputs.plots": False},
            "grid": {"cluster.num_instances": [1, 2]},
            "random": {"n": 2, "params": {"workload.rate": {"low": 2.0, "high": 50.0}}},
            "replicates": 2,
        },
    )
    spec, d = load_sweep_spec(f)
    local = run_sweep(spec, tmp_path / "local", spec_dir=d, backend="local", workers=2)
    viaray = run_sweep(spec, tmp_path / "ray", spec_dir=d, backend="ray")
    assert len(local.table) == 8
    assert (tmp_path / "local" / "results.csv").read_bytes() == (
        tmp_path / "ray" / "results.csv"
    ).read_bytes()
    assert local.table.equals(viaray.table)
    for key in local.table["key"]:
        for name in ("summary.json", "requests.csv", "timeseries.csv"):
            a = (tmp_path / "local" / "points" / key / name).read_bytes()
            assert a == (tmp_path / "ray" / "points" / key / name).read_bytes()
    # Ray resumes like local: nothing left to run.
    again = run_sweep(spec, tmp_path / "ray", spec_dir=d, backend="ray")
    assert again.num_ran == 0 and again.table.equals(viaray.table)


def test_search_on_ray_matches_local(tmp_path: Path, ray_local: None) -> None:
    from kvsim.sweep.search import load_search_spec, run_search

    f = write_spec(
        tmp_path / "q.yaml",
        {
            "base": "smoke",
            "set": {"workload.num_requests": 20},
            "grid": {"cluster.num_instances": [1, 2]},
            "rate": {"low": 5.0, "high": 400.0, "tolerance": 25.0},
            "slos": [{"metric": "p99_ttft_ms", "max": 60.0}],
        },
    )
    spec, d = load_search_spec(f)
    local = run_search(spec, tmp_path / "l", spec_dir=d, workers=1, plots=False)
    viaray = run_search(spec, tmp_path / "r", spec_dir=d, backend="ray", plots=False)
    assert local.rows == viaray.rows
    assert (tmp_path / "l" / "search.csv").read_bytes() == (
        tmp_path / "r" / "search.csv"
    ).read_bytes()
