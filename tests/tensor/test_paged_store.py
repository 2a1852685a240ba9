"""PagedKVStore bookkeeping: exact block tables, free-queue order, gather, out-of-blocks, errors."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from kvsim.tensor import AppendResult, PagedKVStore  # noqa: E402

L, H, D = 2, 2, 4  # layers, kv heads, head dim of the small store used below


def kv(num_tokens: int, seed: int, layers: int = L, heads: int = H, dim: int = D) -> tuple:
    gen = torch.Generator().manual_seed(seed)
    shape = (layers, num_tokens, heads, dim)
    return torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)


def free_ids(store: PagedKVStore) -> list[int]:
    return [b.block_id for b in store.pool.free_block_queue.get_all_free_blocks()]


def check_invariants(store: PagedKVStore) -> None:
    seen: set[int] = set()
    for seq_id in store.seq_ids():
        table = store.block_table(seq_id)
        assert len(table) == math.ceil(store.num_tokens(seq_id) / store.block_size)
        assert seen.isdisjoint(table)
        seen.update(table)
    assert store.num_free_blocks + len(seen) == store.num_blocks
    assert seen.isdisjoint(free_ids(store))


# --------------------------------------------------------------------------- block tables


def test_scripted_appends_and_frees_exact_block_ids() -> None:
    store = PagedKVStore(8, 4, L, H, D)
    assert free_ids(store) == [0, 1, 2, 3, 4, 5, 6, 7]

    # a: 6 tokens -> blocks 0, 1 (block 1 half full)
    assert store.append("a", *kv(6, 0)) == AppendResult((0, 1), 6)
    # b: 3 tokens -> block 2
    assert store.append("b", *kv(3, 1)) == AppendResult((2,), 3)
    # a: +2 tokens fill block 1 exactly, no new block
    assert store.append("a", *kv(2, 2)) == AppendResult((), 8)
    # a: +1 token crosses the boundary -> block 3
    assert store.append("a", *kv(1, 3)) == AppendResult((3,), 9)
    # b: +9 tokens (3 -> 12) -> blocks 4, 5
    assert store.append("b", *kv(9, 4)) == AppendResult((4, 5), 12)
    assert store.block_table("a") == [0, 1, 3]
    assert store.block_table("b") == [2, 4, 5]
    assert free_ids(store) == [6, 7]
    check_invariants(store)

    # free a: its blocks go to the tail, last block first
    assert store.free("a") == 3
    assert free_ids(store) == [6, 7, 3, 1, 0]
    assert not store.has_sequence("a")
    # c: 17 tokens -> 5 blocks, taken from the front of the queue
    assert store.append("c", *kv(17, 5)) == AppendResult((6, 7, 3, 1, 0), 17)
    assert store.block_table("c") == [6, 7, 3, 1, 0]
    assert free_ids(store) == []
    check_invariants(store)

    # pool empty: b's last block is full (12 tokens), so one more token needs a block ...
    assert store.append("b", *kv(1, 6)) is None
    # ... but c (17 tokens, last block 1/4 full) can take 3 more tokens without a block
    assert store.append("c", *kv(3, 7)) == AppendResult((), 20)
    assert store.free("b") == 3
    assert store.free("c") == 5
    assert free_ids(store) == [5, 4, 2, 0, 1, 3, 7, 6]
    assert store.num_sequences == 0
    check_invariants(store)


def test_blocks_returned_to_pool_on_free() -> None:
    store = PagedKVStore(10, 3, L, H, D)
    for i, n in enumerate([4, 7, 1, 9]):
        assert store.append(i, *kv(n, i)) is not None
    assert store.num_used_blocks == 2 + 3 + 1 + 3
    assert store.num_free_blocks == 1
    for i in range(4):
        store.free(i)
        check_invariants(store)
    assert store.num_free_blocks == 10
    assert store.num_used_blocks == 0
    assert all(b.ref_cnt == 0 for b in store.pool.blocks)
    assert sorted(free_ids(store)) == list(range(10))
    # everything is reusable: one sequence can now take the whole cache
    assert store.append("big", *kv(30, 9)) is not None
    assert store.num_free_blocks == 0


def test_out_of_blocks_returns_none_without_side_effects() -> None:
    store = PagedKVStore(3, 2, L, H, D)
    assert store.append("a", *kv(5, 0)) == AppendResult((0, 1, 2), 5)
    cache_before = store.kv_cache.clone()
    assert not store.can_append("a", 2)
    assert store.num_blocks_needed("a", 2) == 1
    assert store.append("a", *kv(2, 1)) is None
    assert store.append("new", *kv(1, 2)) is None
    assert store.block_table("a") == [0, 1, 2]
    assert store.num_tokens("a") == 5
    assert not store.has_sequence("new")
    assert torch.equal(store.kv_cache, cache_before)
    # the one free slot in block 2 is still usable
    assert store.can_append("a", 1)
    assert store.append("a", *kv(1, 3)) == AppendResult((), 6)


def test_empty_append_creates_sequence_without_blocks() -> None:
    store = PagedKVStore(2, 4, L, H, D)
    assert store.append("a", *kv(0, 0)) == AppendResult((), 0)
    assert store.block_table("a") == []
    k, v = store.gather("a")
    assert k.shape == (L, 0, H, D) and v.shape == (L, 0, H, D)
    assert store.free("a") == 0
    assert store.num_free_blocks == 2


# --------------------------------------------------------------------------- gather


@pytest.mark.parametrize("block_size", [1, 2, 3, 5, 16])
def test_gather_equals_appended_kv(block_size: int) -> None:
    rng = torch.Generator().manual_seed(block_size)
    store = PagedKVStore(64, block_size, 3, 2, 8)
    expected: dict[str, list[tuple]] = {"x": [], "y": [], "z": []}
    # interleave appends of random sizes so that block tables are not contiguous
    for step in range(12):
        seq = "xyz"[step % 3]
        n = int(torch.randint(1, 6, (1,), generator=rng))
        k, v = kv(n, 100 + step, layers=3, heads=2, dim=8)
        assert store.append(seq, k, v) is not None
        expected[seq].append((k, v))
    for seq, chunks in expected.items():
        k, v = store.gather(seq)
        assert k.is_contiguous() and v.is_contiguous()
        assert torch.equal(k, torch.cat([c[0] for c in chunks], dim=1))
        assert torch.equal(v, torch.cat([c[1] for c in chunks], dim=1))
        for layer in range(3):
            k_l, v_l = store.gather_layer(seq, layer)
            assert torch.equal(k_l, k[layer]) and torch.equal(v_l, v[layer])
    check_invariants(store)


def test_gather_after_block_reuse_reads_no_stale_data() -> None:
    store = PagedKVStore(4, 4, L, H, D)
    store.append("old", *kv(16, 0))
    store.free("old")  # blocks keep old data
    k, v = kv(5, 1)
    store.append("new", k, v)  # reuses blocks 3 and 2; block 2 has 3 stale slots
    assert store.block_table("new") == [3, 2]
    got_k, got_v = store.gather("new")
    assert torch.equal(got_k, k) and torch.equal(got_v, v)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    num_blocks=st.integers(0, 12),
    block_size=st.integers(1, 5),
    ops=st.lists(st.tuples(st.booleans(), st.integers(0, 3), st.integers(0, 9)), max_size=30),
)
def test_random_ops_conserve_blocks_and_keep_data(
    num_blocks: int, block_size: int, ops: list[tuple[bool, int, int]]
) -> None:
    store = PagedKVStore(num_blocks, block_size, 1, 1, 2)
    written: dict[int, list[torch.Tensor]] = {}
    for step, (is_free, seq, n) in enumerate(ops):
        if is_free:
            if store.has_sequence(seq):
                store.free(seq)
                del written[seq]
            continue
        k, v = kv(n, step, layers=1, heads=1, dim=2)
        fits = store.can_append(seq, n)
        result = store.append(seq, k, v)
        assert (result is not None) == fits
        if result is not None:
            written.setdefault(seq, []).append(k)
        check_invariants(store)
    for seq, chunks in written.items():
        assert torch.equal(store.gather(seq)[0], torch.cat(chunks, dim=1))


# --------------------------------------------------------------------------- config, errors


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_dtype_is_configurable_and_inputs_are_cast(dtype: torch.dtype) -> None:
    store = PagedKVStore(4, 4, L, H, D, dtype=dtype)
    assert store.kv_cache.dtype == dtype
    assert store.bytes_per_block == 2 * L * 4 * H * D * torch.tensor([], dtype=dtype).itemsize
    assert store.kv_bytes_per_token == store.bytes_per_block // 4
    k, v = kv(6, 0)
    store.append("a", k, v)
    got_k, got_v = store.gather("a")
    assert got_k.dtype == dtype
    assert torch.equal(got_k, k.to(dtype)) and torch.equal(got_v, v.to(dtype))


def test_cache_shape_and_layout() -> None:
    store = PagedKVStore(5, 4, 3, 2, 8)
    assert store.kv_cache.shape == (5, 2, 3, 4, 2, 8)
    k, v = kv(6, 0, layers=3, heads=2, dim=8)
    store.append("a", k, v)  # blocks 0, 1; token 5 -> block 1, slot 1
    assert torch.equal(store.kv_cache[1, 0, :, 1], k[:, 5])
    assert torch.equal(store.kv_cache[1, 1, :, 1], v[:, 5])
    assert torch.equal(store.kv_cache[0, 0, 2, 3], k[2, 3])


def test_misuse_raises() -> None:
    store = PagedKVStore(4, 4, L, H, D)
    with pytest.raises(KeyError, match="unknown sequence"):
        store.free("nope")
    with pytest.raises(KeyError):
        store.gather("nope")
    with pytest.raises(KeyError):
        store.block_table("nope")
    with pytest.raises(ValueError, match="k must be"):
        store.append("a", torch.zeros(L, 2, H + 1, D), torch.zeros(L, 2, H + 1, D))
    with pytest.raises(ValueError, match="k and v shapes differ"):
        store.append("a", torch.zeros(L, 2, H, D), torch.zeros(L, 3, H, D))
    store.append("a", *kv(2, 0))
    with pytest.raises(ValueError, match="layer"):
        store.gather_layer("a", L)
    with pytest.raises(ValueError, match="multiple"):
        store.paged_attention(torch.zeros(1, 3, D), "a", 0)
    with pytest.raises(ValueError, match="q_len <= num_tokens"):
        store.paged_attention(torch.zeros(3, 2, D), "a", 0)
    store.append("empty", *kv(0, 1))
    with pytest.raises(ValueError, match="no tokens"):
        store.paged_attention(torch.zeros(1, 2, D), "empty", 0, causal=False)
    with pytest.raises(ValueError, match="device"):
        PagedKVStore(4, 4, L, H, D, device="meta")
    with pytest.raises(ValueError, match="floating-point"):
        PagedKVStore(4, 4, L, H, D, dtype=torch.int32)
    with pytest.raises(ValueError, match="block_size"):
        PagedKVStore(4, 0, L, H, D)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_cuda_without_gpu_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="CUDA is not available"):
        PagedKVStore(4, 4, L, H, D, device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_store_matches_cpu_store() -> None:
    cpu = PagedKVStore(8, 4, L, H, D)
    gpu = PagedKVStore(8, 4, L, H, D, device="cuda")
    for seq, n in (("a", 5), ("b", 7), ("a", 6)):
        k, v = kv(n, n)
        assert cpu.append(seq, k, v) == gpu.append(seq, k, v)
    q = torch.randn(3, 4, D, generator=torch.Generator().manual_seed(0))
    assert gpu.kv_cache.is_cuda
    for seq in ("a", "b"):
        assert torch.equal(gpu.gather(seq)[0].cpu(), cpu.gather(seq)[0])
        out = gpu.paged_attention(q, seq, 1)
        assert out.is_cuda
        assert (out.cpu() - cpu.paged_attention(q, seq, 1)).abs().max() < 1e-5


def test_append_stores_values_not_autograd_graphs() -> None:
    store = PagedKVStore(2, 4, L, H, D)
    k = torch.randn(L, 3, H, D, requires_grad=True)
    store.append("a", k, k * 2)
    assert not store.kv_cache.requires_grad
    assert torch.equal(store.gather("a")[1], (k * 2).detach())


def test_core_kvsim_does_not_import_tensor_package() -> None:
    code = (
        "import sys, kvsim, kvsim.api, kvsim.cli, kvsim.kv.block_pool\n"
        "bad = [m for m in ('torch', 'kvsim.tensor') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
