"""Workload: the :class:`Request` record, synthetic generators and trace loaders.

Public API::

    load_workload(cfg, rng) -> list[Request]          # synthetic or trace, sorted by arrival
    load_workload_with_report(cfg, rng) -> (list[Request], TraceReport | None)
    generate(cfg: SyntheticWorkload, rng) -> list[Request]
    load_trace(cfg: TraceWorkload, rng) -> list[Request]
    load_trace_with_report(cfg, rng) -> (list[Request], TraceReport)
    detect_format(path) -> str
    sample_lengths(dist: LengthDist, n, rng) -> np.ndarray[int64]
    arrival_times(process, rate, n, rng, cv=1.0) -> np.ndarray[float64]
    trace_stats(requests) -> dict[str, float | int]
"""

from kvsim.workload.arrivals import arrival_times
from kvsim.workload.lengths import sample_lengths
from kvsim.workload.request import Request
from kvsim.workload.stats import trace_stats
from kvsim.workload.synthetic import generate
from kvsim.workload.trace_report import TraceReport
from kvsim.workload.traces import (
    TRACE_FORMATS,
    detect_format,
    load_trace,
    load_trace_with_report,
    load_workload,
    load_workload_with_report,
)

__all__ = [
    "TRACE_FORMATS",
    "Request",
    "TraceReport",
    "arrival_times",
    "detect_format",
    "generate",
    "load_trace",
    "load_trace_with_report",
    "load_workload",
    "load_workload_with_report",
    "sample_lengths",
    "trace_stats",
]
