"""Whitespace-separated request trace (the C++ serving simulator's format).

::

    # id arrival_ms prompt_tokens gen_tokens streaming(0/1)
    req1 0 500 200 0
    req2 50 400 150 1

Lines whose first non-blank character is ``#`` and blank lines are skipped. ``id`` is any
token without whitespace, unique in the file; ids are replaced by ints ``0 .. n - 1`` in file
order. ``arrival_ms`` is a non-negative number kept on the trace's own clock (not shifted;
``time_unit`` overrides the millisecond unit).
``streaming`` is optional (default 0) and validated, but a :class:`Request` has no field for
it. The format carries no block hashes.
"""

from __future__ import annotations

from pathlib import Path

from kvsim.errors import TraceError
from kvsim.workload.trace_common import (
    TraceLoader,
    TraceRecords,
    open_text,
    parse_count,
    parse_time,
    register_trace_format,
)
from kvsim.workload.trace_report import LoadContext

__all__ = ["WHITESPACE_FIELDS", "WhitespaceLoader"]

WHITESPACE_FIELDS = ("id", "arrival_ms", "prompt_tokens", "gen_tokens", "streaming")


@register_trace_format("whitespace")
class WhitespaceLoader(TraceLoader):
    """Whitespace trace; arrivals in seconds on the trace's clock."""

    time_unit = "ms"

    sniff_priority = 80

    @classmethod
    def sniff(cls, path: Path, line: str) -> bool:
        tokens = line.split()
        return 4 <= len(tokens) <= 5 and all(_is_number(t) for t in tokens[1:4])

    @classmethod
    def load(cls, path: Path, ctx: LoadContext) -> TraceRecords:
        name = str(path)
        per_s = ctx.units_per_second(cls.time_unit, "whitespace")
        records = TraceRecords(file=name)
        first_line_of: dict[str, int] = {}
        with open_text(path) as fh:
            for line_no, line in enumerate(fh, start=1):
                tokens = line.split()
                if not tokens or tokens[0].startswith("#"):
                    continue
                ctx.report.rows_read += 1
                try:
                    stamp, prompt, output = _parse_line(tokens, name, line_no, first_line_of)
                except TraceError as err:
                    ctx.skip(err)
                    continue
                records.arrival_s.append(stamp / per_s)
                records.prompt_tokens.append(prompt)
                records.output_tokens.append(output)
        return records


def _parse_line(
    tokens: list[str], name: str, line_no: int, first_line_of: dict[str, int]
) -> tuple[float, int, int]:
    """``(arrival in trace units, prompt, output)`` of one line."""
    if len(tokens) < 4:
        missing = WHITESPACE_FIELDS[len(tokens)]
        raise TraceError(name, line_no, missing, f"missing ({_expected(tokens)})")
    if len(tokens) > 5:
        raise TraceError(name, line_no, None, f"too many fields ({_expected(tokens)})")
    req_id = tokens[0]
    if req_id in first_line_of:
        raise TraceError(
            name, line_no, "id", f"duplicate id {req_id!r} (first on line {first_line_of[req_id]})"
        )
    stamp = parse_time(tokens[1], name, line_no, "arrival_ms")
    prompt = parse_count(tokens[2], name, line_no, "prompt_tokens")
    output = parse_count(tokens[3], name, line_no, "gen_tokens")
    if len(tokens) == 5 and tokens[4] not in ("0", "1"):
        raise TraceError(name, line_no, "streaming", f"expected 0 or 1, got {tokens[4]!r}")
    first_line_of[req_id] = line_no
    return stamp, prompt, output


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _expected(tokens: list[str]) -> str:
    return f"expected '{' '.join(WHITESPACE_FIELDS)}', got {len(tokens)} fields"
