"""The memory study (``kvsim memory``): allocator replay on alloc/free or request traces.

* :mod:`kvsim.memory.config` — the pydantic schema, presets and ``--set`` loading;
* :mod:`kvsim.memory.inputs` — the alloc/free generator and request-trace readers;
* :mod:`kvsim.memory.replay` — step-by-step replay against one allocator;
* :mod:`kvsim.memory.metrics` — per-step metrics and their summary;
* :mod:`kvsim.memory.study` — the driver and its run directory.

Allocators live in :mod:`kvsim.kv.alloc`; plots in :mod:`kvsim.report.memory_plots`.
"""

from __future__ import annotations

from kvsim.memory.config import MemoryConfig, list_memory_presets, load_memory_config
from kvsim.memory.study import MemoryResult, run_memory_study

__all__ = [
    "MemoryConfig",
    "MemoryResult",
    "list_memory_presets",
    "load_memory_config",
    "run_memory_study",
]
