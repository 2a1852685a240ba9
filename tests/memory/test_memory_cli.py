"""``kvsim memory``: exit codes, one-line errors, outputs, the demo wiring."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kvsim.cli import app

runner = CliRunner()


def test_memory_default_preset_writes_the_run_directory(tmp_path: Path) -> None:
    res = runner.invoke(app, ["memory", "--set", "input.num_steps=200", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "paged_compressed" in res.output
    for name in ("results.csv", "summary.json", "results.txt"):
        assert (tmp_path / name).stat().st_size > 0
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "fragmentation_comparison.png",
        "memory_usage_comparison.png",
        "throughput.png",
        "utilisation_by_strategy.png",
    ]
    assert "kvsim memory study" in (tmp_path / "results.txt").read_text()


def test_memory_config_file_no_plots_and_seed(tmp_path: Path) -> None:
    cfg = tmp_path / "m.yaml"
    cfg.write_text(
        "capacity_tokens: 64\n"
        + "input: {kind: events, num_steps: 50}\n"
        + "allocators: [{kind: paged, block_size: 2}]\n"
    )
    out = tmp_path / "run"
    res = runner.invoke(
        app, ["memory", str(cfg), "--no-plots", "--seed", "3", "--out", str(out), "-q"]
    )
    assert res.exit_code == 0, res.output
    assert res.output.strip() == ""
    assert not (out / "plots").exists()
    assert '"seed": 3' in (out / "summary.json").read_text()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--set", "allocators.0.kind=buddy"], "allocators[0].kind"),
        (["--set", "input.free_probability=2"], "input.free_probability"),
        (["--preset", "nope"], "nope"),
        (["/no/such/file.yaml"], "file.yaml"),
        (["--set", "input={kind: lengths, path: /no/such.csv}"], "/no/such.csv"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(args: list[str], needle: str) -> None:
    res = runner.invoke(app, ["memory", *args, "-q"])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.output
    assert needle in lines[0]


def test_memory_presets_listing() -> None:
    res = runner.invoke(app, ["memory", "presets"])
    assert res.exit_code == 0 and "vllm-fig2" in res.output


def test_demo_without_torch_is_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    res = runner.invoke(app, ["memory", "demo-fragmentation"])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "torch" in lines[0] and lines[0].startswith("error:")


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_demo_runs_with_torch() -> None:
    pytest.importorskip("kvsim.tensor.demo")
    res = runner.invoke(app, ["memory", "demo-fragmentation"])
    assert res.exit_code == 0, res.output
    assert "contiguous" in res.output and "paged" in res.output
