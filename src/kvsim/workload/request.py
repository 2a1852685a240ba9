"""The immutable request record shared by every driver."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Request"]


@dataclass(frozen=True, slots=True)
class Request:
    """One inference request as it arrives; runtime state lives in the instance, not here.

    Invariants:
      * ``arrival_s >= 0``; ``prompt_tokens >= 1``; ``output_tokens >= 1``.
      * ``block_hashes`` are prefix-chained: ``block_hashes[i]`` identifies the whole prompt
        prefix ``[0, (i + 1) * hash_block_size)``, so two requests share block ``i`` iff they
        share every block before it. There is one hash per *full* block of the prompt at
        ``hash_block_size`` tokens per block: ``len(block_hashes) == prompt_tokens //
        hash_block_size`` when hashes are present (Mooncake traces also give the trailing
        partial block an id; the loader drops it). Traces without hashes leave it empty.
      * hashes are non-negative ints.
      * ``output_block_hashes`` (optional) continue the chain past the prompt: together,
        ``block_hashes + output_block_hashes`` are the hashes of the full blocks of the
        conversation ``prompt + output`` (``(prompt + output) // hash_block_size`` of them at
        most). Only a generator that knows the next turn's prompt can provide them, and only
        a request that a later turn of its session follows needs them (that turn re-sends
        the conversation and can hit the decode-filled blocks; the engine then caches them,
        as vLLM does). The synthetic generator gives them to exactly those turns; a
        session's last turn, a session-less request and a trace request have ``()``.
    """

    request_id: int
    arrival_s: float
    prompt_tokens: int
    output_tokens: int
    session_id: int = -1
    block_hashes: tuple[int, ...] = field(default=(), repr=False)
    hash_block_size: int = 16
    output_block_hashes: tuple[int, ...] = field(default=(), repr=False)
    priority: int = 0
    slo_ttft_ms: float | None = None
    synthetic_hashes: bool = False
