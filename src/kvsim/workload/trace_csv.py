"""CSV trace formats: ``seqcsv`` (sequence lengths, no timestamps) and ``azure``.

``seqcsv``::

    sequence_id,sequence_length,request_type
    a,1200,chat
    b,300,chat
    a,1500,chat

Rows are requests in arrival order; arrivals are synthesised as a Poisson process at
``cfg.rate`` (first at t = 0) from the run's generator, and every request generates
``cfg.output_tokens`` tokens. Rows with the same ``sequence_id`` are the same content: their
synthesised hashes (``cfg.hash_block_size`` tokens per block) agree on every block both
have, and they share a ``session_id`` (the sequence's index in order of first appearance).
``request_type`` is optional and not used.

``azure`` (Azure LLM inference trace 2023, CRLF lines)::

    TIMESTAMP,ContextTokens,GeneratedTokens
    2023-11-16 18:17:03.9799600,4808,10

Arrivals are seconds since the earliest ``TIMESTAMP``; there are no hashes. Time stamps are
parsed by a regular expression into integer nanoseconds (exact, and fast: no pandas).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np

from kvsim.config.workload import TraceWorkload
from kvsim.errors import TraceError
from kvsim.workload.arrivals import arrival_times
from kvsim.workload.hashing import leading_slices, segment_block_hashes
from kvsim.workload.trace_common import TraceRecords, open_text, parse_count

__all__ = ["AZURE_COLUMNS", "SEQCSV_COLUMNS", "load_azure", "load_seqcsv", "parse_timestamp_ns"]

SEQCSV_COLUMNS = ("sequence_id", "sequence_length")
AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")

_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(Z|[+-]\d{2}:?\d{2})?"
)
_NS_PER_S = 1_000_000_000


def _rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line, {column: cell})`` for every non-empty data row.

    The header must name every ``required`` column (matched case-insensitively, surrounding
    spaces ignored); a short row raises naming the first missing column.
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
            where = [(col, index[col.lower()]) for col in required]
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                for col, i in where:
                    if i >= len(row) or not row[i].strip():
                        raise TraceError(name, reader.line_num, col, "missing value")
                yield reader.line_num, {col: row[i] for col, i in where}
        except csv.Error as exc:
            raise TraceError(name, reader.line_num, None, f"malformed CSV: {exc}") from exc


def load_seqcsv(path: Path, cfg: TraceWorkload, rng: np.random.Generator) -> TraceRecords:
    """Parse a seqcsv file; arrivals drawn from ``rng`` (Poisson at ``cfg.rate``)."""
    name = str(path)
    seq_index: dict[str, int] = {}
    sessions: list[int] = []
    prompts: list[int] = []
    for line_no, row in _rows(path, SEQCSV_COLUMNS):
        key = row["sequence_id"].strip()
        sessions.append(seq_index.setdefault(key, len(seq_index)))
        prompts.append(parse_count(row["sequence_length"], name, line_no, "sequence_length"))
    records = TraceRecords(
        file=name,
        hash_block_size=cfg.hash_block_size,
        synthetic_hashes=True,
        arrival_s=arrival_times("poisson", cfg.rate, len(prompts), rng).tolist(),
        prompt_tokens=prompts,
        output_tokens=[cfg.output_tokens] * len(prompts),
        session_id=sessions,
    )
    records.block_hashes = _sequence_hashes(sessions, prompts, cfg.hash_block_size)
    return records


def _sequence_hashes(
    sequences: list[int], prompts: list[int], block_size: int
) -> list[tuple[int, ...]]:
    """Hashes where the sequence index is the content id of the whole prompt.

    Computed once per sequence for its longest row; each row takes a leading slice.
    """
    if not prompts:
        return []
    seq = np.asarray(sequences, dtype=np.int64)
    blocks = np.asarray(prompts, dtype=np.int64) // block_size
    max_blocks = np.zeros(int(seq.max()) + 1, dtype=np.int64)
    np.maximum.at(max_blocks, seq, blocks)
    start = np.cumsum(max_blocks) - max_blocks
    owner = np.repeat(np.arange(len(max_blocks), dtype=np.int64), max_blocks)
    end = (np.arange(int(max_blocks.sum()), dtype=np.int64) - start[owner] + 1) * block_size
    flat = segment_block_hashes(owner, end)
    return leading_slices(flat, start[seq], blocks)


def load_azure(path: Path) -> TraceRecords:
    """Parse an Azure LLM inference CSV; arrivals in seconds from the earliest time stamp."""
    name = str(path)
    stamps: list[int] = []
    records = TraceRecords(file=name)
    day_cache: dict[str, int] = {}
    for line_no, row in _rows(path, AZURE_COLUMNS):
        stamp = parse_timestamp_ns(row["TIMESTAMP"], day_cache)
        if stamp is None:
            raise TraceError(
                name,
                line_no,
                "TIMESTAMP",
                f"expected 'YYYY-MM-DD HH:MM:SS[.fraction][+HH:MM]', got {row['TIMESTAMP']!r}",
            )
        stamps.append(stamp)
        records.prompt_tokens.append(
            parse_count(row["ContextTokens"], name, line_no, "ContextTokens")
        )
        records.output_tokens.append(
            parse_count(row["GeneratedTokens"], name, line_no, "GeneratedTokens")
        )
    if stamps:
        first = min(stamps)
        records.arrival_s = [(s - first) / _NS_PER_S for s in stamps]
    return records


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
    return seconds * _NS_PER_S + nanos
