"""Fixtures of the sweep tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from sweep_helpers import write_spec


@pytest.fixture
def tiny_spec(tmp_path: Path) -> Path:
    """A 2 x 3 grid on the smoke preset with 20 requests per point."""
    return write_spec(
        tmp_path / "grid.yaml",
        {
            "name": "tiny",
            "base": "smoke",
            "set": {"workload.num_requests": 20, "outputs.plots": False},
            "grid": {"cluster.num_instances": [1, 2], "workload.rate": [5.0, 10.0, 40.0]},
        },
    )
