"""The CLI: exit codes, one-line errors, help text."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kvsim.cli import app

runner = CliRunner()


def test_run_smoke_prints_summary_and_writes_outputs(tmp_path: Path) -> None:
    res = runner.invoke(app, ["run", "--preset", "smoke", "--out", str(tmp_path), "--no-plots"])
    assert res.exit_code == 0, res.output
    assert "finished" in res.output
    assert (tmp_path / "summary.json").exists()
    assert not (tmp_path / "plots").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--set", "scheduler.admission=eager"], "scheduler.admission"),
        (["--set", "scheduler.blok_size=8"], "scheduler.blok_size"),
        (["--set", "model=gpt-9"], "model"),
        (["--set", "workload.rate=-1"], "workload.rate"),
        (["--preset", "nope"], "nope"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(args: list[str], needle: str) -> None:
    base = [] if "--preset" in args else ["--preset", "smoke"]
    res = runner.invoke(app, ["run", *base, *args, "--quiet"])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, res.output
    assert lines[0].startswith("error:")
    assert needle in lines[0]
    assert "Traceback" not in res.output


def test_missing_config_file(tmp_path: Path) -> None:
    res = runner.invoke(app, ["run", str(tmp_path / "absent.yaml"), "--quiet"])
    assert res.exit_code == 2
    assert "absent.yaml" in res.output


def test_presets_lists_builtins() -> None:
    res = runner.invoke(app, ["presets"])
    assert res.exit_code == 0
    assert "smoke" in res.output and "default" in res.output
    shown = runner.invoke(app, ["presets", "smoke"])
    assert "workload" in shown.output


def test_trace_stats_and_trace_errors(tmp_path: Path) -> None:
    good = tmp_path / "t.txt"
    good.write_text("# id arrival_ms prompt gen streaming\nr1 0 500 200 0\nr2 1000 400 100 1\n")
    res = runner.invoke(app, ["trace", "stats", str(good), "--format", "whitespace"])
    assert res.exit_code == 0, res.output
    assert "count" in res.output
    bad = tmp_path / "bad.txt"
    bad.write_text("r1 0 500 200 0\nr2 10 abc 100 0\n")
    res = runner.invoke(app, ["trace", "stats", str(bad), "--format", "whitespace"])
    assert res.exit_code == 2
    assert "bad.txt:2" in res.output


def test_help_documents_every_run_option() -> None:
    res = runner.invoke(app, ["run", "--help"])
    assert res.exit_code == 0
    for opt in ("--preset", "--out", "--seed", "--set", "--exact-steps", "--events", "--no-plots"):
        assert opt in res.output
