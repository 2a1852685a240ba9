"""Shared pieces of the trace loaders: parsed columns, strict field parsers, finalisation.

Every loader turns a file into :class:`TraceRecords` (one entry per record, in file order,
arrivals in trace seconds), and :func:`finalize` turns those into sorted :class:`Request`
objects. Field parsers raise :class:`~kvsim.errors.TraceError` naming file, 1-based line and
field, so a loader never lets a ``ValueError`` or ``KeyError`` escape.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from kvsim.config.workload import TraceWorkload
from kvsim.errors import TraceError
from kvsim.workload.request import Request

__all__ = [
    "TraceRecords",
    "finalize",
    "json_count",
    "json_time",
    "open_text",
    "parse_count",
    "parse_time",
]

_DIGITS = re.compile(r"[0-9]+")


@dataclass(slots=True)
class TraceRecords:
    """Column-wise records of one trace file, in file order.

    Invariants: all lists have the same length; ``arrival_s`` are finite and >= 0 (before
    ``arrival_scale``); token counts are >= 1; ``block_hashes`` (if not None) are
    prefix-chained, one per full block of ``hash_block_size`` tokens.
    """

    file: str
    hash_block_size: int = 16
    synthetic_hashes: bool = False
    arrival_s: list[float] = field(default_factory=list)
    prompt_tokens: list[int] = field(default_factory=list)
    output_tokens: list[int] = field(default_factory=list)
    block_hashes: list[tuple[int, ...]] | None = None
    session_id: list[int] | None = None


def finalize(records: TraceRecords, cfg: TraceWorkload) -> list[Request]:
    """Scale arrivals, sort them (stable), keep the first ``cfg.limit``, build Requests.

    ``request_id`` is ``0 .. n - 1`` in *file* order among the kept records (so a file
    already sorted by time has ids in arrival order); the list is in arrival order.
    """
    num = len(records.arrival_s)
    if num == 0:
        raise TraceError(records.file, None, None, "the trace holds no requests")
    arrivals = np.asarray(records.arrival_s, dtype=np.float64) * cfg.arrival_scale
    order = np.argsort(arrivals, kind="stable")
    if cfg.limit is not None:
        order = order[: cfg.limit]
    new_id = np.empty(num, dtype=np.int64)
    new_id[np.sort(order)] = np.arange(len(order))
    ids = new_id.tolist()
    times = arrivals.tolist()
    hashes = records.block_hashes
    sessions = records.session_id
    return [
        Request(
            request_id=ids[k],
            arrival_s=times[k],
            prompt_tokens=records.prompt_tokens[k],
            output_tokens=records.output_tokens[k],
            session_id=sessions[k] if sessions is not None else -1,
            block_hashes=hashes[k] if hashes is not None else (),
            hash_block_size=records.hash_block_size,
            synthetic_hashes=records.synthetic_hashes,
        )
        for k in order.tolist()
    ]


def open_text(path: Path) -> TextIO:
    """Open ``path`` as UTF-8 text (BOM tolerated, universal newlines off for the csv module).

    Raises :class:`TraceError` if the file cannot be opened.
    """
    try:
        return open(path, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise TraceError(str(path), None, None, f"cannot open: {exc.strerror or exc}") from exc


def parse_count(text: str, file: str, line: int, name: str) -> int:
    """A token count written as decimal digits; must be >= 1."""
    token = text.strip()
    if not _DIGITS.fullmatch(token):
        raise TraceError(file, line, name, f"expected a positive integer, got {token!r}")
    value = int(token)
    if value < 1:
        raise TraceError(file, line, name, f"must be >= 1, got {value}")
    return value


def parse_time(text: str, file: str, line: int, name: str) -> float:
    """A finite, non-negative number (a time stamp or offset)."""
    token = text.strip()
    try:
        value = float(token)
    except ValueError:
        raise TraceError(file, line, name, f"expected a number, got {token!r}") from None
    if not math.isfinite(value) or value < 0:
        raise TraceError(file, line, name, f"must be a finite number >= 0, got {token!r}")
    return value


def json_count(value: object, file: str, line: int, name: str) -> int:
    """A token count from a JSON value: an int (not a bool) >= 1."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TraceError(file, line, name, f"expected a positive integer, got {value!r}")
    if value < 1:
        raise TraceError(file, line, name, f"must be >= 1, got {value}")
    return value


def json_time(value: object, file: str, line: int, name: str) -> float:
    """A time stamp from a JSON value: a finite number (not a bool) >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TraceError(file, line, name, f"expected a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise TraceError(file, line, name, f"must be a finite number >= 0, got {value!r}")
    return float(value)
