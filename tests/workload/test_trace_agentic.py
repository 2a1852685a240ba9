"""The agentic (kv-cache-tester) loader on the hand-made fixture: exact Requests, hash
namespaces, subagents, the two timing rules, staggering, errors and the real files."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from kvsim.config.workload import TraceWorkload
from kvsim.errors import TraceError
from kvsim.workload.arrivals import arrival_times
from kvsim.workload.request import Request
from kvsim.workload.stats import trace_stats
from kvsim.workload.trace_report import TraceReport
from kvsim.workload.traces import detect_format, load_trace_with_report

FIXTURES = Path(__file__).parents[1] / "fixtures" / "traces" / "agentic"
SHARED_DATA = (Path(__file__).parents[2] / ".." / "shared" / "data").resolve()


def load(path: Path, seed: int = 0, **kw: object) -> tuple[list[Request], TraceReport]:
    cfg = TraceWorkload.model_validate({"path": str(path), **kw})
    return load_trace_with_report(cfg, np.random.default_rng(seed))


def req(rid: int, t: float, p: int, o: int, s: int, h: tuple[int, ...]) -> Request:
    return Request(
        request_id=rid,
        arrival_s=t,
        prompt_tokens=p,
        output_tokens=o,
        session_id=s,
        block_hashes=h,
        hash_block_size=4,
    )


# conv_a in file order: parent r0, r1, subagent s0, s1, nested subagent n0, parent r3
CONV_A_SHAPE = [  # (prompt, output, session, hashes)
    (9, 3, 0, (1, 2)),
    (13, 2, 0, (1, 2, 3)),
    (8, 1, 1, (1, 7)),
    (12, 1, 1, (1, 7, 8)),  # out 0 clamped to 1
    (4, 5, 2, (9,)),
    (17, 4, 0, (1, 2, 3, 4)),  # 5 ids for 17 tokens: the partial block's id is dropped
]


def conv_a(times: list[float]) -> list[Request]:
    reqs = [req(i, t, *shape) for i, (t, shape) in enumerate(zip(times, CONV_A_SHAPE, strict=True))]
    return sorted(reqs, key=lambda r: (r.arrival_s, r.request_id))


def test_detects_agentic_files_and_directories() -> None:
    assert detect_format(FIXTURES / "conv_a.json") == "agentic"  # pretty-printed
    assert detect_format(FIXTURES / "conv_b.json") == "agentic"  # one line
    assert detect_format(FIXTURES) == "agentic"


def test_trace_timing_exact() -> None:
    reqs, report = load(FIXTURES / "conv_a.json")
    # subagent spawned at t=12 (its t are relative to that), nested one at 12 + 5
    assert reqs == conv_a([0.0, 10.0, 12.0, 15.0, 18.0, 30.0])
    assert report.details == {"conversations": 1, "subagents": 2, "zero_output_clamped": 1}
    assert (report.rows_read, report.num_requests, report.files_read) == (6, 6, 1)
    assert (report.requests_missing_hashes, report.synthetic_hashes) == (0, False)


def test_think_timing_uses_api_time_then_think_time() -> None:
    reqs, _ = load(FIXTURES / "conv_a.json", agentic_timing="think")
    # r0 0; r1 = 0 + api 2 + think 8; subagent spawns when r1's turn ends (10 + 1.5);
    # s1 = 11.5 + 1 + 2; nested spawns at 14.5 + 1, n0 has no think time;
    # r3 = 11.5 + 18.5 (subagents never move the parent's clock)
    assert reqs == conv_a([0.0, 10.0, 11.5, 14.5, 15.5, 30.0])


def test_think_timing_with_fixed_turn_duration() -> None:
    reqs, _ = load(FIXTURES / "conv_a.json", agentic_timing="think", turn_duration_s=5.0)
    assert reqs == conv_a([0.0, 13.0, 18.0, 25.0, 30.0, 36.5])


def test_time_unit_scales_t_think_and_api() -> None:
    reqs, _ = load(FIXTURES / "conv_a.json", time_unit="ms")
    assert [r.arrival_s for r in reqs] == pytest.approx(
        [0.0, 0.01, 0.012, 0.015, 0.018, 0.03], abs=1e-15
    )


def test_directory_staggers_conversations_and_keeps_namespaces_apart() -> None:
    reqs, report = load(FIXTURES, seed=3)
    start_b = arrival_times("poisson", 0.1, 2, np.random.default_rng(3)).tolist()[1]
    expected = [
        *conv_a([0.0, 10.0, 12.0, 15.0, 18.0, 30.0]),
        # conv_b's local ids 1, 2, 3 become 11, 12, 13: conv_a used ids 0..9
        req(6, start_b, 8, 2, 3, (11, 12)),
        req(7, start_b + 4.0, 12, 2, 3, (11, 12, 13)),
    ]
    assert reqs == sorted(expected, key=lambda r: (r.arrival_s, r.request_id))
    assert report.files_read == 2 and report.details["conversations"] == 2
    a = {h for r in reqs if r.session_id < 3 for h in r.block_hashes}
    b = {h for r in reqs if r.session_id == 3 for h in r.block_hashes}
    assert a.isdisjoint(b)  # same local ids, different conversations: nothing shared


def test_subagent_shares_exactly_what_its_ids_say() -> None:
    reqs, _ = load(FIXTURES / "conv_a.json")
    by_id = {r.request_id: r for r in reqs}
    parent, sub = by_id[0], by_id[2]
    assert sub.session_id != parent.session_id
    assert sub.block_hashes[0] == parent.block_hashes[0]  # local id 1 in both
    assert sub.block_hashes[1] not in parent.block_hashes  # id 7 is the subagent's own


def test_constant_staggering_and_arrival_scale() -> None:
    reqs, _ = load(FIXTURES, conversation_arrival="constant", conversation_rate=0.5)
    starts = sorted({r.arrival_s for r in reqs if r.session_id == 3})
    assert starts == [2.0, 6.0]
    scaled, _ = load(
        FIXTURES, conversation_arrival="constant", conversation_rate=0.5, arrival_scale=2
    )
    assert [r.arrival_s for r in scaled] == [2 * r.arrival_s for r in reqs]


def test_global_scope_shares_ids_across_files(tmp_path: Path) -> None:
    for name in ("a.json", "b.json"):
        conv = {
            "block_size": 2,
            "hash_id_scope": "global",
            "requests": [{"t": 0, "type": "n", "in": 4, "out": 1, "hash_ids": [50, 60]}],
        }
        (tmp_path / name).write_text(json.dumps(conv))
    reqs, _ = load(tmp_path, conversation_arrival="constant", conversation_rate=1.0)
    assert [r.block_hashes for r in reqs] == [(0, 1), (0, 1)]
    assert [r.session_id for r in reqs] == [0, 1]


def write_conv(tmp_path: Path, requests: list[object], **top: object) -> Path:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"block_size": 4, **top, "requests": requests}))
    return path


GOOD = {"t": 0, "type": "n", "in": 8, "out": 1, "hash_ids": [1, 2]}

MALFORMED = [
    ([GOOD, {"t": 1, "type": "n", "out": 1, "hash_ids": []}], "requests[1].in", "missing"),
    ([GOOD, {**GOOD, "in": 0}], "requests[1].in", ">= 1"),
    ([GOOD, {**GOOD, "out": -1}], "requests[1].out", ">= 0"),
    ([GOOD, {**GOOD, "hash_ids": [1]}], "requests[1].hash_ids", "expected 2 "),
    ([GOOD, {**GOOD, "hash_ids": [1, "x"]}], "requests[1].hash_ids", "non-negative"),
    ([GOOD, {**GOOD, "t": -2}], "requests[1].t", ">= 0"),
    ([GOOD, {**GOOD, "think_time": "long"}], "requests[1].think_time", "number"),
    ([GOOD, 7], "requests[1]", "JSON object"),
    (
        [GOOD, {"t": 3, "type": "subagent", "requests": [GOOD, {**GOOD, "in": "8"}]}],
        "requests[1].subagent.requests[1].in",
        "integer",
    ),
    ([GOOD, {"t": 3, "type": "subagent", "requests": 5}], "requests[1].subagent.requests", "list"),
]


@pytest.mark.parametrize(("requests", "field", "problem"), MALFORMED)
def test_malformed_request_names_file_and_field_path(
    tmp_path: Path, requests: list[object], field: str, problem: str
) -> None:
    path = write_conv(tmp_path, requests)
    with pytest.raises(TraceError) as info:
        load(path)
    err = info.value
    assert (err.file, err.line, err.field) == (str(path), None, field)
    assert str(err).startswith(f"{path}: field '{field}': ") and problem in str(err)
    # non-strict: the bad entry is skipped, the good one kept, the reason reported
    reqs, report = load(path, strict=False)
    kept = 2 if "subagent.requests[1]" in field else 1  # the subagent's good request stays
    assert len(reqs) == kept and report.rows_skipped == 1
    assert report.skipped_reasons == [str(err)]


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        ('{"block_size": 4, "requests": [\n  {"in": }', None, "invalid JSON"),
        ('{"block_size": 0, "requests": []}', "block_size", ">= 1"),
        (
            '{"block_size": 4, "hash_id_scope": "team", "requests": []}',
            "hash_id_scope",
            "local or global",
        ),
        ('{"block_size": 4, "requests": {}}', "requests", "list"),
        ("[1, 2]", None, "JSON object"),
    ],
)
def test_malformed_file_is_an_error_even_when_not_strict(
    tmp_path: Path, text: str, field: str | None, problem: str
) -> None:
    path = tmp_path / "c.json"
    path.write_text(text)
    for strict in (True, False):
        with pytest.raises(TraceError) as info:
            load(path, format="agentic", strict=strict)
        assert info.value.field == field and problem in str(info.value)
    if problem == "invalid JSON":
        assert info.value.line == 2


def test_directory_with_mixed_block_sizes_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"block_size": 4, "requests": [GOOD]}))
    (tmp_path / "b.json").write_text(json.dumps({"block_size": 8, "requests": [GOOD]}))
    with pytest.raises(TraceError, match=r"b\.json: field 'block_size': 8 differs from 4"):
        load(tmp_path)


def test_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match=r"no \*\.json conversation files"):
        load(tmp_path, format="agentic")


# --- the real files ------------------------------------------------------------------------------


def test_real_agentic_directory_facts() -> None:
    path = SHARED_DATA / "agentic"
    if not path.exists():
        pytest.skip(f"public trace not available: {path} (needs the shared data folder)")
    reqs, report = load(path)
    stats = trace_stats(reqs)
    # counted once on the 71 files (the data README's "~5,000 requests" is approximate:
    # every entry of these files is a plain request, none is a subagent)
    assert (report.files_read, stats["count"], stats["num_sessions"]) == (71, 3_878, 71)
    assert report.details == {"conversations": 71, "zero_output_clamped": 7}
    assert stats["hash_block_size"] == 64
    assert all(len(r.block_hashes) == r.prompt_tokens // 64 for r in reqs)
    assert sum(r.prompt_tokens for r in reqs) == 565_515_277
    assert sum(r.output_tokens for r in reqs) == 1_607_620
    assert stats["num_prompt_blocks"] == 8_834_278
    assert round(stats["prefix_reuse_fraction"], 3) == 0.964
    # conversation-only hit rate between consecutive requests, the README's definition
    # (published on the full 739-trace set: median 96%, mean 93%; this is a 71-file subset)
    rates = consecutive_hit_rates(reqs)
    assert round(float(np.median(rates)), 3) == 0.984
    assert round(float(np.mean(rates)), 3) == 0.960


def consecutive_hit_rates(reqs: list[Request]) -> list[float]:
    by_session: dict[int, list[Request]] = {}
    for r in sorted(reqs, key=lambda r: r.request_id):
        by_session.setdefault(r.session_id, []).append(r)
    rates = []
    for rs in by_session.values():
        hits, total = 0, len(rs[0].block_hashes)
        for prev, cur in itertools.pairwise(rs):
            seen = set(prev.block_hashes)
            for h in cur.block_hashes:
                total += 1
                if h not in seen:
                    break
                hits += 1
        rates.append(hits / total)
    return rates


def test_real_agentic_timing_rule_holds() -> None:
    """t[k] = t[k-1] + api_time[k-1] + think_time[k] up to the trace's 1 s rounding of t."""
    path = SHARED_DATA / "agentic"
    if not path.exists():
        pytest.skip(f"public trace not available: {path}")
    gaps = []
    for file in sorted(path.glob("*.json")):
        entries = json.loads(file.read_text())["requests"]
        for a, b in itertools.pairwise(entries):
            if "api_time" in a and "think_time" in b:
                gaps.append(abs(b["t"] - (a["t"] + a["api_time"] + b["think_time"])))
    assert len(gaps) == 3_517 and max(gaps) < 1.0
