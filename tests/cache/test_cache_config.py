"""CacheConfig loading: presets, files, --set overrides, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvsim.cache import list_cache_presets, load_cache_config
from kvsim.errors import ConfigError


def test_presets_are_listed_and_load() -> None:
    names = [n for n, _ in list_cache_presets()]
    assert {"default", "mooncake-conversation", "mooncake-synthetic"} <= set(names)
    for name in names:
        cfg = load_cache_config(preset=name)
        assert cfg.tiers[0].name == "hbm"
    assert all(desc for _, desc in list_cache_presets())


def test_overrides_index_the_tier_list_and_do_not_mutate_the_preset() -> None:
    cfg = load_cache_config(
        preset="default", overrides=["tiers.0.capacity=1k", "tiers.1.policy=arc", "workers=3"]
    )
    assert (cfg.tiers[0].capacity, cfg.tiers[1].policy, cfg.workers) == ("1k", "arc", 3)
    again = load_cache_config(preset="default")
    assert (again.tiers[0].capacity, again.tiers[1].policy) == ("5%", "lru")


def test_file_over_preset_and_seed(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("workers: 4\nwrite_policy: selective\nselective: {max_depth: 2}\n")
    cfg = load_cache_config(f, preset="default", seed=9)
    assert (cfg.workers, cfg.write_policy, cfg.selective.max_depth, cfg.seed) == (
        4,
        "selective",
        2,
        9,
    )
    assert cfg.selective.min_hits == 2


@pytest.mark.parametrize(
    ("overrides", "path", "needle"),
    [
        (["tiers.0.policy=lru2"], "tiers[0].policy", "unknown policy 'lru2'"),
        (["tiers.0.capacity=lots"], "tiers[0].capacity", "cannot parse capacity"),
        (["router=random"], "router", "unknown router 'random'"),
        (["warmup_fraction=1.5"], "warmup_fraction", "less than 1"),
        (["bogus=1"], "bogus", "unknown key"),
        (["write_policy=write_through"], "write_policy", "inclusive"),
        (["tiers.5.policy=lru"], "tiers.5", "no list item"),
        (["model=gpt-9"], "model", "unknown model"),
        (["tiers=[{name: hbm}, {name: hbm}]"], "tiers", "duplicate"),
    ],
)
def test_errors_name_the_key(overrides: list[str], path: str, needle: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_cache_config(preset="default", overrides=overrides)
    assert exc.value.path == path
    assert needle in str(exc.value)
    assert "\n" not in str(exc.value)


def test_unknown_tier_name_needs_bandwidths() -> None:
    from kvsim.cache.driver import tier_specs

    cfg = load_cache_config(overrides=["tiers=[{name: hbm}, {name: tape}]"])
    with pytest.raises(ConfigError, match=r"tiers\.tape"):
        tier_specs(cfg, 16, 100)
    cfg = load_cache_config(
        overrides=[
            "tiers=[{name: hbm}, {name: tape, read_bandwidth_bytes_per_s: 1e8,"
            " write_bandwidth_bytes_per_s: 1e8, latency_us: 1e6}]"
        ]
    )
    tape = tier_specs(cfg, 16, 100)[1]
    assert (tape.read_bandwidth_bytes_per_s, tape.latency_s, tape.capacity_blocks) == (
        1e8,
        1.0,
        10,
    )


def test_dram_defaults_to_the_gpu_host_link() -> None:
    from kvsim.cache.driver import tier_specs

    cfg = load_cache_config(preset="default")
    specs = tier_specs(cfg, 16, 1000)
    assert specs[1].read_bandwidth_bytes_per_s == cfg.gpu_spec.pcie_bandwidth_bytes_per_s
    assert [s.capacity_blocks for s in specs] == [50, 200, 500]


def test_a_file_trace_workload_replaces_the_preset_synthetic_one(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("workload: {path: some/trace.jsonl, limit: 20}\n")
    cfg = load_cache_config(f, preset="default")
    assert cfg.workload.kind == "trace"
    assert (cfg.workload.path, cfg.workload.limit) == ("some/trace.jsonl", 20)
