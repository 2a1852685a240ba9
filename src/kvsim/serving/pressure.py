"""Memory pressure on one instance: what happens when a running sequence needs a block that
is not free (``scheduler.memory_pressure``).

``preempt``  the back of the running list is preempted (recompute, or swap to host memory
             with PCIe transfer time) and resumes at the head of the waiting queue (vLLM);
``evict``    a victim among the sequences not yet scheduled this step is evicted — the one
             that arrived first (``evict_victim: fifo``) or was (re)admitted least recently
             (``lru``) — its KV is dropped and it is re-queued through the queue policy to be
             recomputed (counted in ``evictions``);
``reject``   the sequence that needs the block fails late: its KV is freed and it ends
             rejected (``kv_pressure``); at admission a request whose blocks are not free is
             rejected at once instead of waiting (so safe reservation rejects early).

Every function here keeps the instance invariants: a victim leaves ``running`` with no blocks,
``running[:i]`` (already scheduled this step) is never touched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kvsim.serving.seq import Seq, SeqState

if TYPE_CHECKING:
    from kvsim.serving.instance import Instance

__all__ = ["relieve"]


def relieve(inst: Instance, i: int, now: float) -> int:
    """Free memory once for ``running[i]``; returns swapped-out tokens (preempt + swap)."""
    policy = inst.memory_pressure
    if policy == "preempt":
        return inst.preempt(inst.running[-1], now)
    if policy == "evict":
        _evict(inst, _victim(inst, i), now)
        return 0
    seq = inst.running.pop(i)
    inst.drop_kv(seq)
    seq.state = SeqState.REJECTED
    inst.hooks.reject(inst, seq, now, "kv_pressure", False)
    return 0


def _victim(inst: Instance, i: int) -> Seq:
    cands = inst.running[i:]
    if inst.evict_lru:
        return min(cands, key=_admitted)
    return min(cands, key=_arrival)


def _admitted(seq: Seq) -> float:
    return seq.admitted_s


def _arrival(seq: Seq) -> tuple[float, int]:
    return seq.req.arrival_s, seq.req.request_id


def _evict(inst: Instance, seq: Seq, now: float) -> None:
    inst.running.remove(seq)
    inst.drop_kv(seq)
    seq.num_computed = 0
    seq.prefill_target = seq.req.prompt_tokens + seq.num_output
    seq.num_cached_blocks = 0
    seq.state = SeqState.WAITING
    seq.num_evictions += 1
    inst.num_evictions += 1
    inst.waiting.push(seq)
    inst.obs.on_evict(seq, now)
