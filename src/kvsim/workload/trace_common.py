"""Shared pieces of the trace loaders: the loader base class and registry, parsed columns,
strict field parsers, synthetic hashes and finalisation.

Every loader (one module per format, a :class:`TraceLoader` subclass registered with
``@register_trace_format("name")``) turns a file into :class:`TraceRecords` (one entry per
record, in file order, arrivals in seconds), and :func:`finalize` turns those into sorted
:class:`Request` objects. Field parsers raise :class:`~kvsim.errors.TraceError` naming file,
1-based line and field, so a loader never lets a ``ValueError`` or ``KeyError`` escape; a
loader hands a row's error to :meth:`LoadContext.skip`, which raises it (``strict``) or
records it and lets the loader drop the row.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, TextIO

import numpy as np

from kvsim.config.workload import TraceWorkload
from kvsim.errors import TraceError
from kvsim.registry import Registry
from kvsim.workload.hashing import stream_block_hashes
from kvsim.workload.request import Request
from kvsim.workload.trace_report import LoadContext, TraceReport

__all__ = [
    "TRACE_LOADERS",
    "TraceLoader",
    "TraceRecords",
    "finalize",
    "json_count",
    "json_time",
    "maybe_synthesize_hashes",
    "open_text",
    "parse_count",
    "parse_nonneg_int",
    "parse_time",
    "register_trace_format",
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
    rows_are_content: bool = False
    """Token-count-only rows that each stand for distinct content (length tables): under
    ``synthetic_hashes: auto`` a session-less row gets its own synthetic hash stream."""


class TraceLoader:
    """One trace format. Subclasses set ``time_unit`` (the unit of the format's numeric time
    stamps; None if it has none) and implement :meth:`load`; :meth:`sniff` lets
    ``format: auto`` recognise the format from its first meaningful line.

    Invariant: :meth:`load` returns records in file order with arrivals in seconds (time
    stamps already divided by ``ctx.units_per_second``), and hands every malformed row to
    ``ctx.skip`` (which raises when strict) instead of raising itself.
    """

    format_name: ClassVar[str] = ""
    time_unit: ClassVar[str | None] = None
    sniff_priority: ClassVar[int] = 100
    """``format: auto`` asks loaders in increasing priority (ties: by name)."""

    @classmethod
    def sniff(cls, path: Path, line: str) -> bool:
        """True if ``line`` (the first non-blank, non-comment line) looks like this format."""
        return False

    @classmethod
    def load(cls, path: Path, ctx: LoadContext) -> TraceRecords:
        """Parse ``path`` into records (see the class invariant)."""
        raise NotImplementedError


TRACE_LOADERS: Registry[type[TraceLoader]] = Registry(
    "trace format", "workload.format", "format_name", "kvsim.workload.trace_builtins"
)
"""Format name -> loader class; the built-in loaders register in ``trace_builtins``."""


def register_trace_format(name: str) -> Callable[[type[TraceLoader]], type[TraceLoader]]:
    """Class decorator registering a :class:`TraceLoader` under ``name``."""
    return TRACE_LOADERS.register(name)


def maybe_synthesize_hashes(records: TraceRecords, cfg: TraceWorkload) -> None:
    """Give token-count-only records deterministic synthetic hashes (in place).

    Rule (``cfg.synthetic_hashes``): ``off`` -> none. ``auto`` -> records of one session
    (``session_id >= 0``) share one content stream (request k's prompt is the stream's first
    ``prompt_tokens[k]`` tokens, so turns share every full block both have); session-less
    records get their own stream only if ``rows_are_content``. ``all`` -> every
    session-less record gets its own stream. Records that carry trace hashes are untouched.
    Stream ids: session s -> s; session-less record k -> num_sessions + k.
    """
    if records.block_hashes is not None or cfg.synthetic_hashes == "off":
        return
    num = len(records.prompt_tokens)
    if num == 0:
        return
    if records.session_id is not None:
        seg = np.asarray(records.session_id, dtype=np.int64)
    else:
        seg = np.full(num, -1, dtype=np.int64)
    if cfg.synthetic_hashes == "all" or records.rows_are_content:
        none = np.flatnonzero(seg < 0)
        seg[none] = int(seg.max(initial=-1)) + 1 + none
    if not (seg >= 0).any():
        return
    records.block_hashes = stream_block_hashes(seg, records.prompt_tokens, cfg.hash_block_size)
    records.hash_block_size = cfg.hash_block_size
    records.synthetic_hashes = True


def finalize(
    records: TraceRecords, cfg: TraceWorkload, report: TraceReport | None = None
) -> list[Request]:
    """Scale arrivals, sort them (stable), keep the first ``cfg.limit``, build Requests.

    ``request_id`` is ``0 .. n - 1`` in *file* order among the kept records (so a file
    already sorted by time has ids in arrival order); the list is in arrival order.
    Fills ``report``'s request counts when given.
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
    if report is not None:
        _fill_report(report, records, order)
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


def _fill_report(report: TraceReport, records: TraceRecords, order: np.ndarray) -> None:
    """Request counts of the kept records ``order``."""
    kept = order.tolist()
    report.num_requests = len(kept)
    size = records.hash_block_size
    hashes = records.block_hashes
    report.requests_missing_hashes = sum(
        1 for k in kept if records.prompt_tokens[k] >= size and (hashes is None or not hashes[k])
    )
    report.synthetic_hashes = (
        records.synthetic_hashes and hashes is not None and any(hashes[k] for k in kept)
    )


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


def parse_nonneg_int(text: str, file: str, line: int, name: str) -> int:
    """A count written as decimal digits; may be 0."""
    token = text.strip()
    if not _DIGITS.fullmatch(token):
        raise TraceError(file, line, name, f"expected a non-negative integer, got {token!r}")
    return int(token)


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


def json_count(value: object, file: str, line: int | None, name: str) -> int:
    """A token count from a JSON value: an int (not a bool) >= 1."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TraceError(file, line, name, f"expected a positive integer, got {value!r}")
    if value < 1:
        raise TraceError(file, line, name, f"must be >= 1, got {value}")
    return value


def json_time(value: object, file: str, line: int | None, name: str) -> float:
    """A time stamp from a JSON value: a finite number (not a bool) >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TraceError(file, line, name, f"expected a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise TraceError(file, line, name, f"must be a finite number >= 0, got {value!r}")
    return float(value)
