"""Whitespace-separated request trace (the C++ serving simulator's format).

::

    # id arrival_ms prompt_tokens gen_tokens streaming(0/1)
    req1 0 500 200 0
    req2 50 400 150 1

Lines whose first non-blank character is ``#`` and blank lines are skipped. ``id`` is any
token without whitespace, unique in the file; ids are replaced by ints ``0 .. n - 1`` in file
order. ``arrival_ms`` is a non-negative number kept on the trace's own clock (not shifted).
``streaming`` is optional (default 0) and validated, but a :class:`Request` has no field for
it. The format carries no block hashes.
"""

from __future__ import annotations

from pathlib import Path

from kvsim.errors import TraceError
from kvsim.workload.trace_common import TraceRecords, open_text, parse_count, parse_time

__all__ = ["WHITESPACE_FIELDS", "load_whitespace"]

WHITESPACE_FIELDS = ("id", "arrival_ms", "prompt_tokens", "gen_tokens", "streaming")


def load_whitespace(path: Path) -> TraceRecords:
    """Parse a whitespace trace; arrivals in seconds on the trace's clock."""
    name = str(path)
    records = TraceRecords(file=name)
    first_line_of: dict[str, int] = {}
    with open_text(path) as fh:
        for line_no, line in enumerate(fh, start=1):
            tokens = line.split()
            if not tokens or tokens[0].startswith("#"):
                continue
            if len(tokens) < 4:
                missing = WHITESPACE_FIELDS[len(tokens)]
                raise TraceError(name, line_no, missing, f"missing ({_expected(tokens)})")
            if len(tokens) > 5:
                raise TraceError(name, line_no, None, f"too many fields ({_expected(tokens)})")
            req_id = tokens[0]
            if req_id in first_line_of:
                raise TraceError(
                    name,
                    line_no,
                    "id",
                    f"duplicate id {req_id!r} (first on line {first_line_of[req_id]})",
                )
            first_line_of[req_id] = line_no
            arrival_ms = parse_time(tokens[1], name, line_no, "arrival_ms")
            prompt = parse_count(tokens[2], name, line_no, "prompt_tokens")
            output = parse_count(tokens[3], name, line_no, "gen_tokens")
            if len(tokens) == 5 and tokens[4] not in ("0", "1"):
                raise TraceError(name, line_no, "streaming", f"expected 0 or 1, got {tokens[4]!r}")
            records.arrival_s.append(arrival_ms / 1000.0)
            records.prompt_tokens.append(prompt)
            records.output_tokens.append(output)
    return records


def _expected(tokens: list[str]) -> str:
    return f"expected '{' '.join(WHITESPACE_FIELDS)}', got {len(tokens)} fields"
