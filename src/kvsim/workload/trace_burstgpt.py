"""``burstgpt``: the BurstGPT trace (Azure OpenAI GPT usage, KDD'25)::

    Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type
    5,ChatGPT,472,18,490,Conversation log
    45,GPT-4,1087,0,1087,API log

``Timestamp`` is seconds since the trace start (``time_unit`` overrides), kept on the
trace's own clock. ``Request tokens`` must be >= 1. A row with 0 ``Response tokens`` is a
failed request: excluded by default (counted in the report as ``rows_excluded`` and
``details.failed_excluded``); with ``keep_failed: true`` it is kept as a request with a
1-token output (its prefill happened; the engine needs >= 1 output token) and counted in
``details.failed_kept``. ``Model``, ``Total tokens`` and ``Log Type`` must be present; they
are validated but a :class:`Request` has no field for them. An optional ``Session ID``
column (any text) groups requests into sessions (ids by order of first appearance), which
get per-session synthetic hashes under ``synthetic_hashes: auto``.
"""

from __future__ import annotations

from pathlib import Path

from kvsim.errors import TraceError
from kvsim.workload.trace_common import (
    TraceLoader,
    TraceRecords,
    parse_count,
    parse_nonneg_int,
    parse_time,
    register_trace_format,
)
from kvsim.workload.trace_csv import cell, csv_rows
from kvsim.workload.trace_report import LoadContext

__all__ = ["BURSTGPT_COLUMNS", "BurstGptLoader"]

BURSTGPT_COLUMNS = (
    "Timestamp",
    "Model",
    "Request tokens",
    "Response tokens",
    "Total tokens",
    "Log Type",
)
_SESSION = "Session ID"


@register_trace_format("burstgpt")
class BurstGptLoader(TraceLoader):
    """BurstGPT CSV; arrivals in seconds as in the trace; failed rows excluded by default."""

    time_unit = "s"

    sniff_priority = 40

    @classmethod
    def sniff(cls, path: Path, line: str) -> bool:
        names = {c.strip().lower() for c in line.split(",")}
        return {"timestamp", "request tokens", "response tokens"} <= names

    @classmethod
    def load(cls, path: Path, ctx: LoadContext) -> TraceRecords:
        name = str(path)
        per_s = ctx.units_per_second(cls.time_unit, "burstgpt")
        records = TraceRecords(file=name)
        sessions: list[int] = []
        session_index: dict[str, int] = {}
        has_session = False
        for line_no, row in csv_rows(path, BURSTGPT_COLUMNS, (_SESSION,)):
            ctx.report.rows_read += 1
            has_session = has_session or _SESSION in row
            try:
                stamp, prompt, response = _parse_row(row, name, line_no)
            except TraceError as err:
                ctx.skip(err)
                continue
            if response == 0:
                if not ctx.cfg.keep_failed:
                    ctx.report.rows_excluded += 1
                    ctx.report.count("failed_excluded")
                    continue
                ctx.report.count("failed_kept")
                response = 1
            records.arrival_s.append(stamp / per_s)
            records.prompt_tokens.append(prompt)
            records.output_tokens.append(response)
            key = row.get(_SESSION, "").strip()
            sessions.append(session_index.setdefault(key, len(session_index)) if key else -1)
        if has_session:
            records.session_id = sessions
        return records


def _parse_row(row: dict[str, str], name: str, line_no: int) -> tuple[float, int, int]:
    """``(timestamp, request tokens, response tokens)``; checks the other columns."""
    stamp = parse_time(cell(row, "Timestamp", name, line_no), name, line_no, "Timestamp")
    cell(row, "Model", name, line_no)
    prompt = parse_count(
        cell(row, "Request tokens", name, line_no), name, line_no, "Request tokens"
    )
    response = parse_nonneg_int(
        cell(row, "Response tokens", name, line_no), name, line_no, "Response tokens"
    )
    parse_nonneg_int(cell(row, "Total tokens", name, line_no), name, line_no, "Total tokens")
    cell(row, "Log Type", name, line_no)
    return stamp, prompt, response
