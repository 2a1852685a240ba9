"""Calibration profiles: loading, validation (unknown keys name their path), overlay rules."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from kvsim.cache.config import load_cache_config
from kvsim.config.calibration import apply_calibration, list_profiles, load_profile
from kvsim.config.loader import validate_config
from kvsim.errors import ConfigError

PROFILE: dict[str, Any] = {
    "name": "lab",
    "hardware": {
        "gpu": "h100",
        "hbm_bandwidth_bytes_per_s": 3.0e12,
        "pcie_bandwidth_bytes_per_s": 5e10,
    },
    "network": {"network_gbytes_per_s": 40, "cross_rack_latency_us": 25},
    "time_model": {"compute_efficiency": 0.45},
    "cache": {"tiers": {"dram": {"latency_us": 7}, "pool": {"read_bandwidth_bytes_per_s": 1e10}}},
}


def test_shipped_profile_is_listed_and_valid() -> None:
    names = [n for n, _ in list_profiles()]
    assert "h100-llama3-70b" in names
    prof = load_profile("h100-llama3-70b")
    assert prof["hardware"]["hbm_bandwidth_bytes_per_s"] == 3.35e12
    assert prof["network"]["cross_rack_latency_us"] == 15
    cfg = validate_config(apply_calibration({"model": "llama-3-70b"}, "h100-llama3-70b"))
    assert cfg.perf.memory_efficiency == 0.7
    assert (
        cfg.cluster.topology is not None and cfg.cluster.topology.rack_uplink_gbytes_per_s == 1600
    )


def test_run_overlay_goes_where_documented() -> None:
    raw = {
        "gpu": "a100-80gb",
        "perf": {"iteration_overhead_ms": 3.0},
        "cluster": {
            "instances": [{"gpu": "H100", "count": 2}, {"gpu": "a100-80gb"}],
            "topology": {"gpus_per_node": 4, "network_latency_us": 8},
        },
    }
    before = copy.deepcopy(raw)
    out = apply_calibration(raw, PROFILE)
    assert raw == before  # inputs untouched
    gpu = out["gpu"]
    assert gpu["name"] == "h100@lab"  # the profile's base GPU, overlaid
    assert (gpu["hbm_bandwidth_bytes_per_s"], gpu["pcie_bandwidth_bytes_per_s"]) == (3.0e12, 5e10)
    assert gpu["bf16_flops"] == 989.5e12  # untouched field from the catalog
    insts = out["cluster"]["instances"]
    assert insts[0]["gpu"] == gpu and insts[0]["count"] == 2  # named the base GPU
    assert insts[1] == {"gpu": "a100-80gb"}  # another GPU: unchanged
    assert out["cluster"]["topology"] == {
        "gpus_per_node": 4,
        "network_latency_us": 8,
        "network_gbytes_per_s": 40,
        "cross_rack_latency_us": 25,
    }
    assert out["perf"] == {"iteration_overhead_ms": 3.0, "compute_efficiency": 0.45}
    assert apply_calibration(out, PROFILE) == out  # idempotent
    cfg = validate_config(out)
    assert cfg.perf.compute_efficiency == 0.45


@pytest.mark.parametrize(
    ("profile", "path"),
    [
        ({"hardwre": {}}, "calibration.hardwre"),
        ({"hardware": {"hbm_bw": 1}}, "calibration.hardware.hbm_bw"),
        ({"hardware": {"name": "x"}}, "calibration.hardware.name"),
        ({"network": {"links": []}}, "calibration.network.links"),
        ({"network": {"nvlink_gbps": 1}}, "calibration.network.nvlink_gbps"),
        ({"network": {"network_gbytes_per_s": -1}}, "calibration.network.network_gbytes_per_s"),
        ({"time_model": {"efficiency": 1}}, "calibration.time_model.efficiency"),
        ({"time_model": {"compute_efficiency": 2}}, "calibration.time_model.compute_efficiency"),
        ({"cache": {"pool": {}}}, "calibration.cache.pool"),
        ({"cache": {"tiers": {"ssd": {"capacity": 1}}}}, "calibration.cache.tiers.ssd.capacity"),
        ({"hardware": {"gpu": "h1000"}}, "calibration.hardware.gpu"),
        ({"hardware": {"hbm_bytes": 0}}, "calibration.hardware.hbm_bytes"),
    ],
)
def test_bad_profiles_name_the_key_path(profile: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as info:
        apply_calibration({}, profile)
    assert info.value.path == path


def test_profile_from_file_and_unknown_names(tmp_path: Path) -> None:
    f = tmp_path / "mine.yaml"
    f.write_text("time_model: {iteration_overhead_ms: 0.5}\nnetwork: {jitter_cv: 0.1}\n")
    out = apply_calibration({}, str(f), target="cache")
    assert out == {"perf": {"iteration_overhead_ms": 0.5}, "network": {"jitter_cv": 0.1}}
    assert load_profile(f) == {
        "time_model": {"iteration_overhead_ms": 0.5},
        "network": {"jitter_cv": 0.1},
    }
    with pytest.raises(ConfigError, match="unknown calibration profile 'nope'; known: h100"):
        load_profile("nope")
    with pytest.raises(ConfigError, match="not found"):
        load_profile(str(tmp_path / "missing" / "x.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("network: {cross_rack: 1}\n")
    with pytest.raises(ConfigError) as info:
        load_profile(bad)
    assert info.value.path == "calibration.network.cross_rack"


def test_cache_config_layering() -> None:
    cfg = load_cache_config(preset="default", calibration="h100-llama3-70b")
    tiers = {t.name: t for t in cfg.tiers}
    assert (tiers["dram"].read_bandwidth_bytes_per_s, tiers["dram"].latency_us) == (55e9, 5)
    assert tiers["hbm"].read_bandwidth_bytes_per_s is None  # no figures for hbm in the profile
    assert cfg.network.rack_uplink_gbytes_per_s == 1600
    assert cfg.gpu_spec.pcie_bandwidth_bytes_per_s == 55e9
    assert cfg.calibration == "h100-llama3-70b"
    # --set wins over the profile
    cfg2 = load_cache_config(
        preset="default", calibration="h100-llama3-70b", overrides=["perf.memory_efficiency=0.9"]
    )
    assert (cfg2.perf.memory_efficiency, cfg2.perf.compute_efficiency) == (0.9, 0.5)
    # default tiers are filled in before the overlay
    cfg3 = load_cache_config(calibration="h100-llama3-70b")
    assert [(t.name, t.latency_us) for t in cfg3.tiers] == [("hbm", None), ("dram", 5)]
    with pytest.raises(ConfigError) as info:
        load_cache_config(preset="default", overrides=["calibration=h100-llama3-70b"])
    assert info.value.path == "calibration"
