"""Importing this module registers every built-in trace format (one module per format)."""

from __future__ import annotations

from kvsim.workload import (  # noqa: F401  (imported for their registration side effect)
    trace_agentic,
    trace_azure,
    trace_burstgpt,
    trace_generic,
    trace_lengths,
    trace_mooncake,
    trace_seqcsv,
    trace_servegen,
    trace_splitwise,
    trace_whitespace,
)
