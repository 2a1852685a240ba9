"""`kvsim trace stats` with the trace options: report table, skipped rows, one-line errors."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from kvsim.cli import app

runner = CliRunner()
FIXTURES = Path(__file__).parents[1] / "fixtures" / "traces"


def report_rows(output: str) -> dict[str, str]:
    """``{field: value}`` of the load-report table (rich box rows ``│ field │ value │``)."""
    table = output.split("load report", 1)[1]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.split("│") if c.strip()]
        if len(cells) == 2:
            rows[cells[0]] = cells[1]
    return rows


def test_non_strict_prints_report_and_skipped_reasons(tmp_path: Path) -> None:
    path = tmp_path / "w.txt"
    path.write_text("a 0 5 5\nb 1 0 5\nc 2 7 7\n")
    res = runner.invoke(app, ["trace", "stats", str(path), "--no-strict", "--time-unit", "s"])
    assert res.exit_code == 0, res.output
    rows = report_rows(res.output)
    assert (rows["rows_read"], rows["rows_skipped"], rows["num_requests"]) == ("3", "1", "2")
    assert f"skipped: {path}:2: field 'prompt_tokens': must be >= 1, got 0" in res.output
    strict = runner.invoke(app, ["trace", "stats", str(path)])
    assert strict.exit_code == 2
    assert strict.output.strip() == f"error: {path}:2: field 'prompt_tokens': must be >= 1, got 0"


def test_limit_arrival_scale_and_agentic_directory() -> None:
    res = runner.invoke(
        app, ["trace", "stats", str(FIXTURES / "agentic"), "--limit", "3", "--arrival-scale", "2"]
    )
    assert res.exit_code == 0, res.output
    rows = report_rows(res.output)
    assert rows["files_read"] == "2" and rows["num_requests"] == "3"
    assert rows["details.subagents"] == "2" and rows["details.conversations"] == "2"
    assert "format agentic" in res.output


def test_bad_options_are_one_line_errors() -> None:
    burst = str(FIXTURES / "burstgpt.csv")
    res = runner.invoke(app, ["trace", "stats", burst, "--time-unit", "h"])
    assert res.exit_code == 2 and res.output.startswith("error: --time-unit: ")
    res = runner.invoke(app, ["trace", "stats", burst, "--arrival-scale", "0"])
    assert res.exit_code == 2 and res.output.startswith("error: --arrival-scale: ")
    res = runner.invoke(app, ["trace", "stats", burst, "-f", "splitwise"])
    assert res.exit_code == 2 and "field 'ContextTokens': column missing" in res.output
