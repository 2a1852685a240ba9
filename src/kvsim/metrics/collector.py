"""Run-time recording: lifecycle counters, the event stream hook and the dt-grid sampler.

The collector only records (plain lists and counters); it never plots or writes files. Events
go to an optional ``event_sink(record)`` supplied by the caller (a null object when off).
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
    ) -> None:
        self.instances = instances
        self.dt_s = dt_s
        self.block_bytes = block_bytes
        self.sink = event_sink
        self.num_finished = 0
        self.num_rejected = 0
        self.num_preemptions = 0
        self.rows: list[tuple[float, ...]] = []
        self._next_i = 0
        self._last = (0, 0, 0, 0)  # tokens, finished, rejected, preemptions at previous row

    # -- observer hooks -----------------------------------------------------------------
    def _emit(self, kind: str, seq: Seq, now: float, **extra: object) -> None:
        if self.sink is not None:
            rec = {
                "time_ms": now * 1e3,
                "type": kind,
                "request_id": seq.req.request_id,
                "instance": seq.instance,
            }
            rec.update(extra)
            self.sink(rec)

    def on_arrival(self, seq: Seq, now: float) -> None:
        self._emit("arrival", seq, now)

    def on_admit(self, seq: Seq, now: float) -> None:
        self._emit("start_prefill", seq, now, cached_tokens=seq.cached_tokens)

    def on_first_token(self, seq: Seq, now: float) -> None:
        self._emit("first_token", seq, now)

    def on_finish(self, seq: Seq, now: float) -> None:
        self.num_finished += 1
        self._emit("finish", seq, now)

    def on_preempt(self, seq: Seq, now: float) -> None:
        self.num_preemptions += 1
        self._emit("preempt", seq, now, swapped=seq.swapped)

    def on_reject(self, seq: Seq, now: float) -> None:
        self.num_rejected += 1
        self._emit("reject", seq, now, reason=seq.reject_reason)

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
            *per_inst,
            queued,
            prefill,
            decode,
            tokens - p_tok,
            self.num_finished - p_fin,
            self.num_rejected - p_rej,
            self.num_preemptions - p_pre,
        )
        self._last = (tokens, self.num_finished, self.num_rejected, self.num_preemptions)
        self.rows.append(row)

    def timeseries_columns(self) -> list[str]:
        n = len(self.instances)
        return [
            "time_ms",
            "kv_used_bytes",
            *(f"kv_used_bytes_inst{i}" for i in range(n)),
            "queue_depth",
            "active_prefill",
            "active_decode",
            "tokens_generated_delta",
            "finished_delta",
            "rejects_delta",
            "preemptions_delta",
        ]
