"""Micro-benchmark of the torch paged KV store (needs the ``torch`` extra).

Shape: 4 layers, 8 KV heads x 128 head_dim, 32 query heads (GQA group 4), fp32, block size
16. For several context lengths it times, per call (fastest of ``--repeat`` batches, as
timeit does):

* ``append``: one decode token (all layers);
* ``gather_layer``: one layer's K/V through the block table (``index_select``);
* ``paged_attention``: a decode query through the block table, then SDPA;
* ``dense SDPA``: the same attention on K/V already contiguous (the lower bound), so
  ``paged / dense`` is the price of the gather.

The sequence's block table is made non-contiguous by interleaving a second sequence.

Usage: python benchmarks/tensor.py [--quick] [--repeat N] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from kvsim.tensor import PagedKVStore

LAYERS, KV_HEADS, GROUP, HEAD_DIM, BLOCK = 4, 8, 4, 128, 16


def best_us(fn: Callable[[], object], number: int, repeat: int, sync: bool) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        if sync:
            torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - t0) / number)
    return best * 1e6


def bench(context: int, device: str, number: int, repeat: int) -> dict[str, float]:
    gen = torch.Generator().manual_seed(0)
    num_blocks = 2 * (context // BLOCK + 2) + number * repeat // BLOCK + 4
    store = PagedKVStore(num_blocks, BLOCK, LAYERS, KV_HEADS, HEAD_DIM, device=device)
    chunk = 256
    for start in range(0, context, chunk):
        n = min(chunk, context - start)
        for seq in ("s", "other"):
            k = torch.randn((LAYERS, n, KV_HEADS, HEAD_DIM), generator=gen)
            store.append(seq, k, k)
    q = torch.randn((1, KV_HEADS * GROUP, HEAD_DIM), generator=gen).to(device)
    k_dense, v_dense = (t[0].transpose(0, 1).contiguous() for t in store.gather("s"))
    qh = q.transpose(0, 1)
    one = torch.randn((LAYERS, 1, KV_HEADS, HEAD_DIM), generator=gen).to(device)
    sync = device.startswith("cuda")
    out = {
        "gather_layer_us": best_us(lambda: store.gather_layer("s", 0), number, repeat, sync),
        "paged_attention_us": best_us(
            lambda: store.paged_attention(q, "s", 0), number, repeat, sync
        ),
        "dense_sdpa_us": best_us(
            lambda: F.scaled_dot_product_attention(qh, k_dense, v_dense, enable_gqa=True),
            number,
            repeat,
            sync,
        ),
        "append_1_token_us": best_us(lambda: store.append("s", one, one), number, repeat, sync),
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short contexts, fewer calls")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    contexts = [256, 1024] if args.quick else [256, 1024, 4096]
    number = 5 if args.quick else 20
    print(f"torch {torch.__version__}, device {args.device}, {torch.get_num_threads()} threads")
    header = (
        f"{'context':>8} {'append':>10} {'gather':>10} {'paged':>10} {'dense':>10} {'ratio':>6}"
    )
    print(header + "   (microseconds per call)")
    for context in contexts:
        r = bench(context, args.device, number, args.repeat)
        ratio = r["paged_attention_us"] / r["dense_sdpa_us"]
        print(
            f"{context:>8} {r['append_1_token_us']:>10.1f} {r['gather_layer_us']:>10.1f} "
            f"{r['paged_attention_us']:>10.1f} {r['dense_sdpa_us']:>10.1f} {ratio:>6.2f}"
        )


if __name__ == "__main__":
    main()
