"""Built-in sweep specs validate; the cache driver runs a small capacity sweep."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest
from sweep_helpers import write_spec

from kvsim.sweep import builtin_sweeps, expand, load_sweep_spec, run_sweep

HAVE_CACHE = importlib.util.find_spec("kvsim.cache") is not None
CACHE_REASON = "kvsim.cache (the `kvsim cache` driver) is not available in this tree"


def test_builtins_are_listed_with_descriptions() -> None:
    names = dict(builtin_sweeps())
    assert {"qps-sweep", "cache-capacity", "policy-x-capacity"} <= set(names)
    assert all(desc for desc in names.values())


@pytest.mark.parametrize("name", [n for n, _ in builtin_sweeps()])
def test_every_builtin_expands(name: str) -> None:
    spec, d = load_sweep_spec(name)
    if spec.driver == "cache" and not HAVE_CACHE:
        pytest.skip(CACHE_REASON)
    points = expand(spec, d)
    expected = 1
    for values in spec.grid.values():
        expected *= len(values)
    assert len(points) == expected * spec.replicates
    assert len({p.key for p in points}) == len(points)


@pytest.mark.skipif(not HAVE_CACHE, reason=CACHE_REASON)
def test_cache_driver_capacity_sweep(tmp_path: Path) -> None:
    f = write_spec(
        tmp_path / "s.yaml",
        {
            "driver": "cache",
            "base": "default",
            "set": {
                "workers": 1,
                "workload.num_requests": 300,
                "outputs.plots": False,
                "tiers": [{"name": "hbm", "capacity": "1%", "policy": "lru"}],
            },
            "grid": {"tiers.0.capacity": ["2%", "20%", "100%"]},
        },
    )
    spec, d = load_sweep_spec(f)
    run = run_sweep(spec, tmp_path / "out", spec_dir=d, workers=1, plots=False)
    df = pd.read_csv(tmp_path / "out" / "results.csv")
    assert list(df["tiers.0.capacity"]) == ["2%", "20%", "100%"]
    assert list(df["status"]) == ["ok"] * 3, df["error"].tolist()
    hits = df["hit_ratio_blocks"].tolist()
    assert hits[0] <= hits[1] <= hits[2]  # LRU is a stack policy: inclusion property
    assert run.num_ran == 3
    assert (tmp_path / "out" / "points" / df["key"][0] / "summary.json").is_file()
