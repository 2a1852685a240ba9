"""Trace loading: format detection, dispatch to the per-format parsers, and
:func:`load_workload`, the one entry point the drivers call.

=============  ============================  ========  ======================  ===========
format         file                          arrivals  hashes                  block size
=============  ============================  ========  ======================  ===========
mooncake       JSONL (Mooncake FAST'25)      from 0    trace ids, full blocks  512
whitespace     ``id arrival_ms p g [s]``     as is     none                    (16)
seqcsv         ``sequence_id,sequence_len``  Poisson   synthetic per sequence  config
azure          Azure LLM inference 2023      from 0    none                    (16)
=============  ============================  ========  ======================  ===========

"from 0": relative to the earliest record; "as is": the trace's own clock. Then, for every
format: arrivals are multiplied by ``arrival_scale``, sorted (stable, so ties keep file
order), and the first ``limit`` are kept.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from kvsim.config.workload import SyntheticWorkload, TraceWorkload
from kvsim.errors import TraceError
from kvsim.workload.request import Request
from kvsim.workload.synthetic import generate
from kvsim.workload.trace_common import TraceRecords, finalize
from kvsim.workload.trace_csv import AZURE_COLUMNS, SEQCSV_COLUMNS, load_azure, load_seqcsv
from kvsim.workload.trace_mooncake import load_mooncake
from kvsim.workload.trace_whitespace import load_whitespace

__all__ = ["TRACE_FORMATS", "detect_format", "load_trace", "load_workload"]

_Loader = Callable[[Path, TraceWorkload, np.random.Generator], TraceRecords]

_LOADERS: dict[str, _Loader] = {
    "mooncake": lambda path, cfg, rng: load_mooncake(path),
    "whitespace": lambda path, cfg, rng: load_whitespace(path),
    "seqcsv": load_seqcsv,
    "azure": lambda path, cfg, rng: load_azure(path),
}
TRACE_FORMATS: tuple[str, ...] = tuple(_LOADERS)
"""Names accepted by ``workload.format`` (besides ``auto``)."""

_JSON_SUFFIXES = {".jsonl", ".json", ".ndjson"}
_SNIFF_LINES = 50


def load_workload(
    cfg: SyntheticWorkload | TraceWorkload, rng: np.random.Generator
) -> list[Request]:
    """The requests of a workload section, sorted by arrival time.

    Synthetic workloads are generated from ``rng``; traces are read (``rng`` is used only by
    formats without timestamps).
    """
    if isinstance(cfg, SyntheticWorkload):
        return generate(cfg, rng)
    if isinstance(cfg, TraceWorkload):
        return load_trace(cfg, rng)
    raise TypeError(f"expected SyntheticWorkload or TraceWorkload, got {type(cfg).__name__}")


def load_trace(cfg: TraceWorkload, rng: np.random.Generator) -> list[Request]:
    """Read ``cfg.path`` in ``cfg.format`` (detected if ``auto``) into sorted Requests.

    Raises :class:`TraceError` (file, line, field) on any malformed input.
    """
    path = Path(cfg.path)
    fmt = detect_format(path) if cfg.format == "auto" else cfg.format
    try:
        records = _LOADERS[fmt](path, cfg, rng)
    except UnicodeDecodeError as exc:
        raise TraceError(str(path), None, None, f"not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise TraceError(str(path), None, None, f"cannot read: {exc.strerror or exc}") from exc
    return finalize(records, cfg)


def detect_format(path: Path) -> str:
    """Guess a trace's format from its extension and first meaningful line.

    ``.jsonl``/``.json``/``.ndjson`` or a first line starting with ``{`` -> mooncake; a CSV
    header naming ``TIMESTAMP, ContextTokens, GeneratedTokens`` -> azure, or
    ``sequence_id, sequence_length`` -> seqcsv; 4-5 whitespace-separated fields with numeric
    fields 2-4 -> whitespace. Anything else raises :class:`TraceError` listing the formats.
    """
    name = str(path)
    if path.suffix.lower() in _JSON_SUFFIXES:
        return "mooncake"
    line = _first_meaningful_line(path)
    if line is not None:
        fmt = _sniff_line(line)
        if fmt is not None:
            return fmt
    shown = "the file is empty" if line is None else f"first line {line[:80]!r}"
    raise TraceError(
        name,
        None,
        "format",
        f"cannot detect the trace format ({shown}); set workload.format to one of "
        f"{', '.join(TRACE_FORMATS)}",
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


def _sniff_line(line: str) -> str | None:
    if line.startswith("{"):
        return "mooncake"  # a malformed object is reported by the loader with its line
    if "," in line:
        names = {cell.strip().lower() for cell in line.split(",")}
        if {c.lower() for c in AZURE_COLUMNS} <= names:
            return "azure"
        if set(SEQCSV_COLUMNS) <= names:
            return "seqcsv"
        return None
    tokens = line.split()
    if 4 <= len(tokens) <= 5 and all(_is_number(t) for t in tokens[1:4]):
        return "whitespace"
    return None


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True
