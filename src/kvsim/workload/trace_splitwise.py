"""``splitwise``: the traces the Splitwise paper (ISCA'24) released are the Azure LLM inference
trace 2023 (``TIMESTAMP, ContextTokens, GeneratedTokens``; the dataset's own description
says so), so this format is an alias of ``azure`` with identical parsing and rules.
``format: auto`` reports such files as ``azure``.
"""

from __future__ import annotations

from pathlib import Path

from kvsim.workload.trace_azure import AzureLoader
from kvsim.workload.trace_common import register_trace_format

__all__ = ["SplitwiseLoader"]


@register_trace_format("splitwise")
class SplitwiseLoader(AzureLoader):
    """Alias of :class:`AzureLoader` (same layout); never chosen by ``auto``."""

    @classmethod
    def sniff(cls, path: Path, line: str) -> bool:
        return False
