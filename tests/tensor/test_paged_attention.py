"""Paged attention equals dense attention (fp32, max abs error < 1e-5).

The reference is written out by hand in float64 (scores, bottom-right causal mask, softmax,
GQA by ``repeat_interleave``), independent of ``scaled_dot_product_attention``; a second
check compares against SDPA on the contiguous, never-paged K/V.
"""

from __future__ import annotations

import math
import random

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from kvsim.tensor import PagedKVStore  # noqa: E402

TOL = 1e-5


def dense_reference(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool
) -> torch.Tensor:
    """q [Lq, Hq, D], k/v [S, Hkv, D] -> [Lq, Hq, D]; float64; queries = last Lq positions."""
    q64, k64, v64 = q.double(), k.double(), v.double()
    group = q.shape[1] // k.shape[1]
    k64 = k64.repeat_interleave(group, dim=1)
    v64 = v64.repeat_interleave(group, dim=1)
    scores = torch.einsum("qhd,khd->hqk", q64, k64) / math.sqrt(q.shape[2])
    if causal:
        num_q, num_k = q.shape[0], k.shape[0]
        q_pos = torch.arange(num_k - num_q, num_k)[:, None]
        scores = scores.masked_fill(torch.arange(num_k)[None, :] > q_pos, float("-inf"))
    return torch.einsum("hqk,khd->qhd", scores.softmax(dim=-1), v64)


def run_case(
    *,
    seed: int,
    block_size: int,
    num_layers: int,
    num_kv_heads: int,
    group: int,
    head_dim: int,
    chunks: list[int],
    q_len: int,
    causal: bool,
) -> float:
    """Fill a store with a target sequence (appended in ``chunks``) interleaved with a
    distractor, run paged attention on every layer; return the max abs error seen."""
    gen = torch.Generator().manual_seed(seed)
    num_tokens = sum(chunks)
    num_blocks = 2 * (num_tokens // block_size + len(chunks) + 2)
    store = PagedKVStore(num_blocks, block_size, num_layers, num_kv_heads, head_dim)
    ks, vs = [], []
    for i, n in enumerate(chunks):
        shape = (num_layers, n, num_kv_heads, head_dim)
        k, v = torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)
        assert store.append("target", k, v) is not None
        ks.append(k)
        vs.append(v)
        # a distractor sequence takes blocks in between, so the table is not contiguous
        junk = torch.randn((num_layers, 1 + i % 3, num_kv_heads, head_dim), generator=gen)
        assert store.append("other", junk, junk) is not None
    k_all, v_all = torch.cat(ks, dim=1), torch.cat(vs, dim=1)
    q = torch.randn((q_len, num_kv_heads * group, head_dim), generator=gen)
    worst = 0.0
    for layer in range(num_layers):
        out = store.paged_attention(q, "target", layer, causal=causal)
        assert out.shape == q.shape and out.dtype == torch.float32
        ref = dense_reference(q, k_all[layer], v_all[layer], causal)
        err = (out.double() - ref).abs().max().item()
        worst = max(worst, err)
        # dense SDPA over the contiguous K/V, same mask convention
        qh, kh, vh = q.transpose(0, 1), k_all[layer].transpose(0, 1), v_all[layer].transpose(0, 1)
        mask = None
        if causal:
            q_pos = torch.arange(num_tokens - q_len, num_tokens)[:, None]
            mask = torch.arange(num_tokens)[None, :] <= q_pos
        dense = F.scaled_dot_product_attention(
            qh, kh, vh, attn_mask=mask, enable_gqa=True
        ).transpose(0, 1)
        worst = max(worst, (out - dense).abs().max().item())
    return worst


def _random_cases(num_cases: int, seed: int) -> list[dict]:
    rnd = random.Random(seed)
    cases = []
    for i in range(num_cases):
        chunks = [rnd.randint(1, 24) for _ in range(rnd.randint(1, 5))]
        num_tokens = sum(chunks)
        causal = rnd.random() < 0.75
        q_len = rnd.choice([1, num_tokens, rnd.randint(1, num_tokens)])
        cases.append(
            dict(
                seed=seed * 1000 + i,
                block_size=rnd.choice([1, 2, 3, 4, 8, 16, 32]),
                num_layers=rnd.randint(1, 3),
                num_kv_heads=rnd.choice([1, 2, 4]),
                group=rnd.choice([1, 2, 4, 8]),
                head_dim=rnd.choice([4, 8, 16, 64, 128]),
                chunks=chunks,
                q_len=q_len,
                causal=causal,
            )
        )
    return cases


@pytest.mark.parametrize("case", _random_cases(40, seed=2026), ids=lambda c: f"s{c['seed']}")
def test_paged_attention_equals_dense_random_cases(case: dict) -> None:
    assert run_case(**case) < TOL


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    block_size=st.integers(1, 17),
    num_kv_heads=st.integers(1, 4),
    group=st.sampled_from([1, 2, 3, 4, 8]),
    head_dim=st.sampled_from([1, 8, 32, 96]),
    chunks=st.lists(st.integers(1, 20), min_size=1, max_size=4),
    q_frac=st.floats(0.0, 1.0),
    causal=st.booleans(),
)
def test_paged_attention_equals_dense_hypothesis(
    block_size: int,
    num_kv_heads: int,
    group: int,
    head_dim: int,
    chunks: list[int],
    q_frac: float,
    causal: bool,
) -> None:
    q_len = max(1, round(q_frac * sum(chunks)))
    err = run_case(
        seed=7,
        block_size=block_size,
        num_layers=2,
        num_kv_heads=num_kv_heads,
        group=group,
        head_dim=head_dim,
        chunks=chunks,
        q_len=q_len,
        causal=causal,
    )
    assert err < TOL


@pytest.mark.parametrize(
    ("q_len", "causal", "label"),
    [(1, True, "decode"), (20, True, "prefill"), (7, True, "chunked prefill"), (5, False, "full")],
)
def test_paged_attention_modes(q_len: int, causal: bool, label: str) -> None:
    err = run_case(
        seed=q_len,
        block_size=4,
        num_layers=2,
        num_kv_heads=2,
        group=4,
        head_dim=16,
        chunks=[13, 7],
        q_len=q_len,
        causal=causal,
    )
    assert err < TOL, label


def test_gqa_query_head_reads_kv_head_by_integer_division() -> None:
    """Query head h must see KV head h // group: give each KV head constant V = its index."""
    store = PagedKVStore(4, 2, 1, 3, 4)
    k = torch.zeros(1, 5, 3, 4)
    v = torch.arange(3.0).view(1, 1, 3, 1).expand(1, 5, 3, 4).contiguous()
    store.append("s", k, v)
    out = store.paged_attention(torch.randn(2, 6, 4), "s", 0)  # group 2
    assert torch.equal(out[:, :, 0], torch.tensor([[0.0, 0.0, 1.0, 1.0, 2.0, 2.0]] * 2))


def test_decode_loop_matches_dense_step_by_step() -> None:
    """Append one token at a time (crossing block boundaries) and attend after each step."""
    gen = torch.Generator().manual_seed(3)
    store = PagedKVStore(16, 3, 1, 2, 8)
    ks, vs = [], []
    for _ in range(10):
        k, v = torch.randn((1, 1, 2, 8), generator=gen), torch.randn((1, 1, 2, 8), generator=gen)
        store.append("s", k, v)
        ks.append(k)
        vs.append(v)
        q = torch.randn((1, 4, 8), generator=gen)
        out = store.paged_attention(q, "s", 0)
        ref = dense_reference(q, torch.cat(ks, 1)[0], torch.cat(vs, 1)[0], causal=True)
        assert (out.double() - ref).abs().max().item() < TOL
    assert store.block_table("s") == [0, 1, 2, 3]


def test_low_precision_store_is_close() -> None:
    gen = torch.Generator().manual_seed(1)
    store = PagedKVStore(8, 4, 1, 2, 16, dtype=torch.bfloat16)
    k, v = torch.randn((1, 11, 2, 16), generator=gen), torch.randn((1, 11, 2, 16), generator=gen)
    store.append("s", k, v)
    q = torch.randn((3, 4, 16), generator=gen)
    out = store.paged_attention(q, "s", 0)
    assert out.dtype == torch.bfloat16
    ref = dense_reference(q, k[0], v[0], causal=True)
    assert (out.double() - ref).abs().max().item() < 5e-2
