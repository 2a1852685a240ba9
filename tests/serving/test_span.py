"""DecodeSpan closed forms against step-by-step sums (both roofline regimes and the switch)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from kvsim.perf.roofline import RooflineModel
from kvsim.serving.span import DecodeSpan

# overhead, compute per token, compute per context token, weights, memory per KV token (s)
COEFFS = (
    st.floats(0, 1e-3),
    st.floats(1e-9, 1e-4),
    st.floats(1e-13, 1e-8),
    st.floats(1e-5, 1e-1),
    st.floats(1e-12, 1e-6),
)


def model(overhead: float, tok: float, ctx: float, weights: float, kv: float) -> RooflineModel:
    return RooflineModel(overhead, tok, ctx, weights, kv, 0.0, 0.0)


@settings(max_examples=300, deadline=None)
@given(
    *COEFFS,
    st.integers(1, 512),
    st.integers(0, 200_000),
    st.integers(1, 3000),
)
def test_end_offset_matches_summed_steps(o, tok, ctx, w, kv, batch, extra, n) -> None:
    tm = model(o, tok, ctx, w, kv)
    ctx0 = batch + extra
    span = DecodeSpan.plan(tm, 0.0, batch, ctx0, n)
    total = 0.0
    for k in range(n):
        total += tm.decode_step_time(batch, ctx0 + k * batch)
    assert math.isclose(span.end_offset(n), total, rel_tol=1e-10)


def test_regime_switch_is_located_exactly() -> None:
    # memory-bound at first, compute grows faster: compute takes over at a known step
    tm = model(0.0, 1e-3, 1e-6, 1e-2, 1e-8)
    span = DecodeSpan.plan(tm, 0.0, 10, 100, 10_000)
    # compute(k) = 10*1e-3 + (100 + 10k)*1e-6 ; memory(k) = 1e-2 + (100 + 10k)*1e-8
    # compute - memory = 1e-4 - 1e-6 + 10k*(1e-6 - 1e-8) > 0 already at k = 0
    assert span.compute_first
    tm2 = model(0.0, 1e-4, 1e-6, 1e-2, 1e-8)
    span2 = DecodeSpan.plan(tm2, 0.0, 10, 100, 10_000)
    # d(k) = (1e-3 + 1e-4) - (1e-2 + 1e-6) + k*(1e-5 - 1e-7) -> root ~ 899.09
    assert not span2.compute_first
    assert span2.switch == 900
    assert span2.step_time(899) == tm2.decode_step_time(10, 100 + 899 * 10)


def test_steps_done_by_and_first_boundary() -> None:
    tm = model(0.0, 0.0, 0.0, 1.0, 0.0)  # every step takes exactly 1 s
    span = DecodeSpan.plan(tm, 10.0, 4, 40, 5)
    assert span.end_time(5) == 15.0
    assert span.steps_done_by(12.5) == 2
    assert span.steps_done_by(13.0) == 3
    assert span.first_boundary_at_or_after(12.5) == 3
    assert span.first_boundary_at_or_after(13.0) == 3
    assert span.first_boundary_at_or_after(99.0) == 5


@settings(max_examples=300, deadline=None)
@given(
    *COEFFS,
    st.integers(1, 256),
    st.integers(1, 2000),
    st.floats(0.0, 1.2),
)
def test_first_boundary_matches_a_linear_scan(o, tok, ctx, w, kv, batch, n, frac) -> None:
    tm = model(o, tok, ctx, w, kv)
    span = DecodeSpan.plan(tm, 3.0, batch, batch * 100, n)
    tau = 3.0 + frac * span.end_offset(n)
    expect = next((k for k in range(1, n + 1) if span.end_time(k) >= tau), n)
    assert span.first_boundary_at_or_after(tau) == expect


@settings(max_examples=300, deadline=None)
@given(
    *COEFFS,
    st.integers(1, 256),
    st.integers(1, 2000),
    st.floats(-0.1, 1.2),
)
def test_steps_done_by_matches_a_linear_scan(o, tok, ctx, w, kv, batch, n, frac) -> None:
    tm = model(o, tok, ctx, w, kv)
    span = DecodeSpan.plan(tm, 3.0, batch, batch * 100, n)
    tau = 3.0 + frac * span.end_offset(n)
    expect = sum(1 for k in range(1, n + 1) if span.end_time(k) <= tau)
    assert span.steps_done_by(tau) == expect
    for k in (1, n // 2, n):  # exactly on a boundary
        if k:
            assert span.steps_done_by(span.end_time(k)) == k


@settings(max_examples=300, deadline=None)
@given(
    *COEFFS,
    st.integers(1, 256),
    st.integers(1, 2000),
    st.floats(0.0, 0.5),
    st.floats(-0.1, 1.2),
)
def test_head_step_replaces_step_zero(o, tok, ctx, w, kv, batch, n, head, frac) -> None:
    """A mixed step 0 of ``head`` seconds, then the decode series: every closed form and
    search agrees with summing step times one by one."""
    tm = model(o, tok, ctx, w, kv)
    span = DecodeSpan.plan(tm, 3.0, batch, batch * 100, n)
    plain = [span.step_time(k) for k in range(n)]
    span.set_head(head)
    assert span.step_time(0) == head
    ends = [3.0]
    for k in range(n):
        ends.append(ends[-1] + (head if k == 0 else plain[k]))
    for k in (0, 1, n // 2, n):
        assert math.isclose(span.end_time(k), ends[k], rel_tol=1e-10, abs_tol=1e-15)
    tau = 3.0 + frac * (ends[n] - 3.0)
    assert span.steps_done_by(tau) == sum(1 for k in range(1, n + 1) if span.end_time(k) <= tau)
    expect = next((k for k in range(1, n + 1) if span.end_time(k) >= tau), n)
    assert span.first_boundary_at_or_after(tau) == expect


def test_head_step_exact_values() -> None:
    tm = model(0.0, 0.0, 0.0, 1.0, 0.0)  # every decode step takes exactly 1 s
    span = DecodeSpan.plan(tm, 10.0, 4, 40, 5)
    span.set_head(2.5)  # step 0 is a 2.5 s mixed step
    assert [span.end_time(k) for k in range(6)] == [10.0, 12.5, 13.5, 14.5, 15.5, 16.5]
    assert span.steps_done_by(12.4) == 0
    assert span.steps_done_by(12.5) == 1
    assert span.steps_done_by(14.0) == 2
    assert span.first_boundary_at_or_after(11.0) == 1
    assert span.first_boundary_at_or_after(12.6) == 2
    assert span.first_boundary_at_or_after(99.0) == 5
