"""The TTFT estimate of the cache replay (no queueing).

For a prompt of ``P`` tokens whose first ``H`` tokens hit (``H = hit_blocks * block_size``)::

    missed   = max(P - H, 1)          # the last prompt token is always computed (as vLLM)
    attn_ctx = sum over new tokens i in [P - missed, P) of (i + 1)
             = (P (P + 1) - h (h + 1)) / 2          with h = P - missed
    compute  = roofline.step_time(num_tokens=missed, attn_ctx, kv_read_tokens=P)
    TTFT     = compute + load_time       # load_time: hits below the top tier (TierStack)

and the no-cache baseline is ``roofline.step_time(P, P (P + 1) / 2, P)``. The prefill runs as
one iteration alone on its replica (no batching, no chunking, no queueing): the estimate
isolates what caching saves.
"""

from __future__ import annotations

from dataclasses import dataclass

from kvsim.perf.roofline import RooflineModel

__all__ = ["PrefillTimer"]


@dataclass(frozen=True, slots=True)
class PrefillTimer:
    """Prefill seconds of a prompt given how many leading tokens are cached."""

    model: RooflineModel

    def compute_s(self, prompt_tokens: int, hit_tokens: int) -> float:
        """Seconds to prefill the ``prompt_tokens - hit_tokens`` missed tokens (at least 1)."""
        p = prompt_tokens
        missed = max(p - hit_tokens, 1)
        h = p - missed
        ctx = (p * (p + 1) - h * (h + 1)) / 2.0
        return self.model.step_time(missed, ctx, p)

    def nocache_s(self, prompt_tokens: int) -> float:
        """Seconds to prefill the whole prompt."""
        return self.compute_s(prompt_tokens, 0)
