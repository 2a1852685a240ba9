"""Per-step metrics of one allocator replay, and their summary.

Recorded after each recorded step (all memory figures in slots; a slot holds one token):

====================  ======================================================================
``used``              slots holding token states (``Allocator.used_slots``)
``reserved``          slots reserved by live sequences, whether they hold tokens or not
``peak``              the largest ``reserved`` so far (exact, tracked by the allocator)
``internal_frag``     ``reserved - used``: reserved but not holding tokens
``future``            part of ``internal_frag`` reserved for tokens still to be generated
``external_frag``     free slots in holes too small for the next request's reservation
``utilisation``       ``used / reserved`` (token-state utilisation; empty when nothing is
                      reserved)
``failed``            failed allocations and appends so far
``compressions``      compressed page groups so far
``admitted``          sequences admitted at this step (the throughput proxy)
``running``           live sequences after the step
``waiting``           queued requests after the step (request traces only)
``preemptions``       preempted requests so far (request traces only)
====================  ======================================================================

The summary averages over every recorded step, except the ``share_*`` breakdown and
``avg_running``, which average over the *saturated* steps (a request waits for memory, the
regime the vLLM paper measures) when there are any.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kvsim.kv.alloc.base import Allocator

__all__ = ["METRICS", "StepRecorder", "summarize"]

METRICS: tuple[str, ...] = (
    "used",
    "reserved",
    "peak",
    "internal_frag",
    "future",
    "external_frag",
    "utilisation",
    "failed",
    "compressions",
    "admitted",
    "running",
    "waiting",
    "preemptions",
)


class StepRecorder:
    """Appends one row of :data:`METRICS` per recorded step (plain lists; arrays at the end)."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.columns: dict[str, list[float]] = {name: [] for name in METRICS}

    def record(
        self,
        step: int,
        alloc: Allocator,
        need_slots: int,
        admitted: int,
        running: int,
        waiting: int,
        preemptions: int,
    ) -> None:
        """Record the state of ``alloc`` after ``step``; ``need_slots`` is the next
        request's reservation (0 if none) for the external fragmentation."""
        c = self.columns
        used = alloc.used_slots
        reserved = alloc.reserved_slots
        self.steps.append(step)
        c["used"].append(used)
        c["reserved"].append(reserved)
        c["peak"].append(alloc.peak_reserved_slots)
        c["internal_frag"].append(reserved - used)
        c["future"].append(alloc.future_slots)
        c["external_frag"].append(
            alloc.external_fragmentation_slots(need_slots) if need_slots else 0
        )
        c["utilisation"].append(used / reserved if reserved else np.nan)
        c["failed"].append(alloc.num_failed)
        c["compressions"].append(alloc.num_compressions)
        c["admitted"].append(admitted)
        c["running"].append(running)
        c["waiting"].append(waiting)
        c["preemptions"].append(preemptions)

    def arrays(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``(steps, {metric: array})``; ``utilisation`` is float64, the rest int64."""
        steps = np.asarray(self.steps, dtype=np.int64)
        out = {
            name: np.asarray(vals, dtype=np.float64 if name == "utilisation" else np.int64)
            for name, vals in self.columns.items()
        }
        return steps, out


def _mean(x: np.ndarray) -> float:
    x = x[~np.isnan(x)] if x.dtype.kind == "f" else x
    return float(x.mean()) if x.size else float("nan")


def summarize(
    metrics: dict[str, np.ndarray], alloc: Allocator, num_slots: int, counters: dict[str, Any]
) -> dict[str, Any]:
    """Peak/average figures of one replay (see the module doc for the averaging windows)."""
    used = metrics["used"].astype(np.float64)
    reserved = metrics["reserved"].astype(np.float64)
    saturated = metrics["waiting"] > 0
    window = saturated if saturated.any() else np.ones_like(saturated, dtype=bool)
    cap = float(num_slots) if num_slots else float("nan")
    ext = metrics["external_frag"][window].astype(np.float64)
    fut = metrics["future"][window].astype(np.float64)
    u, r = used[window], reserved[window]
    shares = {
        "share_token_states": _mean(u / cap),
        "share_reserved_future": _mean(fut / cap),
        "share_over_reserved": _mean((r - u - fut) / cap),
        "share_external_frag": _mean(ext / cap),
        "share_free": _mean((cap - r - ext) / cap),
    }
    return {
        "peak_reserved_slots": alloc.peak_reserved_slots,
        "avg_reserved_slots": _mean(reserved),
        "peak_used_slots": int(metrics["used"].max(initial=0)),
        "avg_used_slots": _mean(used),
        "avg_internal_frag_slots": _mean(metrics["internal_frag"].astype(np.float64)),
        "avg_external_frag_slots": _mean(metrics["external_frag"].astype(np.float64)),
        "avg_utilisation": _mean(metrics["utilisation"]),
        **shares,
        "saturated_steps": int(saturated.sum()),
        "avg_running": _mean(metrics["running"][window].astype(np.float64)),
        "peak_running": int(metrics["running"].max(initial=0)),
        "admitted_total": int(metrics["admitted"].sum()),
        "avg_admitted_per_step": _mean(metrics["admitted"].astype(np.float64)),
        "failed_allocations": alloc.num_failed,
        "compressions": alloc.num_compressions,
        **counters,
    }
