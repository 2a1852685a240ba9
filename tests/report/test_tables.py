"""Tests of kvsim.report.tables: exact human formats and the rich table."""

from __future__ import annotations

import math

from rich.console import Console

from kvsim.report.tables import fmt_gib, render_summary, summary_rows

GIB = 1 << 30

SUMMARY = {
    "finished": 12345,
    "rejected": 7,
    "completion_rate": 0.98765,
    "reject_rate": 0.01235,  # not a headline metric: ignored
    "throughput_tokens_per_sec": 1234.56,
    "p50_ttft_ms": 12.3456,
    "p99_ttft_ms": 1234.5,
    "p50_tpot_ms": 8.0,
    "p99_tpot_ms": 21.005,
    "p50_latency_ms": 1500.0,
    "p99_latency_ms": 98765.4321,
    "peak_kv_bytes": 1.5 * GIB,
    "preemptions": 0,
    "prefix_hit_ratio": 0.5,
    "makespan_s": 12.3456,
    "num_events": 1_000_000,
    "events_per_request": 3.14159,
}


def test_summary_rows_exact_strings() -> None:
    assert summary_rows(SUMMARY) == [
        ("finished", "12,345"),
        ("rejected", "7"),
        ("completion rate", "98.77%"),
        ("throughput", "1,234.6 tok/s"),
        ("TTFT p50", "12.35 ms"),
        ("TTFT p99", "1,234.50 ms"),
        ("TPOT p50", "8.00 ms"),
        ("TPOT p99", "21.00 ms"),
        ("latency p50", "1,500.00 ms"),
        ("latency p99", "98,765.43 ms"),
        ("peak KV memory", "1.50 GiB"),
        ("preemptions", "0"),
        ("prefix hit ratio", "50.00%"),
        ("makespan", "12.346 s"),
        ("events", "1,000,000"),
        ("events per request", "3.14"),
    ]


def test_gib_formatting() -> None:
    assert fmt_gib(GIB) == "1.00 GiB"
    assert fmt_gib(80 * GIB) == "80.00 GiB"
    assert fmt_gib(0) == "0.00 GiB"
    assert fmt_gib(512 * 1024 * 1024) == "0.50 GiB"
    assert fmt_gib(1536 * GIB) == "1,536.00 GiB"
    assert fmt_gib(10**9) == "0.93 GiB"  # GiB, not GB


def test_missing_keys_skipped_and_bad_values_na() -> None:
    rows = summary_rows(
        {"finished": 3.0, "p99_ttft_ms": None, "peak_kv_bytes": math.nan, "other": 1}
    )
    assert rows == [("finished", "3"), ("TTFT p99", "n/a"), ("peak KV memory", "n/a")]
    assert summary_rows({}) == []


def test_render_summary_prints_table() -> None:
    console = Console(record=True, width=80, color_system=None)
    render_summary(SUMMARY, console, title="run: default")
    text = console.export_text()
    assert "run: default" in text
    assert "peak KV memory" in text and "1.50 GiB" in text
    assert "12,345" in text and "98.77%" in text
