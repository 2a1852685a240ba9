"""Invariants of trace loading over hypothesis-generated inputs, against plain references."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kvsim.config.workload import TraceWorkload
from kvsim.errors import TraceError
from kvsim.workload.hashing import mix64, stream_block_hashes
from kvsim.workload.traces import load_trace_with_report


@given(
    st.lists(st.tuples(st.integers(-1, 5), st.integers(1, 80)), min_size=1, max_size=30),
    st.integers(1, 9),
)
def test_stream_hashes_match_the_scalar_reference(rows: list[tuple[int, int]], size: int) -> None:
    streams = [s for s, _ in rows]
    prompts = [p for _, p in rows]
    got = stream_block_hashes(streams, prompts, size)
    expected = [
        tuple(mix64(s, (i + 1) * size) for i in range(p // size)) if s >= 0 else () for s, p in rows
    ]
    assert got == expected


conversation = st.lists(  # requests of one conversation: local ids of full blocks
    st.lists(st.integers(1, 12), min_size=1, max_size=6), min_size=1, max_size=4
)


@settings(max_examples=40, deadline=None)
@given(st.lists(conversation, min_size=1, max_size=3))
def test_agentic_ids_equal_within_and_disjoint_across_conversations(
    convs: list[list[list[int]]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for c, reqs in enumerate(convs):
            entries = [
                {"t": float(k), "type": "n", "in": 2 * len(ids), "out": 1, "hash_ids": ids}
                for k, ids in enumerate(reqs)
            ]
            text = json.dumps({"block_size": 2, "requests": entries})
            (Path(tmp) / f"c{c:02d}.json").write_text(text)
        cfg = TraceWorkload(path=tmp, conversation_arrival="constant", conversation_rate=1e-3)
        loaded, _ = load_trace_with_report(cfg, np.random.default_rng(0))
    by_id = sorted(loaded, key=lambda r: r.request_id)
    flat = [(c, local) for c, reqs in enumerate(convs) for local in reqs]
    assert len(by_id) == len(flat)
    mapping: dict[tuple[int, int], int] = {}
    for req, (c, local) in zip(by_id, flat, strict=True):
        assert req.session_id == c
        for g, h in zip(req.block_hashes, local, strict=True):
            assert mapping.setdefault((c, h), g) == g  # one local id -> one global id
    assert len(set(mapping.values())) == len(mapping)  # distinct (conversation, id) pairs


line = st.one_of(
    st.tuples(st.just(True), st.integers(0, 99), st.integers(1, 50), st.integers(1, 50)),
    st.tuples(st.just(False), st.integers(0, 99), st.integers(-5, 0), st.integers(1, 50)),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(line, min_size=1, max_size=20))
def test_non_strict_keeps_exactly_the_good_rows(lines: list[tuple[bool, int, int, int]]) -> None:
    text = "".join(f"r{i} {t} {p} {o}\n" for i, (_, t, p, o) in enumerate(lines))
    good = [(t / 1000.0, p, o) for ok, t, p, o in lines if ok]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.txt"
        path.write_text(text)
        first_bad = next((i + 1 for i, (ok, *_rest) in enumerate(lines) if not ok), None)
        try:
            load_trace_with_report(TraceWorkload(path=str(path)), np.random.default_rng(0))
        except TraceError as err:
            assert err.line == first_bad
        else:
            assert first_bad is None
        if not good:
            return
        cfg = TraceWorkload(path=str(path), strict=False)
        reqs, report = load_trace_with_report(cfg, np.random.default_rng(0))
    assert sorted((r.arrival_s, r.prompt_tokens, r.output_tokens) for r in reqs) == sorted(good)
    assert report.rows_skipped == len(lines) - len(good) and report.rows_read == len(lines)
