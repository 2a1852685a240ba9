"""`load_config(..., calibration=...)`: the profile sits between the config file and --set."""

from __future__ import annotations

import pytest

from kvsim.config.calibration import load_profile
from kvsim.config.loader import load_config
from kvsim.errors import ConfigError


def test_profile_figures_land_in_the_config_and_set_wins() -> None:
    prof = load_profile("h100-llama3-70b")
    eff = prof["time_model"]["compute_efficiency"]
    cfg = load_config(preset="smoke", calibration="h100-llama3-70b")
    assert cfg.calibration == "h100-llama3-70b"
    assert cfg.perf.compute_efficiency == eff
    assert not isinstance(cfg.gpu, str)  # the GPU became an inline, calibrated spec
    bw = prof["hardware"]["hbm_bandwidth_bytes_per_s"]
    assert cfg.gpu.hbm_bandwidth_bytes_per_s == bw
    later = load_config(
        preset="smoke", calibration="h100-llama3-70b", overrides=["perf.compute_efficiency=0.9"]
    )
    assert later.perf.compute_efficiency == 0.9


def test_unknown_profile_is_a_one_line_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown calibration profile 'nope'"):
        load_config(preset="smoke", calibration="nope")


def test_without_a_profile_nothing_changes() -> None:
    assert load_config(preset="smoke").calibration is None
