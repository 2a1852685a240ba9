"""``azure``: the Azure LLM inference trace 2023 (Splitwise, ISCA'24), CRLF lines::

    TIMESTAMP,ContextTokens,GeneratedTokens
    2023-11-16 18:17:03.9799600,4808,10

Arrivals are seconds since the earliest ``TIMESTAMP`` (a date-time, 100 ns resolution,
parsed exactly into integer nanoseconds); there are no hashes and no sessions.
"""

from __future__ import annotations

from pathlib import Path

from kvsim.errors import TraceError
from kvsim.workload.trace_common import (
    TraceLoader,
    TraceRecords,
    parse_count,
    register_trace_format,
)
from kvsim.workload.trace_csv import NS_PER_S, cell, csv_rows, parse_timestamp_ns
from kvsim.workload.trace_report import LoadContext

__all__ = ["AZURE_COLUMNS", "AzureLoader", "parse_stamp"]

AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")


def parse_stamp(text: str, name: str, line_no: int, col: str, cache: dict[str, int]) -> int:
    """A date-time cell in integer nanoseconds; :class:`TraceError` if malformed."""
    stamp = parse_timestamp_ns(text, cache)
    if stamp is None:
        raise TraceError(
            name,
            line_no,
            col,
            f"expected 'YYYY-MM-DD HH:MM:SS[.fraction][+HH:MM]', got {text!r}",
        )
    return stamp


@register_trace_format("azure")
class AzureLoader(TraceLoader):
    """Azure LLM inference 2023 CSV; arrivals in seconds from the earliest time stamp."""

    sniff_priority = 30

    @classmethod
    def sniff(cls, path: Path, line: str) -> bool:
        names = {c.strip().lower() for c in line.split(",")}
        return {c.lower() for c in AZURE_COLUMNS} <= names

    @classmethod
    def load(cls, path: Path, ctx: LoadContext) -> TraceRecords:
        ctx.units_per_second(None, cls.format_name)  # date-times: reject time_unit
        name = str(path)
        stamps: list[int] = []
        records = TraceRecords(file=name)
        day_cache: dict[str, int] = {}
        for line_no, row in csv_rows(path, AZURE_COLUMNS):
            ctx.report.rows_read += 1
            try:
                stamp = parse_stamp(
                    cell(row, "TIMESTAMP", name, line_no), name, line_no, "TIMESTAMP", day_cache
                )
                context = cell(row, "ContextTokens", name, line_no)
                prompt = parse_count(context, name, line_no, "ContextTokens")
                generated = cell(row, "GeneratedTokens", name, line_no)
                output = parse_count(generated, name, line_no, "GeneratedTokens")
            except TraceError as err:
                ctx.skip(err)
                continue
            stamps.append(stamp)
            records.prompt_tokens.append(prompt)
            records.output_tokens.append(output)
        if stamps:
            first = min(stamps)
            records.arrival_s = [(s - first) / NS_PER_S for s in stamps]
        return records
