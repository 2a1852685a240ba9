"""BurstGPT, Splitwise, length tables, ServeGen and generic CSV/JSONL on tiny hand-written
files: exact Requests, the load report, options, detection and file:line:field errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from kvsim.config.workload import TraceWorkload
from kvsim.errors import ConfigError, TraceError
from kvsim.workload.arrivals import arrival_times
from kvsim.workload.hashing import mix64
from kvsim.workload.request import Request
from kvsim.workload.trace_common import TRACE_LOADERS
from kvsim.workload.trace_report import MAX_REASONS, TraceReport
from kvsim.workload.traces import TRACE_FORMATS, detect_format, load_trace, load_trace_with_report

FIXTURES = Path(__file__).parents[1] / "fixtures" / "traces"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


def load(path: Path, seed: int = 0, **kw: object) -> tuple[list[Request], TraceReport]:
    cfg = TraceWorkload.model_validate({"path": str(path), **kw})
    return load_trace_with_report(cfg, np.random.default_rng(seed))


def req(rid: int, t: float, p: int, o: int, **kw: object) -> Request:
    return Request(request_id=rid, arrival_s=t, prompt_tokens=p, output_tokens=o, **kw)  # type: ignore[arg-type]


def stream(stream_id: int, num_blocks: int, size: int = 16) -> tuple[int, ...]:
    """Synthetic hashes of the first ``num_blocks`` blocks of one content stream."""
    return tuple(mix64(stream_id, (i + 1) * size) for i in range(num_blocks))


def test_registry_matches_schema() -> None:
    assert set(TRACE_LOADERS.names()) == set(TRACE_FORMATS)


# --- BurstGPT -------------------------------------------------------------------------------------

BURST = FIXTURES / "burstgpt.csv"
SYN = {"synthetic_hashes": True}


def test_burstgpt_excludes_failed_rows_and_groups_sessions() -> None:
    reqs, report = load(BURST)
    # row 2 (0 response tokens) is a failed request: excluded; ids over the kept rows;
    # sessions s1 -> 0, s2 -> 1; s1's turns share one synthetic stream
    assert reqs == [
        req(0, 5.0, 40, 18, session_id=0, block_hashes=stream(0, 2), **SYN),
        req(1, 9.0, 56, 10, session_id=0, block_hashes=stream(0, 3), **SYN),
        req(2, 9.0, 33, 4, session_id=1, block_hashes=stream(1, 2), **SYN),
    ]
    assert (report.format, report.rows_read, report.rows_excluded) == ("burstgpt", 4, 1)
    assert report.details == {"failed_excluded": 1}
    assert (report.num_requests, report.synthetic_hashes, report.requests_missing_hashes) == (
        3,
        True,
        0,
    )


def test_burstgpt_keep_failed_and_hash_policies() -> None:
    reqs, report = load(BURST, keep_failed=True)
    failed = next(r for r in reqs if r.request_id == 1)
    assert (failed.arrival_s, failed.prompt_tokens, failed.output_tokens) == (7.5, 20, 1)
    assert failed.session_id == -1 and failed.block_hashes == ()  # session-less: no stream
    assert report.details == {"failed_kept": 1} and report.requests_missing_hashes == 1
    every, _ = load(BURST, keep_failed=True, synthetic_hashes="all")
    # session-less rows get their own stream after the 2 sessions: stream 2 + row index 1
    assert next(r for r in every if r.request_id == 1).block_hashes == stream(3, 1)
    none, report_off = load(BURST, synthetic_hashes="off")
    assert all(r.block_hashes == () and not r.synthetic_hashes for r in none)
    assert report_off.requests_missing_hashes == 3 and not report_off.synthetic_hashes


def test_burstgpt_time_unit_limit_and_arrival_scale() -> None:
    reqs, _ = load(BURST, time_unit="ms", limit=2, arrival_scale=4.0)
    # first two after sorting: t = 5 ms and 9 ms (scaled x4); ids renumbered in file order
    assert [(r.request_id, r.arrival_s, r.prompt_tokens) for r in reqs] == [
        (0, 0.02, 40),
        (1, 0.036, 56),
    ]


# --- Splitwise --------------------------------------------------------------------------------

AZURE = (
    "TIMESTAMP,ContextTokens,GeneratedTokens\r\n"
    "2023-11-16 18:17:03.9799600,4808,10\r\n"
    "2023-11-16 18:17:03.0000000,10,1\r\n"
)


def test_splitwise_is_the_azure_layout(tmp_path: Path) -> None:
    path = write(tmp_path, "s.csv", AZURE)
    split, report = load(path, format="splitwise")
    azure, _ = load(path, format="azure")
    assert split == azure == [req(1, 0.0, 10, 1), req(0, 0.97996, 4808, 10)]
    assert report.format == "splitwise" and detect_format(path) == "azure"
    with pytest.raises(
        ConfigError, match=r"workload\.time_unit: format 'splitwise' has no numeric"
    ):
        load(path, format="splitwise", time_unit="ms")


# --- length tables ----------------------------------------------------------------------------

LENGTHS = (
    "num_prefill_tokens,num_decode_tokens,num_total_tokens,pd_ratio\n"
    "40,5,45,8\n10,2,12,5\n33,7,40,4.7\n"
)


def test_lengths_exact(tmp_path: Path) -> None:
    reqs, report = load(write(tmp_path, "l.csv", LENGTHS), rate=4.0)
    times = arrival_times("poisson", 4.0, 3, np.random.default_rng(0)).tolist()
    # every row is its own content stream (0, 1, 2): nothing is shared
    assert reqs == [
        req(0, times[0], 40, 5, block_hashes=stream(0, 2), **SYN),
        req(1, times[1], 10, 2, block_hashes=(), **SYN),
        req(2, times[2], 33, 7, block_hashes=stream(2, 2), **SYN),
    ]
    assert report.format == "lengths" and report.synthetic_hashes
    assert report.requests_missing_hashes == 0  # the 10-token prompt holds no full block


# --- ServeGen --------------------------------------------------------------------------------

SG_TRACE = "0,0.02,1.0,Gamma,2.0,0.5\n100,0,0,,0,0\n200,0.05,2.0,Weibull,0.5,3.0\n"
SG_DATASET = {
    "0": {"input_tokens": "{10: 0.25, 20: 0.75}", "output_tokens": "{0: 0.5, 3: 0.5}"},
    "150": {"input_tokens": "{7: 1.0}", "output_tokens": "{}"},
}


def servegen_reference(seed: int) -> list[tuple[float, int, int]]:
    """The documented rules, written out plainly for this file."""
    rng = np.random.default_rng(seed)
    out: list[tuple[float, int, int]] = []
    for start, length, rate, kind, shape, scale in (
        (0, 100, 0.02, "g", 2.0, 0.5),
        (200, 100, 0.05, "w", 0.5, 3.0),
    ):
        n = math.ceil(rate * length)
        gaps = rng.gamma(shape, scale, n) if kind == "g" else rng.weibull(shape, n) * scale
        gaps = gaps * (length / gaps.sum())
        times = [t for t in (start + np.cumsum(gaps)).tolist() if t < start + length]
        # the dataset window "150" has an empty output distribution, so both windows use "0"
        u_in, u_out = rng.random(len(times)), rng.random(len(times))
        prompts = [10 if u <= 0.25 else 20 for u in u_in]
        outputs = [max(0 if u <= 0.5 else 3, 1) for u in u_out]
        out += list(zip(times, prompts, outputs, strict=True))
    return out


def test_servegen_samples_windows_as_documented(tmp_path: Path) -> None:
    trace = write(tmp_path, "c-trace.csv", SG_TRACE)
    write(tmp_path, "c-dataset.json", json.dumps(SG_DATASET))
    reqs, report = load(trace, seed=5)
    expected = sorted(servegen_reference(5), key=lambda x: x[0])
    assert [(r.arrival_s, r.prompt_tokens, r.output_tokens) for r in reqs] == expected
    # ceil(0.02 * 100) + ceil(0.05 * 100) = 7 gaps; the last gap of a window ends on the window
    # end (up to rounding), which is outside it: here one of the two ends just below
    assert len(reqs) == 6
    assert report.details["windows"] == 3 and report.details["windows_active"] == 2
    assert detect_format(trace) == "servegen" and detect_format(tmp_path) == "servegen"
    again, _ = load(tmp_path, seed=5)  # the directory form: one client, same draws
    assert again == reqs


@pytest.mark.parametrize(
    ("text", "line", "field", "problem"),
    [
        ("0,0.02,1.0,Gamma,2.0,0.5\n100,x,0,,0,0\n", 2, "rate_per_s", "number"),
        ("0,0.02,1.0,Gamma,2.0,0.5\n100,1,0,Pareto,1,1\n", 2, "pattern", "Gamma, Weibull"),
        ("0,0.02,1.0,Gamma,2.0,0.5\n100,1,0\n", 2, None, "expected 6 fields"),
        ("0,0.02,1.0,Gamma,2.0,0.5\n0,1,0,,0,0\n", 2, "window_start_s", "increase"),
    ],
)
def test_servegen_malformed_window(
    tmp_path: Path, text: str, line: int, field: str | None, problem: str
) -> None:
    trace = write(tmp_path, "c-trace.csv", text)
    write(tmp_path, "c-dataset.json", json.dumps(SG_DATASET))
    with pytest.raises(TraceError) as info:
        load(trace, format="servegen")
    assert (info.value.line, info.value.field) == (line, field) and problem in str(info.value)
    _, report = load(trace, format="servegen", strict=False)
    assert report.rows_skipped == 1 and report.rows_read == 2


# --- generic CSV / JSONL ------------------------------------------------------------------------

COLUMNS = {
    "arrival": "ts",
    "prompt_tokens": "in",
    "output_tokens": "out",
    "session_id": "conv",
    "hash_ids": "blocks",
}


def test_generic_csv_exact(tmp_path: Path) -> None:
    text = "ts,in,out,conv,blocks\n1500,40,3,a,1 2\n500,20,2,b,[5]\n2500,48,1,a,1;2;3\n"
    reqs, report = load(write(tmp_path, "g.csv", text), columns=COLUMNS, time_unit="ms")
    assert reqs == [
        req(1, 0.5, 20, 2, session_id=1, block_hashes=(5,)),
        req(0, 1.5, 40, 3, session_id=0, block_hashes=(1, 2)),
        req(2, 2.5, 48, 1, session_id=0, block_hashes=(1, 2, 3)),
    ]
    assert report.format == "generic" and not report.synthetic_hashes


def test_generic_jsonl_with_datetimes_and_defaults(tmp_path: Path) -> None:
    lines = [
        {"when": "2024-01-01 00:00:02", "p": 32},
        {"when": "2024-01-01 00:00:00.5", "p": 16},
    ]
    path = write(tmp_path, "g.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n")
    reqs, report = load(path, columns={"arrival": "when", "prompt_tokens": "p"}, output_tokens=7)
    # arrivals from the earliest date-time; no sessions, no hashes (auto does not invent them)
    assert reqs == [req(1, 0.0, 16, 7), req(0, 1.5, 32, 7)]
    assert report.requests_missing_hashes == 2


def test_generic_without_arrival_is_poisson_and_needs_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "g.csv", "n\n16\n17\n")
    reqs, _ = load(path, format="generic", columns={"prompt_tokens": "n"}, rate=2.0)
    times = arrival_times("poisson", 2.0, 2, np.random.default_rng(0)).tolist()
    assert [r.arrival_s for r in reqs] == times
    with pytest.raises(ConfigError, match=r"workload\.columns: format 'generic' needs a column"):
        load(path, format="generic")


GENERIC_MALFORMED = [
    ("ts,in,out\n1,5,5\n2,,5\n", 3, "in", "missing value"),
    ("ts,in,out\n1,5,5\n-2,5,5\n", 3, "ts", ">= 0"),
    ("ts,in,out\n1,5,5\n2,5,zero\n", 3, "out", "integer"),
    ("ts,in,out\n1,5,5\n2024-01-01 00:00:00,5,5\n", 3, "ts", "other kind"),
    ("ts,in\n1,5\n", 1, "out", "column missing"),
]


@pytest.mark.parametrize(("text", "line", "field", "problem"), GENERIC_MALFORMED)
def test_generic_malformed(tmp_path: Path, text: str, line: int, field: str, problem: str) -> None:
    path = write(tmp_path, "g.csv", text)
    cols = {"arrival": "ts", "prompt_tokens": "in", "output_tokens": "out"}
    with pytest.raises(TraceError) as info:
        load(path, columns=cols)
    assert str(info.value).startswith(f"{path}:{line}: field '{field}': ")
    assert problem in str(info.value)


def test_generic_jsonl_errors_name_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "g.jsonl", '{"p": 16}\n\n{"p": 16.5}\n{"q": 1}\nnot json\n')
    cols = {"prompt_tokens": "p"}
    with pytest.raises(TraceError, match=r"g\.jsonl:3: field 'p': expected a positive integer"):
        load(path, columns=cols)
    reqs, report = load(path, columns=cols, strict=False)
    assert len(reqs) == 1 and report.rows_read == 4 and report.rows_skipped == 3
    assert [r.split(": ", 1)[0] for r in report.skipped_reasons] == [
        f"{path}:{n}" for n in (3, 4, 5)
    ]


# --- strict vs non-strict, reports, detection ----------------------------------------------------


def test_non_strict_skips_and_keeps_the_first_reasons(tmp_path: Path) -> None:
    bad = "".join(f"r{i} {i} 0 1\n" for i in range(MAX_REASONS + 5))
    path = write(tmp_path, "w.txt", "ok 0 5 5\n" + bad + "ok2 9 6 6\n")
    with pytest.raises(TraceError, match=r"w\.txt:2: field 'prompt_tokens'"):
        load(path)
    reqs, report = load(path, strict=False)
    assert [r.prompt_tokens for r in reqs] == [5, 6]
    assert (report.rows_read, report.rows_skipped) == (MAX_REASONS + 7, MAX_REASONS + 5)
    assert len(report.skipped_reasons) == MAX_REASONS
    assert report.skipped_reasons[0] == f"{path}:2: field 'prompt_tokens': must be >= 1, got 0"
    assert report.to_dict()["rows_skipped"] == MAX_REASONS + 5


def test_load_trace_returns_the_same_requests(tmp_path: Path) -> None:
    cfg = TraceWorkload(path=str(BURST))
    assert load_trace(cfg, np.random.default_rng(0)) == load(BURST)[0]


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n", "burstgpt"),
        (LENGTHS, "lengths"),
        ("sequence_id,sequence_length\na,5\n", "seqcsv"),
    ],
)
def test_detect_new_csv_formats(tmp_path: Path, text: str, fmt: str) -> None:
    assert detect_format(write(tmp_path, "x.csv", text)) == fmt


def test_detect_with_columns_is_generic(tmp_path: Path) -> None:
    path = write(tmp_path, "x.csv", "a,b\n1,2\n")
    assert detect_format(path, has_columns=True) == "generic"
    with pytest.raises(TraceError, match=r"generic needs workload\.columns"):
        detect_format(path)


BURST_HEADER = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"

BURST_MALFORMED = [
    ("x,ChatGPT,4,4,8,API log\n", "Timestamp", "number"),
    ("1,,4,4,8,API log\n", "Model", "missing value"),
    ("1,ChatGPT,0,4,4,API log\n", "Request tokens", ">= 1"),
    ("1,ChatGPT,4,-1,3,API log\n", "Response tokens", "non-negative"),
    ("1,ChatGPT,4,4,8\n", "Log Type", "missing value"),
]


@pytest.mark.parametrize(("row", "field", "problem"), BURST_MALFORMED)
def test_burstgpt_malformed(tmp_path: Path, row: str, field: str, problem: str) -> None:
    path = write(tmp_path, "b.csv", BURST_HEADER + "0,ChatGPT,4,4,8,API log\n" + row)
    for fmt in ("burstgpt", "auto"):
        with pytest.raises(TraceError) as info:
            load(path, format=fmt)
        assert str(info.value).startswith(f"{path}:3: field '{field}': ")
        assert problem in str(info.value)


def test_same_seed_same_requests_other_seed_other_draws(tmp_path: Path) -> None:
    trace = write(tmp_path, "c-trace.csv", SG_TRACE)
    write(tmp_path, "c-dataset.json", json.dumps(SG_DATASET))
    agentic = FIXTURES / "agentic"
    for path in (trace, agentic):
        first, report = load(path, seed=7)
        again, report_again = load(path, seed=7)
        other, _ = load(path, seed=8)
        assert first == again and report.to_dict() == report_again.to_dict()
        assert [r.arrival_s for r in other] != [r.arrival_s for r in first]


def test_load_workload_with_report() -> None:
    from kvsim.config.workload import SyntheticWorkload
    from kvsim.workload.traces import load_workload_with_report

    reqs, report = load_workload_with_report(
        TraceWorkload(path=str(BURST)), np.random.default_rng(0)
    )
    assert report is not None and report.num_requests == len(reqs) == 3
    synth, none = load_workload_with_report(
        SyntheticWorkload(num_requests=4), np.random.default_rng(0)
    )
    assert len(synth) == 4 and none is None


@pytest.mark.parametrize(
    ("name", "text", "unit", "arrivals"),
    [
        ("w.txt", "a 1500 5 5\nb 250 5 5\n", None, [0.25, 1.5]),  # whitespace: ms, as is
        ("w.txt", "a 1500 5 5\nb 250 5 5\n", "s", [250.0, 1500.0]),
        ("w.txt", "a 1500 5 5\nb 250 5 5\n", "us", [0.00025, 0.0015]),
        (  # mooncake: ms, from the earliest
            "m.jsonl",
            '{"timestamp": 3000, "input_length": 5, "output_length": 1, "hash_ids": [0]}\n'
            '{"timestamp": 1000, "input_length": 5, "output_length": 1, "hash_ids": [0]}\n',
            "us",
            [0.0, 0.002],
        ),
    ],
)
def test_time_unit_overrides_the_format_unit(
    tmp_path: Path, name: str, text: str, unit: str | None, arrivals: list[float]
) -> None:
    reqs, _ = load(write(tmp_path, name, text), time_unit=unit)
    assert [r.arrival_s for r in reqs] == arrivals


@pytest.mark.parametrize(
    ("fmt", "text"), [("seqcsv", "sequence_id,sequence_length\na,5\n"), ("lengths", LENGTHS)]
)
def test_time_unit_is_refused_without_time_stamps(tmp_path: Path, fmt: str, text: str) -> None:
    with pytest.raises(ConfigError, match=f"format '{fmt}' has no numeric time stamps"):
        load(write(tmp_path, "x.csv", text), time_unit="ms")
