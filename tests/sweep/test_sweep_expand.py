"""Spec validation and deterministic expansion: grid, zip, random, seeds, keys."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from sweep_helpers import write_spec

from kvsim.errors import ConfigError
from kvsim.sweep.expand import config_key, expand, expand_axes, sample_random
from kvsim.sweep.spec import SweepSpec, load_sweep_spec

SMALL = {"workload.num_requests": 10}


def spec(**kw: object) -> SweepSpec:
    data = {"base": "smoke", "set": SMALL, **kw}
    return SweepSpec.model_validate(data)


def test_grid_2x3_is_cartesian_first_key_outermost() -> None:
    pts = expand(spec(grid={"cluster.num_instances": [1, 2], "workload.rate": [5, 10, 20]}))
    assert [p.index for p in pts] == list(range(6))
    assert [(p.axes["cluster.num_instances"], p.axes["workload.rate"]) for p in pts] == [
        (1, 5),
        (1, 10),
        (1, 20),
        (2, 5),
        (2, 10),
        (2, 20),
    ]
    assert [p.config.cluster.num_instances for p in pts] == [1, 1, 1, 2, 2, 2]
    assert [p.config.workload.rate for p in pts] == [5, 10, 20, 5, 10, 20]
    assert all(p.config.workload.num_requests == 10 for p in pts)
    assert len({p.key for p in pts}) == 6


def test_zip_is_lockstep_and_combines_with_grid() -> None:
    s = spec(
        grid={"workload.rate": [5, 10]},
        zip={"cluster.tensor_parallel": [1, 2, 4], "gpu": ["a100-80gb", "h100", "h200"]},
    )
    axes = expand_axes(s)
    assert axes == [
        {"workload.rate": r, "cluster.tensor_parallel": tp, "gpu": g}
        for r in (5, 10)
        for tp, g in ((1, "a100-80gb"), (2, "h100"), (4, "h200"))
    ]
    pts = expand(s)
    assert [(p.config.cluster.tensor_parallel, p.config.gpu) for p in pts[:3]] == [
        (1, "a100-80gb"),
        (2, "h100"),
        (4, "h200"),
    ]


def test_random_draws_follow_the_documented_order() -> None:
    s = spec(
        seed=7,
        random={
            "n": 3,
            "params": {
                "workload.rate": {"low": 1.0, "high": 100.0, "log": True},
                "scheduler.max_num_seqs": {"low": 8, "high": 64, "integer": True},
                "scheduler.admission": {"choices": ["safe", "lazy"]},
            },
        },
    )
    rng = np.random.default_rng(7)
    expected = []
    for _ in range(3):
        rate = math.exp(rng.uniform(math.log(1.0), math.log(100.0)))
        seqs = int(rng.integers(8, 65))
        adm = ["safe", "lazy"][int(rng.integers(2))]
        expected.append(
            {"workload.rate": rate, "scheduler.max_num_seqs": seqs, "scheduler.admission": adm}
        )
    assert s.random is not None
    assert sample_random(s.random, 7) == expected
    pts = expand(s)
    assert [p.axes for p in pts] == expected
    assert [p.config.scheduler.max_num_seqs for p in pts] == [
        e["scheduler.max_num_seqs"] for e in expected
    ]
    # Same seed -> same points; another seed -> other samples.
    assert [p.key for p in expand(s)] == [p.key for p in pts]
    other = s.model_copy(update={"seed": 8})
    assert [p.axes for p in expand(other)] != expected


def test_replicates_and_seeds_are_innermost() -> None:
    pts = expand(spec(grid={"workload.rate": [5, 10]}, replicates=3))
    assert [(p.axes["workload.rate"], p.seed) for p in pts] == [
        (5, 0),
        (5, 1),
        (5, 2),
        (10, 0),
        (10, 1),
        (10, 2),
    ]
    pts = expand(spec(grid={"workload.rate": [5]}, seeds=[11, 3]))
    assert [p.seed for p in pts] == [11, 3]
    assert [p.config.seed for p in pts] == [11, 3]


def test_key_is_the_hash_of_the_validated_config() -> None:
    a = expand(spec(grid={"workload.rate": [5]}))[0]
    # The same config reached another way (as a fixed override) has the same key.
    b = expand(SweepSpec.model_validate({"base": "smoke", "set": {**SMALL, "workload.rate": 5.0}}))[
        0
    ]
    assert a.key == b.key == config_key("run", a.config.model_dump(mode="json"))
    assert len(a.key) == 16
    c = expand(spec(grid={"workload.rate": [6]}))[0]
    assert c.key != a.key


def test_duplicate_points_are_rejected() -> None:
    with pytest.raises(ConfigError, match="same config"):
        expand(spec(grid={"workload.rate": [5, 5.0]}))


@pytest.mark.parametrize(
    ("data", "path", "words"),
    [
        ({"grid": {"workload.rat": [1, 2]}}, "workload.rat", "unknown key"),
        ({"grid": {"workload.rate": [-1]}}, "workload.rate", "greater than 0"),
        ({"zip": {"workload.rate": [1, 2], "gpu": ["h100"]}}, "zip", "equal lengths"),
        ({"grdi": {"workload.rate": [1]}}, "grdi", "unknown key"),
        ({"grid": {"workload.rate": []}}, "grid.workload.rate", "at least one"),
        ({"grid": {"workload..rate": [1]}}, "grid.workload..rate", "dotted key path"),
        ({"grid": {"gpu": ["h100"]}, "zip": {"gpu": ["h200"]}}, "zip.gpu", "already an axis"),
        (
            {"random": {"n": 2, "params": {"workload.rate": {"low": 5}}}},
            "random.params",
            "both low and high",
        ),
        ({"driver": "nope"}, "driver", "unknown sweep driver"),
        ({"replicates": 0}, "replicates", "greater than or equal to 1"),
    ],
)
def test_bad_spec_is_one_config_error_naming_the_key_path(
    tmp_path: Path, data: dict, path: str, words: str
) -> None:
    f = write_spec(tmp_path / "bad.yaml", {"base": "smoke", **data})
    with pytest.raises(ConfigError) as info:
        sp, d = load_sweep_spec(f)
        expand(sp, d)
    msg = str(info.value)
    assert "\n" not in msg
    assert path in msg and words in msg, msg


def test_base_file_is_relative_to_the_spec(tmp_path: Path) -> None:
    sub = tmp_path / "cfg"
    sub.mkdir()
    (sub / "base.yaml").write_text("workload: {num_requests: 7, rate: 3.0}\n")
    f = write_spec(sub / "s.yaml", {"base": "base.yaml", "grid": {"seed": [1, 2]}})
    sp, d = load_sweep_spec(f)
    pts = expand(sp, d)
    assert [(p.config.workload.num_requests, p.seed) for p in pts] == [(7, 1), (7, 2)]
    missing = write_spec(sub / "m.yaml", {"base": "nothere.yaml"})
    with pytest.raises(ConfigError, match="base: config file not found"):
        sp, d = load_sweep_spec(missing)
        expand(sp, d)
