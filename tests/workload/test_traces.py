"""Trace loaders on tiny hand-written files: exact Requests, options, detection, errors."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import numpy as np
import pytest

from kvsim.config.workload import SyntheticWorkload, TraceWorkload
from kvsim.errors import TraceError
from kvsim.workload.arrivals import arrival_times
from kvsim.workload.hashing import mix64
from kvsim.workload.request import Request
from kvsim.workload.trace_csv import parse_timestamp_ns
from kvsim.workload.traces import TRACE_FORMATS, detect_format, load_trace, load_workload

WHITESPACE = """\
# id arrival_ms prompt_tokens gen_tokens streaming(0/1)
req1 0 500 200 0

req2 50 400 150 0
req3 25 600 250 1
"""

MOONCAKE = """\
{"timestamp": 2000, "input_length": 1100, "output_length": 5, "hash_ids": [0, 1, 2]}
{"timestamp": 1000, "input_length": 1024, "output_length": 3, "hash_ids": [0, 1]}

{"timestamp": 1500, "input_length": 100, "output_length": 1, "hash_ids": [7]}
"""

SEQCSV = "sequence_id,sequence_length,request_type\na,40,chat\nb,20,chat\na,50,chat\n"

AZURE = (
    "TIMESTAMP,ContextTokens,GeneratedTokens\r\n"
    "2023-11-16 18:17:03.9799600,4808,10\r\n"
    "2023-11-16 18:17:04.0319600,3180,8\r\n"
    "2023-11-16 18:17:03.0000000,10,1"
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


def load(path: Path, **kw: object) -> list[Request]:
    cfg = TraceWorkload.model_validate({"path": str(path), **kw})
    return load_trace(cfg, np.random.default_rng(0))


def req(rid: int, t: float, p: int, o: int, **kw: object) -> Request:
    return Request(request_id=rid, arrival_s=t, prompt_tokens=p, output_tokens=o, **kw)  # type: ignore[arg-type]


# --- exact loads --------------------------------------------------------------------------------


def test_whitespace_exact(tmp_path: Path) -> None:
    reqs = load(write(tmp_path, "t.txt", WHITESPACE), format="whitespace")
    # ids in file order, list in arrival order (req3 arrives before req2)
    assert reqs == [req(0, 0.0, 500, 200), req(2, 0.025, 600, 250), req(1, 0.05, 400, 150)]


def test_mooncake_exact_keeps_full_block_ids_and_shifts_time(tmp_path: Path) -> None:
    reqs = load(write(tmp_path, "t.jsonl", MOONCAKE))
    kw = {"hash_block_size": 512}
    assert reqs == [
        req(1, 0.0, 1024, 3, block_hashes=(0, 1), **kw),
        req(2, 0.5, 100, 1, block_hashes=(), **kw),
        req(0, 1.0, 1100, 5, block_hashes=(0, 1), **kw),
    ]
    assert [r.block_hashes for r in reqs] == [(0, 1), (), (0, 1)]


def test_seqcsv_exact(tmp_path: Path) -> None:
    reqs = load(write(tmp_path, "s.csv", SEQCSV), rate=2.0, output_tokens=9, hash_block_size=16)
    times = arrival_times("poisson", 2.0, 3, np.random.default_rng(0)).tolist()
    a = (mix64(0, 16), mix64(0, 32), mix64(0, 48))
    kw = {"hash_block_size": 16, "synthetic_hashes": True}
    assert reqs == [
        req(0, times[0], 40, 9, session_id=0, block_hashes=a[:2], **kw),
        req(1, times[1], 20, 9, session_id=1, block_hashes=(mix64(1, 16),), **kw),
        req(2, times[2], 50, 9, session_id=0, block_hashes=a, **kw),
    ]
    assert [r.block_hashes for r in reqs] == [a[:2], (mix64(1, 16),), a]
    # the same rows with another seed: same hashes, other arrivals
    other = load_trace(
        TraceWorkload(path=str(tmp_path / "s.csv"), hash_block_size=16), np.random.default_rng(1)
    )
    assert [r.block_hashes for r in other] == [r.block_hashes for r in reqs]
    assert [r.arrival_s for r in other] != times


def test_azure_exact(tmp_path: Path) -> None:
    reqs = load(write(tmp_path, "a.csv", AZURE))
    # relative to the earliest stamp (the last line); ids in file order
    assert reqs == [req(2, 0.0, 10, 1), req(0, 0.97996, 4808, 10), req(1, 1.03196, 3180, 8)]


def test_timestamp_parsing() -> None:
    a = parse_timestamp_ns("2023-11-16 23:59:59.9999999")
    b = parse_timestamp_ns("2023-11-17 00:00:00.0000001")
    assert a is not None and b is not None and b - a == 200
    assert parse_timestamp_ns("2024-05-10T02:00:00+02:00") == parse_timestamp_ns(
        "2024-05-10 00:00:00Z"
    )
    c = parse_timestamp_ns("2024-05-10 00:00:01")
    d = parse_timestamp_ns("2024-05-10 00:00:00.5")
    assert c is not None and d is not None and c - d == 500_000_000
    for bad in ("2023-02-30 00:00:00", "2023-11-16 24:00:00", "yesterday", "2023-11-16"):
        assert parse_timestamp_ns(bad) is None


# --- options ----------------------------------------------------------------------------------


def test_limit_and_arrival_scale(tmp_path: Path) -> None:
    path = write(tmp_path, "t.txt", WHITESPACE)
    reqs = load(path, limit=2, arrival_scale=2.0)
    # the first two in arrival order (req1, req3), renumbered 0..1 in file order
    assert reqs == [req(0, 0.0, 500, 200), req(1, 0.05, 600, 250)]


def test_ties_keep_file_order(tmp_path: Path) -> None:
    text = "x 10 5 5\ny 0 5 5\nz 10 6 6\nw 10 7 7\n"
    reqs = load(write(tmp_path, "t.txt", text))
    assert [r.request_id for r in reqs] == [1, 0, 2, 3]


def test_load_workload_dispatch(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    trace = TraceWorkload(path=str(write(tmp_path, "t.txt", WHITESPACE)))
    assert len(load_workload(trace, rng)) == 3
    assert len(load_workload(SyntheticWorkload(num_requests=7), rng)) == 7
    with pytest.raises(TypeError):
        load_workload("trace.txt", rng)  # type: ignore[arg-type]


def test_schema_formats_match_loaders() -> None:
    allowed = typing.get_args(TraceWorkload.model_fields["format"].annotation)
    assert set(allowed) == {"auto", *TRACE_FORMATS}


# --- format detection ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "fmt"),
    [
        ("a.txt", WHITESPACE, "whitespace"),
        ("a", "r 1 2 3\n", "whitespace"),
        ("a.jsonl", MOONCAKE, "mooncake"),
        ("a.log", MOONCAKE, "mooncake"),
        ("a.csv", SEQCSV, "seqcsv"),
        ("a.csv", AZURE, "azure"),
        ("a.dat", AZURE, "azure"),
    ],
)
def test_detect_format(tmp_path: Path, name: str, text: str, fmt: str) -> None:
    assert detect_format(write(tmp_path, name, text)) == fmt


@pytest.mark.parametrize("text", ["", "# only a comment\n", "foo,bar\n1,2\n", "hello world\n"])
def test_unknown_format_lists_formats(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, "x.csv", text)
    with pytest.raises(TraceError) as info:
        load(path)
    msg = str(info.value)
    assert str(path) in msg and "field 'format'" in msg
    assert "mooncake, whitespace, seqcsv, azure" in msg


def test_missing_file_and_binary_file(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match=r"nope\.txt: cannot open"):
        load(tmp_path / "nope.txt", format="whitespace")
    with pytest.raises(TraceError, match=r"nope\.txt: cannot open"):
        load(tmp_path / "nope.txt")
    path = tmp_path / "bin.txt"
    path.write_bytes(b"a 1 2 3\n\xff\xfe 1 2 3\n")
    with pytest.raises(TraceError, match=r"bin\.txt: not UTF-8"):
        load(path, format="whitespace")


@pytest.mark.parametrize(
    ("fmt", "text"),
    [("whitespace", "# nothing\n\n"), ("seqcsv", "sequence_id,sequence_length\n")],
)
def test_empty_trace(tmp_path: Path, fmt: str, text: str) -> None:
    with pytest.raises(TraceError, match="no requests"):
        load(write(tmp_path, "e.txt", text), format=fmt)


# --- malformed lines: file:line and field in the message ----------------------------------------

GOOD_MC = '{"timestamp": 0, "input_length": 600, "output_length": 5, "hash_ids": [0, 1]}\n'


def mc(**fields: object) -> str:
    base: dict[str, object] = {
        "timestamp": 10,
        "input_length": 600,
        "output_length": 5,
        "hash_ids": [0, 1],
    }
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v != "DROP"}) + "\n"


def test_mooncake_accepts_ids_without_the_partial_block(tmp_path: Path) -> None:
    reqs = load(write(tmp_path, "t.jsonl", mc(hash_ids=[4])))
    assert [r.block_hashes for r in reqs] == [(4,)]


MALFORMED = [
    # mooncake: line 3 (a blank line 2 still counts)
    ("mooncake", GOOD_MC + "\n" + '{"timestamp": 1, "input_length": \n', 3, None, "invalid JSON"),
    ("mooncake", GOOD_MC + "\n[1, 2]\n", 3, None, "JSON object"),
    ("mooncake", GOOD_MC + "\n" + mc(output_length="DROP"), 3, "output_length", "missing"),
    ("mooncake", GOOD_MC + "\n" + mc(input_length="600"), 3, "input_length", "integer"),
    ("mooncake", GOOD_MC + "\n" + mc(input_length=600.5), 3, "input_length", "integer"),
    ("mooncake", GOOD_MC + "\n" + mc(input_length=0, hash_ids=[]), 3, "input_length", ">= 1"),
    ("mooncake", GOOD_MC + "\n" + mc(output_length=-3), 3, "output_length", ">= 1"),
    ("mooncake", GOOD_MC + "\n" + mc(output_length=True), 3, "output_length", "integer"),
    ("mooncake", GOOD_MC + "\n" + mc(timestamp="soon"), 3, "timestamp", "number"),
    ("mooncake", GOOD_MC + "\n" + mc(timestamp=-1), 3, "timestamp", ">= 0"),
    ("mooncake", GOOD_MC + "\n" + mc(hash_ids=[]), 3, "hash_ids", "expected 1 or 2"),
    ("mooncake", GOOD_MC + "\n" + mc(hash_ids=[0, 1, 2]), 3, "hash_ids", "expected 1 or 2"),
    (
        "mooncake",
        GOOD_MC + "\n" + mc(input_length=1024, hash_ids=[0]),
        3,
        "hash_ids",
        "expected 2 ",
    ),
    ("mooncake", GOOD_MC + "\n" + mc(hash_ids=[0, -1]), 3, "hash_ids", "non-negative"),
    ("mooncake", GOOD_MC + "\n" + mc(hash_ids="0,1"), 3, "hash_ids", "list"),
    # whitespace: line 4 after a comment and a blank line
    ("whitespace", "# c\na 0 1 1\n\nb 1 2\n", 4, "gen_tokens", "missing"),
    ("whitespace", "# c\na 0 1 1\n\nb\n", 4, "arrival_ms", "missing"),
    ("whitespace", "# c\na 0 1 1\n\nb 1 2 3 0 9\n", 4, None, "too many fields"),
    ("whitespace", "# c\na 0 1 1\n\nb 1 12.5 3\n", 4, "prompt_tokens", "integer"),
    ("whitespace", "# c\na 0 1 1\n\nb 1 -4 3\n", 4, "prompt_tokens", "integer"),
    ("whitespace", "# c\na 0 1 1\n\nb 1 4 0\n", 4, "gen_tokens", ">= 1"),
    ("whitespace", "# c\na 0 1 1\n\nb -1 4 3\n", 4, "arrival_ms", ">= 0"),
    ("whitespace", "# c\na 0 1 1\n\nb x 4 3\n", 4, "arrival_ms", "number"),
    ("whitespace", "# c\na 0 1 1\n\nb 1 4 3 2\n", 4, "streaming", "0 or 1"),
    ("whitespace", "# c\na 0 1 1\n\na 1 4 3\n", 4, "id", "duplicate id 'a' (first on line 2)"),
    # seqcsv
    ("seqcsv", "sequence_id,length\na,5\n", 1, "sequence_length", "column missing"),
    ("seqcsv", SEQCSV + "c,12x,chat\n", 5, "sequence_length", "integer"),
    ("seqcsv", SEQCSV + "c,0,chat\n", 5, "sequence_length", ">= 1"),
    ("seqcsv", SEQCSV + ",3,chat\n", 5, "sequence_id", "missing value"),
    ("seqcsv", SEQCSV + "c\n", 5, "sequence_length", "missing value"),
    # azure (CRLF)
    ("azure", AZURE + "\r\n2023-11-16 18:17:xx,1,1\r\n", 5, "TIMESTAMP", "expected 'YYYY"),
    ("azure", AZURE + "\r\n2023-11-16 18:17:05,0,1\r\n", 5, "ContextTokens", ">= 1"),
    ("azure", AZURE + "\r\n2023-11-16 18:17:05,3,-1\r\n", 5, "GeneratedTokens", "integer"),
    ("azure", AZURE + "\r\n2023-11-16 18:17:05,3\r\n", 5, "GeneratedTokens", "missing value"),
    ("azure", "TIMESTAMP,Context,GeneratedTokens\r\n", 1, "ContextTokens", "column missing"),
]


@pytest.mark.parametrize(("fmt", "text", "line", "field", "problem"), MALFORMED)
def test_malformed_line_names_file_line_field(
    tmp_path: Path, fmt: str, text: str, line: int, field: str | None, problem: str
) -> None:
    path = write(tmp_path, f"bad_{fmt}.trace", text)
    detectable = "column missing" not in problem
    for chosen in (fmt, "auto") if detectable else (fmt,):
        with pytest.raises(TraceError) as info:
            load(path, format=chosen)
        err = info.value
        msg = str(err)
        assert msg.startswith(f"{path}:{line}: "), msg
        assert (err.file, err.line, err.field) == (str(path), line, field)
        if field is not None:
            assert f"field '{field}'" in msg
        assert problem in msg
