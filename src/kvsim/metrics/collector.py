"""Run-time recording: lifecycle counters, the event stream hook and the dt-grid sampler.

The collector only records (plain lists and counters); it never plots or writes files. Events
go to an optional ``event_sink(record)`` supplied by the caller (a null object when off).

Event records (``events.jsonl``) carry ``time_ms``, ``event``, ``request_id`` and
``gpu_index`` (-1 when the request is on no GPU, e.g. in the global queue) plus a few
event-specific fields; ``event`` is one of arrival, enqueue, start_prefill, first_token,
handoff_start, handoff_complete, preempt, evict, retry, reject, finish.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from kvsim.serving.seq import Seq

__all__ = ["Collector", "Sampled"]

EventSink = Callable[[dict], None]


class Sampled(Protocol):
    """What the sampler reads from each instance."""

    def snapshot(self, time_s: float) -> tuple[int, int, int, int, int]: ...


def _zero() -> int:
    return 0


class Collector:
    """Implements :class:`kvsim.serving.instance.InstanceObserver`.

    Timeseries rows are taken on the exact grid ``t = i * dt`` (i = 0, 1, ...): a row at ``t``
    shows the state after every event at or before ``t``, including the decode steps of running
    spans that ended at or before ``t``. Deltas count what happened in ``(t - dt, t]``.
    """

    def __init__(
        self,
        instances: Sequence[Sampled],
        dt_s: float,
        block_bytes: float,
        event_sink: EventSink | None = None,
        global_depth: Callable[[], int] = _zero,
        per_gpu: bool = True,
    ) -> None:
        self.instances = instances
        self.per_gpu = per_gpu
        self.dt_s = dt_s
        self.block_bytes = block_bytes
        self.sink = event_sink
        self.global_depth = global_depth
        self.num_finished = 0
        self.num_rejected = 0
        self.num_preemptions = 0
        self.rows: list[tuple[float, ...]] = []
        self._next_i = 0
        self._last = (0, 0, 0, 0)  # tokens, finished, rejected, preemptions at previous row

    @property
    def streams_events(self) -> bool:
        """Whether lifecycle hooks are written out as they come (then they must come in time
        order; otherwise an instance may report a first token it already knows ahead of time)."""
        return self.sink is not None

    # -- observer hooks -----------------------------------------------------------------
    def _emit(self, kind: str, seq: Seq, now: float, gpu: int, **extra: object) -> None:
        if self.sink is not None:
            rec = {
                "time_ms": now * 1e3,
                "event": kind,
                "request_id": seq.req.request_id,
                "gpu_index": gpu,
            }
            rec.update(extra)
            self.sink(rec)

    def on_arrival(self, seq: Seq, now: float) -> None:
        if self.sink is not None:
            self._emit("arrival", seq, now, -1)

    def on_enqueue(self, seq: Seq, now: float, gpu: int) -> None:
        """Queued on instance ``gpu`` (-1: the cluster-wide global queue)."""
        if self.sink is not None:
            self._emit("enqueue", seq, now, gpu)

    def on_retry(self, seq: Seq, now: float, gpu: int) -> None:
        self._emit("retry", seq, now, gpu, reason=seq.reject_reason)

    def on_admit(self, seq: Seq, now: float) -> None:
        if self.sink is not None:
            self._emit("start_prefill", seq, now, seq.instance, cached_tokens=seq.cached_tokens)

    def on_first_token(self, seq: Seq, now: float) -> None:
        if self.sink is not None:
            self._emit("first_token", seq, now, seq.instance)

    def on_handoff_start(self, seq: Seq, now: float, dst: int) -> None:
        self._emit("handoff_start", seq, now, seq.prefill_instance, dst_gpu_index=dst)

    def on_handoff_complete(self, seq: Seq, now: float) -> None:
        self._emit("handoff_complete", seq, now, seq.instance, src_gpu_index=seq.prefill_instance)

    def on_finish(self, seq: Seq, now: float) -> None:
        self.num_finished += 1
        if self.sink is not None:
            self._emit("finish", seq, now, seq.instance)

    def on_preempt(self, seq: Seq, now: float) -> None:
        self.num_preemptions += 1
        self._emit("preempt", seq, now, seq.instance, swapped=seq.swapped)

    def on_evict(self, seq: Seq, now: float) -> None:
        self._emit("evict", seq, now, seq.instance)

    def on_reject(self, seq: Seq, now: float) -> None:
        self.num_rejected += 1
        self._emit("reject", seq, now, seq.instance, reason=seq.reject_reason)

    # -- sampler ------------------------------------------------------------------------
    def sample_before(self, time_s: float) -> None:
        """Take every grid row with ``t < time_s`` not taken yet (call before the clock moves
        to ``time_s``)."""
        dt = self.dt_s
        while self._next_i * dt < time_s:
            self._take_row(self._next_i * dt)
            self._next_i += 1

    def sample_through(self, time_s: float) -> None:
        """Take every grid row with ``t <= time_s`` (end of run)."""
        dt = self.dt_s
        while self._next_i * dt <= time_s:
            self._take_row(self._next_i * dt)
            self._next_i += 1

    def _take_row(self, t: float) -> None:
        bb = self.block_bytes
        per_inst = []
        tokens = prefill = decode = queued = 0
        for inst in self.instances:
            used, tok, pf, dc, q = inst.snapshot(t)
            per_inst.append(used * bb)
            tokens += tok
            prefill += pf
            decode += dc
            queued += q
        p_tok, p_fin, p_rej, p_pre = self._last
        row = (
            t * 1e3,
            float(sum(per_inst)),
            *(per_inst if self.per_gpu else ()),
            prefill,
            decode,
            queued,
            self.global_depth(),
            tokens - p_tok,
            self.num_finished - p_fin,
            self.num_rejected - p_rej,
            self.num_preemptions - p_pre,
        )
        self._last = (tokens, self.num_finished, self.num_rejected, self.num_preemptions)
        self.rows.append(row)

    def timeseries_columns(self) -> list[str]:
        """The shared output contract: KV bytes in use in ``vram_used`` / ``vram_gpu{N}``
        (per-GPU columns only with ``per_gpu``; ``outputs.per_gpu_timeseries``)."""
        n = len(self.instances) if self.per_gpu else 0
        return [
            "time_ms",
            "vram_used",
            *(f"vram_gpu{i}" for i in range(n)),
            "active_prefill",
            "active_decode",
            "queue_depth",
            "global_queue_depth",
            "tokens_generated_delta",
            "finished_delta",
            "rejects_delta",
            "preemptions_delta",
        ]
