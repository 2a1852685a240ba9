"""Real torch tensors for kvsim (optional extra ``kvsim[torch]``).

A paged KV store (:class:`PagedKVStore`) that keeps K/V in one preallocated block tensor,
allocates blocks with kvsim's :class:`~kvsim.kv.block_pool.BlockPool`, and runs paged
attention through ``torch.nn.functional.scaled_dot_product_attention``; plus a small
fragmentation demo (:mod:`kvsim.tensor.demo`). Core kvsim never imports this package, so
kvsim works without torch.
"""

from __future__ import annotations

from kvsim.tensor.paged_store import AppendResult, PagedKVStore

__all__ = ["AppendResult", "PagedKVStore"]
