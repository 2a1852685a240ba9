"""Trace loading: format detection, dispatch to the per-format loaders, and
:func:`load_workload`, the one entry point the drivers call.

=============  ===============================  ==========  =====================  ==========
format         file                             arrivals    hashes                 block size
=============  ===============================  ==========  =====================  ==========
mooncake       JSONL (Mooncake FAST'25)         from 0, ms  trace ids, full blocks 512
whitespace     ``id arrival_ms p g [s]``        as is, ms   none                   (16)
seqcsv         ``sequence_id,sequence_length``  Poisson     synthetic per sequence config
azure          Azure LLM inference 2023         from 0      none                   (16)
splitwise      = azure                          from 0      none                   (16)
burstgpt       BurstGPT CSV                     as is, s    synthetic per session  config
agentic        kv-cache-tester JSON (dir)       see module  trace ids, renumbered  64
lengths        ShareGPT / arXiv length tables   Poisson     synthetic per row      config
servegen       ServeGen client windows          sampled     none                   (16)
generic        CSV / JSONL + ``columns``        as is, s    mapped or synthetic    config
=============  ===============================  ==========  =====================  ==========

"from 0": relative to the earliest record; "as is": the trace's own clock; ``time_unit``
overrides a format's unit of numeric time stamps. Then, for every format: token-count-only
records get synthetic hashes (``synthetic_hashes``), arrivals are multiplied by
``arrival_scale``, sorted (stable, so ties keep file order), and the first ``limit`` are
kept. docs/traces.md describes every format and rule.
"""

from __future__ import annotations

import typing
from pathlib import Path

import numpy as np

from kvsim.config.workload import SyntheticWorkload, TraceWorkload
from kvsim.errors import TraceError
from kvsim.workload.request import Request
from kvsim.workload.synthetic import generate
from kvsim.workload.trace_common import TRACE_LOADERS, finalize, maybe_synthesize_hashes
from kvsim.workload.trace_report import LoadContext, TraceReport

__all__ = [
    "TRACE_FORMATS",
    "TraceReport",
    "detect_format",
    "load_trace",
    "load_trace_with_report",
    "load_workload",
    "load_workload_with_report",
]

TRACE_FORMATS: tuple[str, ...] = tuple(
    name
    for name in typing.get_args(TraceWorkload.model_fields["format"].annotation)
    if name != "auto"
)
"""Names accepted by ``workload.format`` (besides ``auto``), in the schema's order."""

_JSON_SUFFIXES = {".jsonl", ".json", ".ndjson"}
_SNIFF_LINES = 50


def load_workload(
    cfg: SyntheticWorkload | TraceWorkload, rng: np.random.Generator
) -> list[Request]:
    """The requests of a workload section, sorted by arrival time.

    Synthetic workloads are generated from ``rng``; traces are read (``rng`` is used only by
    formats without timestamps and by agentic conversation staggering).
    """
    if isinstance(cfg, SyntheticWorkload):
        return generate(cfg, rng)
    if isinstance(cfg, TraceWorkload):
        return load_trace(cfg, rng)
    raise TypeError(f"expected SyntheticWorkload or TraceWorkload, got {type(cfg).__name__}")


def load_workload_with_report(
    cfg: SyntheticWorkload | TraceWorkload, rng: np.random.Generator
) -> tuple[list[Request], TraceReport | None]:
    """:func:`load_workload` plus the trace's :class:`TraceReport` (None when synthetic)."""
    if isinstance(cfg, TraceWorkload):
        return load_trace_with_report(cfg, rng)
    return load_workload(cfg, rng), None


def load_trace(cfg: TraceWorkload, rng: np.random.Generator) -> list[Request]:
    """Read ``cfg.path`` in ``cfg.format`` (detected if ``auto``) into sorted Requests.

    Raises :class:`TraceError` (file, line, field) on malformed input (with ``strict``,
    the default, on the first malformed row).
    """
    return load_trace_with_report(cfg, rng)[0]


def load_trace_with_report(
    cfg: TraceWorkload, rng: np.random.Generator
) -> tuple[list[Request], TraceReport]:
    """Like :func:`load_trace`, plus the :class:`TraceReport` of what was read and skipped."""
    path = Path(cfg.path)
    fmt = (
        detect_format(path, has_columns=cfg.columns is not None)
        if cfg.format == "auto"
        else cfg.format
    )
    report = TraceReport(format=fmt, path=str(path))
    ctx = LoadContext(cfg, rng, report)
    try:
        records = TRACE_LOADERS.get(fmt).load(path, ctx)
    except UnicodeDecodeError as exc:
        raise TraceError(str(path), None, None, f"not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise TraceError(str(path), None, None, f"cannot read: {exc.strerror or exc}") from exc
    report.files_read = max(report.files_read, 1)
    maybe_synthesize_hashes(records, cfg)
    return finalize(records, cfg, report), report


def detect_format(path: Path, *, has_columns: bool = False) -> str:
    """Guess a trace's format from its kind, extension and first meaningful line.

    A directory holding ``*-trace.csv`` files -> servegen, ``*.json`` files -> agentic. With
    ``has_columns`` (a ``columns`` mapping is configured) -> generic. Otherwise every
    loader's ``sniff`` is asked by ``sniff_priority`` (JSON object lines: agentic if the
    object has ``block_size`` and ``requests``, else mooncake; CSV headers: azure,
    burstgpt, lengths, seqcsv; ServeGen window lines in ``*-trace.csv``; 4-5 whitespace
    fields -> whitespace); a ``.json``/``.jsonl``/``.ndjson`` file nothing recognises is
    read as mooncake. Anything else raises :class:`TraceError` listing the formats.
    """
    name = str(path)
    if path.is_dir():
        return _detect_dir(path)
    if has_columns:
        return "generic"
    line = _first_meaningful_line(path)
    if line is not None:
        loaders = sorted(
            (TRACE_LOADERS.get(name) for name in TRACE_LOADERS.names()),
            key=lambda cls: (cls.sniff_priority, cls.format_name),
        )
        for loader in loaders:
            if loader.sniff(path, line):
                return loader.format_name
    if path.suffix.lower() in _JSON_SUFFIXES:
        return "mooncake"
    shown = "the file is empty" if line is None else f"first line {line[:80]!r}"
    raise TraceError(
        name,
        None,
        "format",
        f"cannot detect the trace format ({shown}); set workload.format to one of "
        f"{', '.join(TRACE_FORMATS)} (generic needs workload.columns)",
    )


def _detect_dir(path: Path) -> str:
    names = [p.name for p in path.iterdir()]
    if any(n.endswith("-trace.csv") for n in names):
        return "servegen"
    if any(n.lower().endswith(".json") for n in names):
        return "agentic"
    raise TraceError(
        str(path),
        None,
        "format",
        "a directory trace holds agentic *.json conversations or ServeGen *-trace.csv files",
    )


def _first_meaningful_line(path: Path) -> str | None:
    """The first non-blank line that is not a ``#`` comment, within the first lines."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            for _, line in zip(range(_SNIFF_LINES), fh, strict=False):
                text = line.strip()
                if text and not text.startswith("#"):
                    return text
    except OSError as exc:
        raise TraceError(str(path), None, None, f"cannot open: {exc.strerror or exc}") from exc
    return None
