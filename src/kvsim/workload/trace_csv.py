"""CSV helpers shared by the CSV trace loaders: a header-checked row reader and an exact
time-stamp parser (``YYYY-MM-DD HH:MM:SS[.fraction][offset]`` -> integer nanoseconds, by a
regular expression: exact, and fast, no pandas).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from kvsim.errors import TraceError
from kvsim.workload.trace_common import open_text

__all__ = ["NS_PER_S", "cell", "csv_rows", "parse_timestamp_ns"]

_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(Z|[+-]\d{2}:?\d{2})?"
)
NS_PER_S = 1_000_000_000


def csv_rows(
    path: Path, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line, {column: cell})`` for every non-empty data row.

    The header must name every ``required`` column (matched case-insensitively, surrounding
    spaces ignored; a missing one raises at once, whatever ``strict`` says); ``optional``
    columns are included when the header has them. A short row maps its missing columns to
    ``""`` (use :func:`cell` to read a value that must be present).
    """
    name = str(path)
    with open_text(path) as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
            if header is None:
                raise TraceError(name, None, None, "file is empty (a header row is needed)")
            index = {h.strip().lower(): i for i, h in enumerate(header)}
            for col in required:
                if col.lower() not in index:
                    raise TraceError(name, 1, col, f"column missing; header is {header}")
            cols = required + tuple(c for c in optional if c.lower() in index)
            where = [(col, index[col.lower()]) for col in cols]
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                yield reader.line_num, {col: row[i] if i < len(row) else "" for col, i in where}
        except csv.Error as exc:
            raise TraceError(name, reader.line_num, None, f"malformed CSV: {exc}") from exc


def cell(row: dict[str, str], col: str, file: str, line: int) -> str:
    """The stripped value of ``col``; raises :class:`TraceError` ("missing value") if empty."""
    text = row.get(col, "").strip()
    if not text:
        raise TraceError(file, line, col, "missing value")
    return text


def parse_timestamp_ns(text: str, day_cache: dict[str, int] | None = None) -> int | None:
    """Nanoseconds since 0001-01-01 UTC of an ISO-like time stamp, or None if malformed.

    Accepts ``YYYY-MM-DD[ T]HH:MM:SS`` with 0-9 fractional digits and an optional ``Z`` or
    ``+HH:MM`` offset (no offset = UTC). Exact integer arithmetic; ``day_cache`` memoises the
    date part, which repeats on almost every line.
    """
    m = _TIMESTAMP.fullmatch(text.strip())
    if m is None:
        return None
    day_text = text.strip()[:10]
    days = day_cache.get(day_text) if day_cache is not None else None
    if days is None:
        try:
            days = date(int(m[1]), int(m[2]), int(m[3])).toordinal()
        except ValueError:
            return None
        if day_cache is not None:
            day_cache[day_text] = days
    hour, minute, second = int(m[4]), int(m[5]), int(m[6])
    if hour > 23 or minute > 59 or second > 60:
        return None
    seconds = ((days * 24 + hour) * 60 + minute) * 60 + second
    nanos = int(m[7].ljust(9, "0")) if m[7] else 0
    offset = m[8]
    if offset and offset != "Z":
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        seconds -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return seconds * NS_PER_S + nanos
