"""``seqcsv``: sequence lengths without time stamps.

::

    sequence_id,sequence_length,request_type
    a,1200,chat
    b,300,chat
    a,1500,chat

Rows are requests in arrival order; arrivals are synthesised as a Poisson process at
``cfg.rate`` (first at t = 0) from the run's generator, and every request generates
``cfg.output_tokens`` tokens. Rows with the same ``sequence_id`` are the same content: they
share a ``session_id`` (the sequence's index in order of first appearance), so their
synthesised hashes (``synthetic_hashes: auto``) agree on every block both have.
``request_type`` is optional and not used.
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

__all__ = ["SEQCSV_COLUMNS", "SeqCsvLoader"]

SEQCSV_COLUMNS = ("sequence_id", "sequence_length")


@register_trace_format("seqcsv")
class SeqCsvLoader(TraceLoader):
    """Sequence-length CSV; arrivals Poisson at ``cfg.rate`` from the run's generator."""

    sniff_priority = 60

    @classmethod
    def sniff(cls, path: Path, line: str) -> bool:
        names = {c.strip().lower() for c in line.split(",")}
        return set(SEQCSV_COLUMNS) <= names

    @classmethod
    def load(cls, path: Path, ctx: LoadContext) -> TraceRecords:
        ctx.units_per_second(None, "seqcsv")  # no time stamps: reject time_unit
        name = str(path)
        seq_index: dict[str, int] = {}
        records = TraceRecords(file=name, session_id=[])
        assert records.session_id is not None
        for line_no, row in csv_rows(path, SEQCSV_COLUMNS):
            ctx.report.rows_read += 1
            try:
                key = cell(row, "sequence_id", name, line_no)
                text = cell(row, "sequence_length", name, line_no)
                prompt = parse_count(text, name, line_no, "sequence_length")
            except TraceError as err:
                ctx.skip(err)
                continue
            records.session_id.append(seq_index.setdefault(key, len(seq_index)))
            records.prompt_tokens.append(prompt)
        num = len(records.prompt_tokens)
        records.arrival_s = arrival_times("poisson", ctx.cfg.rate, num, ctx.rng).tolist()
        records.output_tokens = [ctx.cfg.output_tokens] * num
        return records
