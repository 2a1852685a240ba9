"""Runtime state of one request on one instance."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from kvsim.kv.block_pool import KVBlock
from kvsim.workload.request import Request

__all__ = ["Seq", "SeqState"]


class SeqState(IntEnum):
    """Lifecycle: WAITING <-> RUNNING -> FINISHED; REJECTED and UNFINISHED are terminal too.
    TRANSFER: the KV is moving to the decode instance (phase-level routing); GLOBAL: waiting
    in the cluster-wide queue for an instance below ``max_queue``."""

    WAITING = 0
    RUNNING = 1
    FINISHED = 2
    REJECTED = 3
    UNFINISHED = 4
    TRANSFER = 5
    GLOBAL = 6


@dataclass(slots=True, eq=False)
class Seq:
    """Token and block accounting of a request being served.

    Token model (vLLM): a prefill of ``prefill_target`` tokens produces one output token; every
    decode step feeds the last output token (its KV is stored) and produces the next. So while
    running past prefill, ``num_computed == prompt_tokens + num_output - 1``, and the most KV a
    request ever stores is ``max_kv_tokens = prompt + output - 1``.

    Invariants:
      * ``num_computed <= len(blocks) * block_size`` and ``len(blocks)`` is the minimum for
        ``num_computed`` (lazy) or for ``max_kv_tokens`` (safe admission);
      * ``prefilling`` iff ``num_computed < prefill_target``;
      * after a recompute preemption ``num_computed == 0`` and ``prefill_target`` becomes
        ``prompt + num_output`` (prompt and generated tokens are recomputed).
    """

    req: Request
    hashes: list[int]
    max_kv_tokens: int
    prefill_target: int
    num_computed: int = 0
    num_output: int = 0
    blocks: list[KVBlock] = field(default_factory=list)
    num_cached_blocks: int = 0
    swapped: bool = False
    state: SeqState = SeqState.WAITING
    instance: int = -1
    first_scheduled_s: float = -1.0
    first_token_s: float = -1.0
    finish_s: float = -1.0
    cached_tokens: int = -1
    num_preemptions: int = 0
    num_evictions: int = 0
    reject_reason: str = ""
    admitted_s: float = -1.0
    num_retries: int = 0
    tried: tuple[int, ...] = ()
    prefill_instance: int = -1
    handoff_s: float = 0.0

    @classmethod
    def from_request(cls, req: Request, hashes: list[int]) -> Seq:
        prompt = req.prompt_tokens
        return cls(req, hashes, prompt + req.output_tokens - 1, prompt)

    @property
    def prefilling(self) -> bool:
        return self.num_computed < self.prefill_target
