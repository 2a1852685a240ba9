"""Capacity strings: every unit, resolution to blocks, one-line errors."""

from __future__ import annotations

import pytest

from kvsim.errors import ConfigError
from kvsim.kv.tiers import parse_capacity


@pytest.mark.parametrize(
    ("text", "unit", "value"),
    [
        ("5000", "blocks", 5000.0),
        (5000, "blocks", 5000.0),
        ("1k", "blocks", 1000.0),
        ("2.5M", "blocks", 2_500_000.0),
        ("10k blocks", "blocks", 10_000.0),
        ("40GiB", "bytes", 40 * 2.0**30),
        ("500MB", "bytes", 500e6),
        ("100ktok", "tokens", 100_000.0),
        ("2048 tokens", "tokens", 2048.0),
        ("10%", "fraction", 0.1),
        ("inf", "inf", float("inf")),
    ],
)
def test_parse_every_unit(text: str | int, unit: str, value: float) -> None:
    cap = parse_capacity(text)
    assert cap.unit == unit
    assert cap.value == value


def test_resolution_to_blocks() -> None:
    kw = {"block_size": 16, "kv_bytes_per_token": 512.0, "unique_blocks": 1234}
    # one block = 16 * 512 = 8192 bytes
    assert parse_capacity("1MiB").to_blocks(**kw) == 128
    assert parse_capacity("1000tok").to_blocks(**kw) == 62
    assert parse_capacity("10%").to_blocks(**kw) == 123
    assert parse_capacity("inf").to_blocks(**kw) == 1234
    assert parse_capacity("2.5k").to_blocks(**kw) == 2500


@pytest.mark.parametrize("text", ["ten", "-5", "5 parsecs", "", "150%", True])
def test_bad_capacity_is_a_config_error(text: object) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_capacity(text, "tiers[0].capacity")  # type: ignore[arg-type]
    assert str(exc.value).startswith("tiers[0].capacity:")


def test_capacity_below_one_block_is_an_error() -> None:
    with pytest.raises(ConfigError, match="resolves to 0 blocks"):
        parse_capacity("1%").to_blocks(block_size=16, kv_bytes_per_token=2.0, unique_blocks=50)
