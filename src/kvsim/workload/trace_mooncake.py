"""Mooncake FAST'25 trace format (JSONL).

One JSON object per line::

    {"timestamp": 0, "input_length": 6758, "output_length": 500, "hash_ids": [0, 1, ..., 13]}

``timestamp`` is in milliseconds; ``hash_ids`` are prefix-chained ids of 512-token blocks,
``ceil(input_length / 512)`` of them: the last one may name a *partial* block. Only the ids
of full blocks are kept (``floor(input_length / 512)``), because only full blocks can be
shared. Blank lines are skipped. Arrivals are relative to the earliest timestamp
(``time_unit`` overrides the millisecond unit).
"""

from __future__ import annotations

import json
from pathlib import Path

from kvsim.errors import TraceError
from kvsim.workload.trace_common import (
    TraceLoader,
    TraceRecords,
    json_count,
    json_time,
    open_text,
    register_trace_format,
)
from kvsim.workload.trace_report import LoadContext

__all__ = ["MOONCAKE_BLOCK_SIZE", "MooncakeLoader"]

MOONCAKE_BLOCK_SIZE = 512
_FIELDS = ("timestamp", "input_length", "output_length", "hash_ids")


@register_trace_format("mooncake")
class MooncakeLoader(TraceLoader):
    """Mooncake JSONL; arrivals in seconds from the earliest timestamp."""

    time_unit = "ms"

    sniff_priority = 20

    @classmethod
    def sniff(cls, path: Path, line: str) -> bool:
        return line.startswith("{")  # a malformed object is reported with its line

    @classmethod
    def load(cls, path: Path, ctx: LoadContext) -> TraceRecords:
        name = str(path)
        per_s = ctx.units_per_second(cls.time_unit, "mooncake")
        records = TraceRecords(file=name, hash_block_size=MOONCAKE_BLOCK_SIZE, block_hashes=[])
        assert records.block_hashes is not None
        with open_text(path) as fh:
            for line_no, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                ctx.report.rows_read += 1
                try:
                    obj = _parse_object(line, name, line_no)
                    stamp = json_time(obj["timestamp"], name, line_no, "timestamp")
                    prompt = json_count(obj["input_length"], name, line_no, "input_length")
                    output = json_count(obj["output_length"], name, line_no, "output_length")
                    hashes = _full_block_ids(obj["hash_ids"], prompt, name, line_no)
                except TraceError as err:
                    ctx.skip(err)
                    continue
                records.arrival_s.append(stamp / per_s)
                records.prompt_tokens.append(prompt)
                records.output_tokens.append(output)
                records.block_hashes.append(hashes)
        if records.arrival_s:
            start = min(records.arrival_s)
            records.arrival_s = [t - start for t in records.arrival_s]
        return records


def _parse_object(line: str, name: str, line_no: int) -> dict[str, object]:
    """Decode one line into a dict holding every required field."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise TraceError(
            name, line_no, None, f"invalid JSON: {exc.msg} (column {exc.colno})"
        ) from None
    if not isinstance(obj, dict):
        raise TraceError(name, line_no, None, f"expected a JSON object, got {type(obj).__name__}")
    for key in _FIELDS:
        if key not in obj:
            raise TraceError(name, line_no, key, "missing")
    return obj


def _full_block_ids(value: object, prompt: int, name: str, line_no: int) -> tuple[int, ...]:
    """The ids of the ``prompt // 512`` full blocks, after checking the whole list."""
    if not isinstance(value, list):
        raise TraceError(name, line_no, "hash_ids", f"expected a list, got {value!r}")
    full = prompt // MOONCAKE_BLOCK_SIZE
    ceil = -(-prompt // MOONCAKE_BLOCK_SIZE)
    if not full <= len(value) <= ceil:
        expected = f"{full}" if full == ceil else f"{full} or {ceil}"
        raise TraceError(
            name,
            line_no,
            "hash_ids",
            f"{len(value)} ids for input_length {prompt}; expected {expected} "
            f"({MOONCAKE_BLOCK_SIZE} tokens per block)",
        )
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or item < 0:
            raise TraceError(
                name, line_no, "hash_ids", f"ids must be non-negative integers, got {item!r}"
            )
    return tuple(value[:full])
