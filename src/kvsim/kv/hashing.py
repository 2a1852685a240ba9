"""Map a request's prefix-chained block hashes to the engine's block size."""

from __future__ import annotations

from collections.abc import Sequence

from kvsim.errors import ConfigError

__all__ = ["rechunk_hashes"]


def rechunk_hashes(
    hashes: Sequence[int], src_block: int, dst_block: int, num_tokens: int
) -> list[int]:
    """Hashes of the full ``dst_block``-token blocks of a ``num_tokens``-token prompt.

    ``hashes[i]`` identifies the prefix ``[0, (i+1)*src_block)`` (prefix-chained, >= 0).

    * ``dst == src``: the same hashes (full blocks only).
    * ``dst < src`` (``src % dst == 0``): block j lies inside source block ``j*dst // src``;
      its hash is ``hashes[m] * r + offset`` with ``r = src // dst``: unique for distinct
      (m, offset) and identical across requests exactly when the prefix is.
    * ``dst > src`` (``dst % src == 0``): block j ends with source block ``(j+1)*r - 1``, whose
      chained hash identifies the whole prefix.

    A destination block is emitted only if it is full AND covered by known source hashes
    (a source block is known for ``i < len(hashes)``, covering ``len(hashes)*src`` tokens).
    """
    covered = min(num_tokens, len(hashes) * src_block)
    n_full = covered // dst_block
    if n_full <= 0:
        return []
    if dst_block == src_block:
        return list(hashes[:n_full])
    if dst_block < src_block:
        if src_block % dst_block:
            raise ConfigError(
                "scheduler.block_size",
                f"{dst_block} does not divide the trace's hash block size {src_block}",
            )
        r = src_block // dst_block
        return [hashes[j // r] * r + j % r for j in range(n_full)]
    if dst_block % src_block:
        raise ConfigError(
            "scheduler.block_size",
            f"{dst_block} is not a multiple of the trace's hash block size {src_block}",
        )
    r = dst_block // src_block
    return [hashes[(j + 1) * r - 1] for j in range(n_full)]
