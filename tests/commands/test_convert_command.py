"""`kvsim convert kv-sim-config`: stdout / -o output, --check, one-line errors."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from kvsim.cli import app
from kvsim.config.convert_kvsim import convert_kvsim_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kvsim_configs"
runner = CliRunner()


def test_prints_yaml_to_stdout() -> None:
    old = FIXTURES / "parser_spelling.txt"
    res = runner.invoke(app, ["convert", "kv-sim-config", str(old), "--trace", "t.txt"])
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("# Converted by `kvsim convert kv-sim-config`")
    assert yaml.safe_load(res.stdout) == convert_kvsim_file(old, trace="t.txt")


def test_writes_file_with_out_option(tmp_path: Path) -> None:
    old = FIXTURES / "readme_spelling.txt"
    target = tmp_path / "new.yaml"
    res = runner.invoke(app, ["convert", "kv-sim-config", str(old), "-o", str(target)])
    assert res.exit_code == 0, res.output
    assert res.stdout == ""
    assert yaml.safe_load(target.read_text()) == convert_kvsim_file(old)
    assert f"wrote {target}" in res.stderr
    assert "no --trace given" in res.stderr


def test_check_validates_against_the_schema() -> None:
    old = FIXTURES / "readme_spelling.txt"
    res = runner.invoke(app, ["convert", "kv-sim-config", str(old), "--check"])
    assert res.exit_code == 0, res.output


def test_unknown_key_is_one_line_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "old.txt"
    bad.write_text("num_gpus 2\n# comment\ngpu 1 vram 10 speed 3\n")
    res = runner.invoke(app, ["convert", "kv-sim-config", str(bad)])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, res.output
    assert lines[0].startswith(f"error: {bad}:3: gpu 1: unknown key 'speed'")


def test_missing_file_exits_2(tmp_path: Path) -> None:
    res = runner.invoke(app, ["convert", "kv-sim-config", str(tmp_path / "none.txt")])
    assert res.exit_code == 2
    assert "config file not found" in res.output


def test_converted_config_runs_end_to_end(tmp_path: Path) -> None:
    target = tmp_path / "new.yaml"
    old, trace = FIXTURES / "readme_spelling.txt", FIXTURES / "trace.txt"
    args = ["convert", "kv-sim-config", str(old), "--trace", str(trace), "-o", str(target)]
    assert runner.invoke(app, args).exit_code == 0
    out = tmp_path / "run"
    res = runner.invoke(app, ["run", str(target), "--out", str(out), "--no-plots", "--quiet"])
    assert res.exit_code == 0, res.output
    summary = yaml.safe_load((out / "summary.json").read_text())  # JSON is YAML
    assert summary["finished"] == 3
    assert sum(g["requests_finished"] for g in summary["per_gpu"]) == 3
    # the stand-in's weights are added to vram_bytes: KV room = the old vram, to one block
    old_vram = 24e9 + 16e9 + 24 * 1024**3
    block = 16 * 4096
    assert old_vram - 3 * block < summary["kv_capacity_bytes"] <= old_vram
