"""``generic``: any CSV (with a header) or JSONL file, read through ``workload.columns``::

    workload: {kind: trace, path: t.csv, format: generic, time_unit: ms,
               columns: {arrival: ts, prompt_tokens: in, output_tokens: out,
                         session_id: conv, hash_ids: blocks}}

JSONL is chosen for ``.jsonl``/``.ndjson``/``.json`` files or a first line starting with
``{``; anything else is CSV. Every mapped column must exist (CSV header) or be present
(JSONL key) on every row. Values:

* ``arrival``: a number in ``time_unit`` (seconds by default), kept on the trace's clock, or
  an ISO date-time (``YYYY-MM-DD HH:MM:SS[.f][+HH:MM]``), then seconds since the earliest
  one (a file must not mix both). Not mapped: Poisson arrivals at ``rate``.
* ``prompt_tokens`` (>= 1) and ``output_tokens`` (>= 1; not mapped: ``cfg.output_tokens``).
* ``session_id``: any text or number; equal values = one session (ids by first appearance).
* ``hash_ids``: prefix-chained ids of the prompt's full ``hash_block_size``-token blocks: a
  JSON list, or in CSV also ``"1 2 3"`` / ``"1;2;3"``; one extra id naming a trailing
  partial block is accepted and dropped (as Mooncake). An empty cell means no hashes.
  Not mapped: synthetic hashes per session (``synthetic_hashes``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from kvsim.config.workload import ColumnMap
from kvsim.errors import ConfigError, TraceError
from kvsim.workload.arrivals import arrival_times
from kvsim.workload.trace_common import (
    TraceLoader,
    TraceRecords,
    json_count,
    json_time,
    open_text,
    parse_count,
    parse_time,
    register_trace_format,
)
from kvsim.workload.trace_csv import NS_PER_S, csv_rows, parse_timestamp_ns
from kvsim.workload.trace_report import LoadContext

__all__ = ["GenericLoader"]

_JSON_SUFFIXES = {".jsonl", ".ndjson", ".json"}
_ID_SEP = re.compile(r"[\s;,]+")


@register_trace_format("generic")
class GenericLoader(TraceLoader):
    """CSV or JSONL through a column mapping; never chosen by sniffing (``auto`` picks it
    when ``columns`` is set)."""

    time_unit = "s"

    @classmethod
    def load(cls, path: Path, ctx: LoadContext) -> TraceRecords:
        cols = ctx.cfg.columns
        if cols is None:
            raise ConfigError(
                "workload.columns",
                "format 'generic' needs a column mapping, e.g. {arrival: ts, "
                "prompt_tokens: in, output_tokens: out}",
            )
        parser = _RowParser(str(path), cols, ctx)
        for line_no, row in _rows(path, cols):
            ctx.report.rows_read += 1
            try:
                parser.parse(row, line_no)
            except TraceError as err:
                ctx.skip(err)
        return parser.finish()


def _mapped(cols: ColumnMap) -> list[tuple[str, str]]:
    """``(role, column)`` of every mapped role, in a fixed order."""
    roles = ("arrival", "prompt_tokens", "output_tokens", "session_id", "hash_ids")
    return [(role, getattr(cols, role)) for role in roles if getattr(cols, role) is not None]


def _rows(path: Path, cols: ColumnMap) -> Iterator[tuple[int, dict[str, object]]]:
    """``(line, {role: raw value})`` per data row (CSV cells are str, JSONL values JSON)."""
    mapped = _mapped(cols)
    if _is_jsonl(path):
        yield from _jsonl_rows(path, mapped)
        return
    names = tuple(col for _, col in mapped)
    for line_no, row in csv_rows(path, names):
        yield line_no, {role: row[col] for role, col in mapped}


def _is_jsonl(path: Path) -> bool:
    if path.suffix.lower() in _JSON_SUFFIXES:
        return True
    with open_text(path) as fh:
        for line in fh:
            if line.strip():
                return line.lstrip().startswith("{")
    return False


def _jsonl_rows(
    path: Path, mapped: list[tuple[str, str]]
) -> Iterator[tuple[int, dict[str, object]]]:
    name = str(path)
    with open_text(path) as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                obj = TraceError(
                    name, line_no, None, f"invalid JSON: {exc.msg} (column {exc.colno})"
                )
            if not isinstance(obj, dict | TraceError):
                obj = TraceError(
                    name, line_no, None, f"expected a JSON object, got {type(obj).__name__}"
                )
            if isinstance(obj, TraceError):
                yield line_no, {"__error__": obj}
                continue
            yield line_no, {role: obj.get(col, _MISSING) for role, col in mapped}


_MISSING = object()


class _RowParser:
    """Turns raw rows into records; remembers whether arrivals are numbers or date-times."""

    def __init__(self, file: str, cols: ColumnMap, ctx: LoadContext) -> None:
        self.file = file
        self.cols = cols
        self.ctx = ctx
        self.per_s = ctx.units_per_second(GenericLoader.time_unit, "generic")
        self.records = TraceRecords(file=file, hash_block_size=ctx.cfg.hash_block_size)
        self.stamps: list[float | int] = []
        self.datetimes: bool | None = None
        self.sessions: list[int] = []
        self.session_index: dict[str, int] = {}
        self.hashes: list[tuple[int, ...]] = []
        self.day_cache: dict[str, int] = {}

    def parse(self, row: dict[str, object], line: int) -> None:
        """Parse one row and append it (all or nothing)."""
        err = row.get("__error__")
        if isinstance(err, TraceError):
            raise err
        cols = self.cols
        stamp = self._arrival(row, line) if cols.arrival is not None else None
        prompt = self._count(row, "prompt_tokens", line)
        output = (
            self._count(row, "output_tokens", line)
            if cols.output_tokens is not None
            else self.ctx.cfg.output_tokens
        )
        session = self._session(row, line) if cols.session_id is not None else -1
        ids = self._hash_ids(row, prompt, line) if cols.hash_ids is not None else ()
        if stamp is not None:
            self.stamps.append(stamp)
        self.records.prompt_tokens.append(prompt)
        self.records.output_tokens.append(output)
        self.sessions.append(session)
        self.hashes.append(ids)

    def _value(self, row: dict[str, object], role: str, line: int) -> object:
        col = getattr(self.cols, role)
        value = row.get(role, _MISSING)
        if value is _MISSING or value is None or (isinstance(value, str) and not value.strip()):
            raise TraceError(self.file, line, col, "missing value")
        return value

    def _count(self, row: dict[str, object], role: str, line: int) -> int:
        col = getattr(self.cols, role)
        value = self._value(row, role, line)
        if isinstance(value, str):
            return parse_count(value, self.file, line, col)
        return json_count(value, self.file, line, col)

    def _arrival(self, row: dict[str, object], line: int) -> float | int:
        col = self.cols.arrival
        assert col is not None
        value = self._value(row, "arrival", line)
        stamp_ns = parse_timestamp_ns(value, self.day_cache) if isinstance(value, str) else None
        is_datetime = stamp_ns is not None
        if self.datetimes is not None and is_datetime != self.datetimes:
            kind = "a date-time" if is_datetime else "a number"
            raise TraceError(self.file, line, col, f"{kind}, but earlier rows use the other kind")
        if stamp_ns is not None:
            self.datetimes = True
            return stamp_ns
        if isinstance(value, str):
            seconds = parse_time(value, self.file, line, col) / self.per_s
        else:
            seconds = json_time(value, self.file, line, col) / self.per_s
        self.datetimes = False
        return seconds

    def _session(self, row: dict[str, object], line: int) -> int:
        value = self._value(row, "session_id", line)
        key = value.strip() if isinstance(value, str) else json.dumps(value)
        return self.session_index.setdefault(key, len(self.session_index))

    def _hash_ids(self, row: dict[str, object], prompt: int, line: int) -> tuple[int, ...]:
        col = self.cols.hash_ids
        assert col is not None
        value = row.get("hash_ids")
        if value is None or value is _MISSING or (isinstance(value, str) and not value.strip()):
            return ()
        ids = _id_list(value, self.file, line, col)
        size = self.records.hash_block_size
        full, ceil = prompt // size, -(-prompt // size)
        if not full <= len(ids) <= ceil:
            expected = f"{full}" if full == ceil else f"{full} or {ceil}"
            raise TraceError(
                self.file,
                line,
                col,
                f"{len(ids)} ids for {prompt} prompt tokens; expected {expected} "
                f"({size} tokens per block, workload.hash_block_size)",
            )
        return tuple(ids[:full])

    def finish(self) -> TraceRecords:
        """The records, with arrivals and sessions filled in."""
        records = self.records
        num = len(records.prompt_tokens)
        if self.cols.arrival is None:
            records.arrival_s = arrival_times(
                "poisson", self.ctx.cfg.rate, num, self.ctx.rng
            ).tolist()
        elif self.datetimes:
            first = min(self.stamps) if self.stamps else 0
            records.arrival_s = [(s - first) / NS_PER_S for s in self.stamps]
        else:
            records.arrival_s = [float(s) for s in self.stamps]
        if self.cols.session_id is not None:
            records.session_id = self.sessions
        if self.cols.hash_ids is not None:
            records.block_hashes = self.hashes
        return records


def _id_list(value: object, file: str, line: int, col: str) -> list[int]:
    """Hash ids from a JSON list or a separated string; non-negative ints only."""
    items: object = value
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError as exc:
                raise TraceError(file, line, col, f"invalid JSON list: {exc.msg}") from None
        else:
            items = [int(t) if t.isdigit() else t for t in _ID_SEP.split(text) if t]
    if not isinstance(items, list):
        raise TraceError(file, line, col, f"expected a list of ids, got {value!r}")
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int) or item < 0:
            raise TraceError(file, line, col, f"ids must be non-negative integers, got {item!r}")
    return items
