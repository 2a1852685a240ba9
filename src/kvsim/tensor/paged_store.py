"""A paged KV cache of real torch tensors: block tables, gather, and paged attention.

:class:`PagedKVStore` holds the keys and values of many sequences in ONE preallocated tensor
cut into fixed-size blocks, hands blocks out through kvsim's own
:class:`~kvsim.kv.block_pool.BlockPool` (the same allocator the simulator uses, with prefix
caching off), and keeps one *block table* per sequence: the list of physical block ids that
hold its tokens, in logical order.

Layout — one global tensor, block id first::

    kv_cache: [num_blocks, 2, num_layers, block_size, num_kv_heads, head_dim]
               ^           ^  ^           ^
               block id    |  layer       slot inside the block
                           0 = K, 1 = V

    a sequence of 10 tokens, block_size 4, block table [3, 0, 5]:

      logical token    0  1  2  3 |  4  5  6  7 |  8  9  -  -
      table index      0          |  1          |  2
      physical block   3          |  0          |  5      (slots 2, 3 of block 5 unused)

      token p lives at kv_cache[table[p // block_size], :, :, p % block_size]

Why one global tensor rather than one per layer (vLLM keeps ``[2, num_blocks, ...]`` per
layer): a block id then names every layer's K and V at once, so an append writes all layers
with a single indexed store, and freeing a block frees it for all layers — exactly the unit
the block pool counts. Attention on one layer uses the strided view ``kv_cache[:, :, layer]``
(no copy) and one ``index_select`` over the block ids. The cost is that a layer's blocks are
not contiguous in memory, which matters for a fused GPU kernel but not for this
gather-then-SDPA implementation.

Invariants (checked by ``tests/tensor/test_paged_store.py``):

* ``len(block_table(s)) == ceil(num_tokens(s) / block_size)`` for every live sequence ``s``:
  blocks are taken one at a time, only when a token crosses a block boundary.
* Every block id is in at most one block table, and
  ``num_free_blocks + sum(len(block_table(s))) == num_blocks``.
* Slots past ``num_tokens`` in a sequence's last block hold stale data from earlier owners
  (blocks are never zeroed on free); :meth:`PagedKVStore.gather` and
  :meth:`PagedKVStore.paged_attention` slice to ``num_tokens`` so it is never read.
* Block ids come from the pool's free queue: a fresh store hands out ``0, 1, 2, ...``;
  :meth:`PagedKVStore.free` returns a sequence's blocks in reverse (last block first, the
  block pool's convention), and they are reused in the order they were freed.

Outcomes and errors:

* Not enough free blocks for an append is a normal outcome: :meth:`PagedKVStore.append`
  returns ``None`` and changes nothing (no block taken, no token written, a new sequence is
  not registered) — the same convention as ``BlockPool.allocate``.
* Misuse raises at once: an unknown sequence id raises ``KeyError``; tensors of the wrong
  shape, a layer out of range, attention over an empty sequence, a non-float dtype or an
  unavailable device raise ``ValueError``.

Device and dtype: the cache is created on ``device`` (``"cpu"`` or ``"cuda[:n]"``) with
``dtype`` (default ``torch.float32``) and filled with zeros, so a fresh store is
deterministic. Incoming K/V/Q tensors are moved and cast to the store's device and dtype
(like vLLM's cache dtype). Block-id index tensors are built once per block-table change and
kept on the device, so the CUDA path does no host-to-device copy per attention call.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from kvsim.kv.block_pool import BlockPool, KVBlock

__all__ = ["AppendResult", "PagedKVStore"]


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What one successful :meth:`PagedKVStore.append` did.

    Attributes:
        new_block_ids: physical blocks taken by this append, in logical order (may be empty
            when the tokens fit in the sequence's last, partly filled block).
        num_tokens: the sequence's length after the append.
    """

    new_block_ids: tuple[int, ...]
    num_tokens: int


@dataclass(slots=True)
class _Sequence:
    """Per-sequence state: its block table and token count (private)."""

    blocks: list[KVBlock] = field(default_factory=list)
    num_tokens: int = 0
    # Block ids as a long tensor on the store's device; None until first needed after a change.
    ids: torch.Tensor | None = None


def _resolve_device(device: str | torch.device) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(dev)!r} requested but CUDA is not available")
    elif dev.type != "cpu":
        raise ValueError(f"device must be 'cpu' or 'cuda[:n]', got {str(dev)!r}")
    return dev


class PagedKVStore:
    """Paged KV cache for ``num_layers`` layers of ``num_kv_heads`` x ``head_dim`` K and V.

    Args:
        num_blocks: physical blocks in the cache (``>= 0``).
        block_size: tokens per block (``>= 1``).
        num_layers, num_kv_heads, head_dim: model shape (each ``>= 1``).
        dtype: element type of the cache (default ``torch.float32``).
        device: ``"cpu"`` or ``"cuda"`` / ``"cuda:n"``; CUDA must be available.

    The whole cache, ``num_blocks * bytes_per_block`` bytes, is allocated here and never
    grows. See the module docstring for the layout and the invariants.
    """

    def __init__(
        self,
        num_blocks: int,
        block_size: int,
        num_layers: int,
        num_kv_heads: int,
        head_dim: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> None:
        if num_blocks < 0:
            raise ValueError(f"num_blocks must be >= 0, got {num_blocks}")
        for name, value in (
            ("block_size", block_size),
            ("num_layers", num_layers),
            ("num_kv_heads", num_kv_heads),
            ("head_dim", head_dim),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating-point dtype, got {dtype}")
        self.num_blocks: int = num_blocks
        self.block_size: int = block_size
        self.num_layers: int = num_layers
        self.num_kv_heads: int = num_kv_heads
        self.head_dim: int = head_dim
        self.dtype: torch.dtype = dtype
        self.device: torch.device = _resolve_device(device)
        self.kv_cache: torch.Tensor = torch.zeros(
            (num_blocks, 2, num_layers, block_size, num_kv_heads, head_dim),
            dtype=dtype,
            device=self.device,
        )
        self.pool: BlockPool = BlockPool(num_blocks, enable_caching=False)
        self._seqs: dict[Hashable, _Sequence] = {}

    # ------------------------------------------------------------------ counts

    @property
    def num_free_blocks(self) -> int:
        return self.pool.num_free_blocks

    @property
    def num_used_blocks(self) -> int:
        return self.pool.num_used_blocks

    @property
    def num_sequences(self) -> int:
        return len(self._seqs)

    @property
    def bytes_per_block(self) -> int:
        """Bytes of K and V for all layers in one block."""
        elem = self.kv_cache.element_size()
        return 2 * self.num_layers * self.block_size * self.num_kv_heads * self.head_dim * elem

    @property
    def kv_bytes_per_token(self) -> int:
        return self.bytes_per_block // self.block_size

    def seq_ids(self) -> list[Hashable]:
        """Live sequence ids in creation order (a copy, safe to iterate while freeing)."""
        return list(self._seqs)

    def has_sequence(self, seq_id: Hashable) -> bool:
        return seq_id in self._seqs

    def num_tokens(self, seq_id: Hashable) -> int:
        return self._get(seq_id).num_tokens

    def block_table(self, seq_id: Hashable) -> list[int]:
        """Physical block ids of ``seq_id`` in logical order (a copy)."""
        return [b.block_id for b in self._get(seq_id).blocks]

    def num_blocks_needed(self, seq_id: Hashable, num_new_tokens: int) -> int:
        """New blocks an append of ``num_new_tokens`` would take (unknown id = empty sequence)."""
        seq = self._seqs.get(seq_id)
        have_tokens = seq.num_tokens if seq is not None else 0
        have_blocks = len(seq.blocks) if seq is not None else 0
        return -(-(have_tokens + num_new_tokens) // self.block_size) - have_blocks

    def can_append(self, seq_id: Hashable, num_new_tokens: int) -> bool:
        return self.num_blocks_needed(seq_id, num_new_tokens) <= self.pool.num_free_blocks

    # ------------------------------------------------------------------ mutation

    def append(self, seq_id: Hashable, k: torch.Tensor, v: torch.Tensor) -> AppendResult | None:
        """Append ``n`` tokens' keys and values to ``seq_id``, creating it if new.

        ``k`` and ``v`` are ``[num_layers, n, num_kv_heads, head_dim]`` (``n >= 0``). Blocks
        are taken from the pool only as the sequence crosses block boundaries. Returns
        ``None``, with no side effect, if the pool has too few free blocks.
        """
        expected = (self.num_layers, self.num_kv_heads, self.head_dim)
        for name, t in (("k", k), ("v", v)):
            if t.dim() != 4 or (t.shape[0], t.shape[2], t.shape[3]) != expected:
                raise ValueError(
                    f"{name} must be [num_layers={self.num_layers}, new_tokens, "
                    f"num_kv_heads={self.num_kv_heads}, head_dim={self.head_dim}], "
                    f"got {list(t.shape)}"
                )
        if k.shape != v.shape:
            raise ValueError(f"k and v shapes differ: {list(k.shape)} vs {list(v.shape)}")
        num_new = int(k.shape[1])
        num_needed = self.num_blocks_needed(seq_id, num_new)
        new_blocks = self.pool.allocate(num_needed)
        if new_blocks is None:
            return None
        seq = self._seqs.get(seq_id)
        if seq is None:
            seq = self._seqs[seq_id] = _Sequence()
        if new_blocks:
            seq.blocks.extend(new_blocks)
            seq.ids = None
        start = seq.num_tokens
        seq.num_tokens = start + num_new
        if num_new:
            # Slot mapping for positions start .. start+n-1, computed on the device.
            pos = torch.arange(start, start + num_new, device=self.device)
            block_ids = self._ids(seq)[pos // self.block_size]
            offsets = pos % self.block_size
            # [n, 2, L, H, D]: token-major to match kv_cache[block_ids, :, :, offsets].
            # detach: the cache stores values, never an autograd graph.
            kv = torch.stack((k.detach(), v.detach())).to(device=self.device, dtype=self.dtype)
            self.kv_cache[block_ids, :, :, offsets] = kv.permute(2, 0, 1, 3, 4)
        return AppendResult(tuple(b.block_id for b in new_blocks), seq.num_tokens)

    def free(self, seq_id: Hashable) -> int:
        """Drop ``seq_id`` and return its blocks to the pool, last block first.

        Returns the number of blocks freed. Block contents are not cleared.
        """
        seq = self._get(seq_id)
        del self._seqs[seq_id]
        self.pool.free(seq.blocks[::-1])
        return len(seq.blocks)

    # ------------------------------------------------------------------ reads

    def gather(self, seq_id: Hashable) -> tuple[torch.Tensor, torch.Tensor]:
        """Contiguous copies of ``seq_id``'s K and V, each ``[num_layers, num_tokens, H, D]``.

        One ``index_select`` over the block ids; no Python loop over tokens or blocks.
        """
        seq = self._get(seq_id)
        n = seq.num_tokens
        shape = (self.num_layers, n, self.num_kv_heads, self.head_dim)
        if not seq.blocks:
            empty = self.kv_cache.new_empty(shape)
            return empty, empty.clone()
        blocks = self.kv_cache.index_select(0, self._ids(seq))  # [nb, 2, L, bs, H, D]
        nb = blocks.shape[0]
        flat = blocks.permute(1, 2, 0, 3, 4, 5).reshape(
            2, self.num_layers, nb * self.block_size, self.num_kv_heads, self.head_dim
        )
        return flat[0, :, :n].contiguous(), flat[1, :, :n].contiguous()

    def gather_layer(self, seq_id: Hashable, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """K and V of one layer for ``seq_id``, each ``[num_tokens, num_kv_heads, head_dim]``.

        Selects the sequence's blocks from the strided layer view ``kv_cache[:, :, layer]``,
        so only this layer's data is copied.
        """
        self._check_layer(layer)
        seq = self._get(seq_id)
        n = seq.num_tokens
        if not seq.blocks:
            empty = self.kv_cache.new_empty((0, self.num_kv_heads, self.head_dim))
            return empty, empty.clone()
        layer_view = self.kv_cache[:, :, layer]  # [num_blocks, 2, bs, H, D], a view
        blocks = layer_view.index_select(0, self._ids(seq))  # [nb, 2, bs, H, D]
        nb = blocks.shape[0]
        tokens = blocks.transpose(0, 1).reshape(
            2, nb * self.block_size, self.num_kv_heads, self.head_dim
        )
        return tokens[0, :n], tokens[1, :n]

    def paged_attention(
        self,
        q: torch.Tensor,
        seq_id: Hashable,
        layer: int,
        *,
        causal: bool = True,
        scale: float | None = None,
    ) -> torch.Tensor:
        """Attention of ``q`` over ``seq_id``'s cached K/V at ``layer``, through its block table.

        Args:
            q: ``[q_len, num_q_heads, head_dim]``, ``num_q_heads`` a multiple of
                ``num_kv_heads`` (grouped-query attention: query head ``h`` reads KV head
                ``h // (num_q_heads // num_kv_heads)``, as ``repeat_interleave`` would).
            causal: if True, the queries are the sequence's LAST ``q_len`` tokens (already
                appended): query ``i`` sits at position ``num_tokens - q_len + i`` and sees
                keys ``0 .. num_tokens - q_len + i``. This is a bottom-right aligned causal
                mask, which covers prefill (``q_len == num_tokens``), chunked prefill and
                decode (``q_len == 1``: sees every key). If False every query sees every key.
            scale: softmax scale; default ``1 / sqrt(head_dim)``.

        Returns:
            ``[q_len, num_q_heads, head_dim]`` in the store's dtype, on its device.

        K and V are gathered with one ``index_select`` on the block ids and handed to
        ``torch.nn.functional.scaled_dot_product_attention`` with ``enable_gqa=True``.
        """
        if q.dim() != 3 or q.shape[2] != self.head_dim:
            raise ValueError(
                f"q must be [q_len, num_q_heads, head_dim={self.head_dim}], got {list(q.shape)}"
            )
        num_q_heads = int(q.shape[1])
        if num_q_heads % self.num_kv_heads:
            raise ValueError(
                f"num_q_heads={num_q_heads} is not a multiple of num_kv_heads={self.num_kv_heads}"
            )
        k, v = self.gather_layer(seq_id, layer)  # [S, Hkv, D]
        q_len, num_keys = int(q.shape[0]), int(k.shape[0])
        if num_keys == 0:
            raise ValueError(f"sequence {seq_id!r} holds no tokens to attend to")
        if causal and q_len > num_keys:
            raise ValueError(
                f"causal attention needs q_len <= num_tokens, got {q_len} > {num_keys}"
            )
        qh = q.to(device=self.device, dtype=self.dtype).transpose(0, 1)  # [Hq, q_len, D]
        kh = k.transpose(0, 1)  # [Hkv, S, D]
        vh = v.transpose(0, 1)
        mask: torch.Tensor | None = None
        is_causal = False
        if causal and q_len > 1:
            if q_len == num_keys:
                is_causal = True  # SDPA's top-left mask coincides with bottom-right here
            else:
                q_pos = torch.arange(num_keys - q_len, num_keys, device=self.device)
                k_pos = torch.arange(num_keys, device=self.device)
                mask = k_pos[None, :] <= q_pos[:, None]  # [q_len, S], True = attend
        out = F.scaled_dot_product_attention(
            qh,
            kh,
            vh,
            attn_mask=mask,
            is_causal=is_causal,
            scale=scale if scale is not None else 1.0 / math.sqrt(self.head_dim),
            enable_gqa=num_q_heads != self.num_kv_heads,
        )
        return out.transpose(0, 1)

    # ------------------------------------------------------------------ internals

    def _get(self, seq_id: Hashable) -> _Sequence:
        seq = self._seqs.get(seq_id)
        if seq is None:
            raise KeyError(f"unknown sequence {seq_id!r}")
        return seq

    def _check_layer(self, layer: int) -> None:
        if not 0 <= layer < self.num_layers:
            raise ValueError(f"layer must be in [0, {self.num_layers}), got {layer}")

    def _ids(self, seq: _Sequence) -> torch.Tensor:
        """The block table as a long tensor on the device (cached until the table grows)."""
        ids = seq.ids
        if ids is None:
            ids = torch.tensor(
                [b.block_id for b in seq.blocks], dtype=torch.long, device=self.device
            )
            seq.ids = ids
        return ids
