"""``lengths``: per-request length tables (ShareGPT and arXiv summarisation, as shipped by
Sarathi-Serve and Vidur)::

    num_prefill_tokens,num_decode_tokens,num_total_tokens,pd_ratio
    3772,54,3826,69.85185185185185

One row = one request with ``num_prefill_tokens`` prompt and ``num_decode_tokens`` output
tokens (both must be >= 1); the other columns are optional and ignored. There are no time
stamps: arrivals are a Poisson process at ``cfg.rate`` (first at t = 0) drawn from the run's
generator. Every row is distinct content, so under ``synthetic_hashes: auto`` each request
gets its own synthetic hash stream (nothing is shared between requests).
"""

from __future__ import annotations

from pathlib import Path

from kvsim.errors import TraceError
from kvsim.workload.arrivals import arrival_times
from kvsim.workload.trace_common import (
    TraceLoader,
    TraceRecords,
    parse_count,
    register_trace_format,
)
from kvsim.workload.trace_csv import cell, csv_rows
from kvsim.workload.trace_report import LoadContext

__all__ = ["LENGTHS_COLUMNS", "LengthsLoader"]

LENGTHS_COLUMNS = ("num_prefill_tokens", "num_decode_tokens")


@register_trace_format("lengths")
class LengthsLoader(TraceLoader):
    """Length table; Poisson arrivals at ``cfg.rate``; one synthetic stream per row."""

    sniff_priority = 50

    @classmethod
    def sniff(cls, path: Path, line: str) -> bool:
        names = {c.strip().lower() for c in line.split(",")}
        return set(LENGTHS_COLUMNS) <= names

    @classmethod
    def load(cls, path: Path, ctx: LoadContext) -> TraceRecords:
        ctx.units_per_second(None, "lengths")  # no time stamps: reject time_unit
        name = str(path)
        records = TraceRecords(file=name, rows_are_content=True)
        for line_no, row in csv_rows(path, LENGTHS_COLUMNS):
            ctx.report.rows_read += 1
            try:
                prefill = cell(row, "num_prefill_tokens", name, line_no)
                prompt = parse_count(prefill, name, line_no, "num_prefill_tokens")
                decode = cell(row, "num_decode_tokens", name, line_no)
                output = parse_count(decode, name, line_no, "num_decode_tokens")
            except TraceError as err:
                ctx.skip(err)
                continue
            records.prompt_tokens.append(prompt)
            records.output_tokens.append(output)
        num = len(records.prompt_tokens)
        records.arrival_s = arrival_times("poisson", ctx.cfg.rate, num, ctx.rng).tolist()
        return records
