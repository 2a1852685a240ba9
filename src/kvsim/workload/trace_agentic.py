"""``agentic``: agentic coding sessions in the kv-cache-tester format (one JSON per conversation).

::

    {"id": "trace_0022", "block_size": 64, "hash_id_scope": "local",
     "tool_tokens": 12439, "system_tokens": 2917,
     "requests": [
       {"t": 0.0, "type": "n", "in": 35760, "out": 189, "hash_ids": [1, 2, ...],
        "api_time": 7.65, "think_time": 0.0},
       {"t": 185.1, "type": "subagent", "agent_id": "a44c0618",
        "requests": [{"t": 0.0, "type": "n", "in": 10681, "out": 117, "hash_ids": [...]}]},
       ...]}

Rules (docs/traces.md has the full list):

* A path that is a directory loads every ``*.json`` file in it, sorted by name. Conversation
  ``c`` starts at ``S_c``: the times of an arrival process (``conversation_arrival`` at
  ``conversation_rate`` per second, ``conversation_cv``) drawn from the run's generator, the
  first at 0; a single file starts at 0 and draws nothing.
* Every entry whose ``type`` is not ``"subagent"`` is one request (``"s"`` streaming and
  ``"n"`` non-streaming alike): ``in`` prompt tokens (>= 1), ``out`` output tokens (0 is
  clamped to 1 and counted as ``details.zero_output_clamped``), ``hash_ids`` the prefix-chained
  ids of the prompt's full ``block_size``-token blocks (``floor(in / block_size)`` ids; one
  more, naming a partial block, is accepted and dropped).
* Hash ids: with ``hash_id_scope: "local"`` (the default) ids are per conversation, and a
  conversation's subagents share its namespace: ids are renumbered so that equal ids within
  one conversation stay equal (sharing exactly as the file says, between the parent and its
  subagents too) and ids of different conversations never collide. ``"global"`` ids are one
  namespace across all files and are kept shared.
* Sessions: each conversation's main thread and each subagent get their own ``session_id``
  (in file order: a conversation, then its subagents depth-first, then the next file).
* Timing, ``agentic_timing: trace`` (default): a request arrives at ``base + t`` where
  ``base`` is ``S_c`` for the main thread and, for a subagent, its spawn time ``base_parent +
  t_subagent`` (subagent ``t`` values are relative to the subagent's start). A request
  without ``t`` arrives at ``previous arrival + turn duration + think_time`` (the think rule).
  ``agentic_timing: think`` applies the think rule to every request: first request at
  ``base + think_time``; the turn duration is ``turn_duration_s`` if set, else the previous
  request's recorded ``api_time`` (0 if absent); a subagent spawns when its preceding parent
  request's turn ends. Subagents never move the parent's clock. ``time_unit`` scales ``t``,
  ``think_time`` and ``api_time`` (seconds by default).

Files hold no lines worth naming: errors name the file and a field path such as
``requests[3].subagent.requests[0].hash_ids`` (``line`` is None).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from kvsim.errors import TraceError
from kvsim.workload.arrivals import arrival_times
from kvsim.workload.trace_common import (
    TraceLoader,
    TraceRecords,
    json_count,
    json_time,
    open_text,
    register_trace_format,
)
from kvsim.workload.trace_report import LoadContext

__all__ = ["AgenticLoader"]

_SCOPES = ("local", "global")
_SNIFF_BYTES = 65536


@dataclass(slots=True)
class _Pending:
    """A parsed request whose hash ids are still local."""

    arrival_s: float
    prompt_tokens: int
    output_tokens: int
    session_id: int
    local_ids: list[int]
    num_full: int


@dataclass(slots=True)
class _State:
    """Across files: records, counters and the shared (global-scope) id table."""

    records: TraceRecords
    next_session: int = 0
    next_hash: int = 0
    block_size: int | None = None
    global_table: dict[int, int] = field(default_factory=dict)


@register_trace_format("agentic")
class AgenticLoader(TraceLoader):
    """kv-cache-tester agentic conversations (a file or a directory of files)."""

    time_unit = "s"

    sniff_priority = 10

    @classmethod
    def sniff(cls, path: Path, line: str) -> bool:
        if not line.startswith("{"):
            return False
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.read(_SNIFF_BYTES)
        return '"hash_id_scope"' in head or ('"block_size"' in head and '"requests"' in head)

    @classmethod
    def load(cls, path: Path, ctx: LoadContext) -> TraceRecords:
        files = _files(path)
        cfg = ctx.cfg
        starts = arrival_times(
            cfg.conversation_arrival,
            cfg.conversation_rate,
            len(files),
            ctx.rng,
            cfg.conversation_cv,
        ).tolist()
        state = _State(records=TraceRecords(file=str(path), block_hashes=[], session_id=[]))
        for file, start in zip(files, starts, strict=True):
            _Conversation(file, start, ctx, state).load()
        state.records.hash_block_size = state.block_size or 64
        return state.records


def _files(path: Path) -> list[Path]:
    """The conversation files: ``path`` itself, or a directory's ``*.json`` sorted by name."""
    if not path.is_dir():
        return [path]
    files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".json" and p.is_file())
    if not files:
        raise TraceError(str(path), None, None, "no *.json conversation files in the directory")
    return files


class _Conversation:
    """One conversation file: parse, time, then renumber its hash ids."""

    def __init__(self, file: Path, start: float, ctx: LoadContext, state: _State) -> None:
        self.file = file
        self.name = str(file)
        self.start = start
        self.ctx = ctx
        self.state = state
        self.per_s = ctx.units_per_second(AgenticLoader.time_unit, "agentic")
        self.block_size = 64
        self.pending: list[_Pending] = []

    def load(self) -> None:
        top = self._read()
        self.block_size = json_count(top.get("block_size"), self.name, None, "block_size")
        state = self.state
        if state.block_size is not None and state.block_size != self.block_size:
            raise TraceError(
                self.name,
                None,
                "block_size",
                f"{self.block_size} differs from {state.block_size} in earlier files",
            )
        state.block_size = self.block_size
        scope = top.get("hash_id_scope", "local")
        if scope not in _SCOPES:
            raise TraceError(
                self.name, None, "hash_id_scope", f"expected local or global, got {scope!r}"
            )
        entries = top.get("requests")
        if not isinstance(entries, list):
            raise TraceError(self.name, None, "requests", "expected a list of requests")
        self.ctx.report.files_read += 1
        self.ctx.report.count("conversations")
        self._thread(entries, "requests", self.start, self._new_session())
        self._emit(scope == "global")

    def _read(self) -> dict[str, object]:
        with open_text(self.file) as fh:
            try:
                top = json.load(fh)
            except json.JSONDecodeError as exc:
                raise TraceError(
                    self.name, exc.lineno, None, f"invalid JSON: {exc.msg} (column {exc.colno})"
                ) from None
        if not isinstance(top, dict):
            raise TraceError(self.name, None, None, "expected a JSON object (one conversation)")
        return top

    def _new_session(self) -> int:
        session = self.state.next_session
        self.state.next_session += 1
        return session

    def _thread(self, entries: list[object], where: str, base: float, session: int) -> None:
        """The requests of one thread (the main conversation or a subagent), in order."""
        cfg = self.ctx.cfg
        prev_end: float | None = None  # arrival + turn duration of the previous request
        for i, entry in enumerate(entries):
            at = f"{where}[{i}]"
            if isinstance(entry, dict) and entry.get("type") == "subagent":
                self._subagent(entry, at, base, prev_end)
                continue
            self.ctx.report.rows_read += 1
            try:
                req, t, think, api = self._request(entry, at)
            except TraceError as err:
                self.ctx.skip(err)
                continue
            if cfg.agentic_timing == "trace" and t is not None:
                arrival = base + t
            else:
                arrival = (base if prev_end is None else prev_end) + think
            req.arrival_s = arrival
            req.session_id = session
            self.pending.append(req)
            duration = cfg.turn_duration_s if cfg.turn_duration_s is not None else api
            prev_end = arrival + duration

    def _subagent(
        self, entry: dict[str, object], at: str, base: float, prev_end: float | None
    ) -> None:
        """A nested subagent: its own session and clock, the conversation's id namespace."""
        where = f"{at}.subagent"
        try:
            subs = entry.get("requests")
            if not isinstance(subs, list):
                raise TraceError(self.name, None, f"{where}.requests", "expected a list")
            t = self._opt_time(entry, "t", where)
        except TraceError as err:
            self.ctx.report.rows_read += 1
            self.ctx.skip(err)
            return
        if self.ctx.cfg.agentic_timing == "trace" and t is not None:
            spawn = base + t
        else:
            spawn = base if prev_end is None else prev_end
        self.ctx.report.count("subagents")
        self._thread(subs, f"{where}.requests", spawn, self._new_session())

    def _request(self, entry: object, at: str) -> tuple[_Pending, float | None, float, float]:
        """``(request, t, think_time, api_time)`` of one request entry (times in seconds)."""
        name = self.name
        if not isinstance(entry, dict):
            raise TraceError(name, None, at, f"expected a JSON object, got {type(entry).__name__}")
        for key in ("in", "out", "hash_ids"):
            if key not in entry:
                raise TraceError(name, None, f"{at}.{key}", "missing")
        prompt = json_count(entry["in"], name, None, f"{at}.in")
        out = entry["out"]
        if isinstance(out, bool) or not isinstance(out, int) or out < 0:
            raise TraceError(name, None, f"{at}.out", f"expected an integer >= 0, got {out!r}")
        if out == 0:
            self.ctx.report.count("zero_output_clamped")
        ids, num_full = self._ids(entry["hash_ids"], prompt, f"{at}.hash_ids")
        t = self._opt_time(entry, "t", at)
        think = self._opt_time(entry, "think_time", at) or 0.0
        api = self._opt_time(entry, "api_time", at) or 0.0
        return _Pending(0.0, prompt, max(out, 1), -1, ids, num_full), t, think, api

    def _opt_time(self, entry: dict[str, object], key: str, at: str) -> float | None:
        if key not in entry or entry[key] is None:
            return None
        return json_time(entry[key], self.name, None, f"{at}.{key}") / self.per_s

    def _ids(self, value: object, prompt: int, at: str) -> tuple[list[int], int]:
        """The id list (checked) and the number of full blocks it names."""
        if not isinstance(value, list):
            raise TraceError(self.name, None, at, f"expected a list, got {type(value).__name__}")
        size = self.block_size
        full = prompt // size
        ceil = -(-prompt // size)
        if not full <= len(value) <= ceil:
            expected = f"{full}" if full == ceil else f"{full} or {ceil}"
            raise TraceError(
                self.name,
                None,
                at,
                f"{len(value)} ids for in={prompt}; expected {expected} ({size} tokens per block)",
            )
        if not all(type(h) is int for h in value) or (value and min(value) < 0):
            bad = next(h for h in value if type(h) is not int or h < 0)
            raise TraceError(self.name, None, at, f"ids must be non-negative integers, got {bad!r}")
        return value, full

    def _emit(self, global_scope: bool) -> None:
        """Renumber ids (see the module rules) and append the requests to the records."""
        state = self.state
        records = state.records
        assert records.block_hashes is not None and records.session_id is not None
        if global_scope:
            table = state.global_table
            for req in self.pending:
                for h in req.local_ids[: req.num_full]:
                    if h not in table:
                        table[h] = state.next_hash
                        state.next_hash += 1
            lookup = table.__getitem__
        else:
            top = max(
                (max(r.local_ids[: r.num_full], default=-1) for r in self.pending), default=-1
            )
            ints = list(range(state.next_hash, state.next_hash + top + 1))
            state.next_hash += top + 1
            lookup = ints.__getitem__
        for req in self.pending:
            records.arrival_s.append(req.arrival_s)
            records.prompt_tokens.append(req.prompt_tokens)
            records.output_tokens.append(req.output_tokens)
            records.session_id.append(req.session_id)
            records.block_hashes.append(tuple(map(lookup, req.local_ids[: req.num_full])))
