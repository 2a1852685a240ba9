"""What a trace load saw: :class:`TraceReport`, and :class:`LoadContext`, which loaders use
to apply ``strict`` (raise on a malformed row, or skip it and remember why) and time units.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kvsim.config.workload import TraceWorkload
from kvsim.errors import ConfigError, TraceError

__all__ = ["MAX_REASONS", "LoadContext", "TraceReport"]

MAX_REASONS = 10
"""How many skipped-row reasons a report keeps (the count is always exact)."""

_UNITS_PER_SECOND = {"s": 1.0, "ms": 1e3, "us": 1e6}


@dataclass(slots=True)
class TraceReport:
    """Validation report of one trace load (the lead writes it into ``run_meta.json``).

    Fields:

    * ``format``: the format used (after ``auto`` detection); ``path``: what was read;
    * ``files_read``: trace files read (several for an agentic or servegen directory);
    * ``rows_read``: records seen in the files (lines, rows or request objects), including
      skipped and excluded ones; ``rows_skipped``: malformed records skipped
      (``strict: false`` only; with ``strict: true`` the first one is an error);
    * ``skipped_reasons``: the first :data:`MAX_REASONS` skip messages, each
      ``FILE:LINE: field 'x': problem`` (agentic files have no lines: the field is a path
      such as ``requests[3].hash_ids``);
    * ``rows_excluded``: well-formed records left out on purpose (BurstGPT failed requests);
    * ``num_requests``: requests returned (after ``limit``);
    * ``requests_missing_hashes``: returned requests without block hashes although their
      prompt holds at least one full block (a prefix cache can never hit them);
    * ``synthetic_hashes``: True when any returned request's hashes were synthesised (token
      counts only in the trace): hit ratios on them are a model, not a measurement;
    * ``details``: format-specific counts (``conversations``, ``subagents``,
      ``zero_output_clamped``, ``windows`` ...).

    Invariant: ``rows_skipped == 0`` when the load was strict.
    """

    format: str
    path: str
    files_read: int = 0
    rows_read: int = 0
    rows_skipped: int = 0
    skipped_reasons: list[str] = field(default_factory=list)
    rows_excluded: int = 0
    num_requests: int = 0
    requests_missing_hashes: int = 0
    synthetic_hashes: bool = False
    details: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict with every field (the names above)."""
        return {
            "format": self.format,
            "path": self.path,
            "files_read": self.files_read,
            "rows_read": self.rows_read,
            "rows_skipped": self.rows_skipped,
            "skipped_reasons": list(self.skipped_reasons),
            "rows_excluded": self.rows_excluded,
            "num_requests": self.num_requests,
            "requests_missing_hashes": self.requests_missing_hashes,
            "synthetic_hashes": self.synthetic_hashes,
            "details": dict(sorted(self.details.items())),
        }

    def count(self, key: str, by: int = 1) -> None:
        """Add ``by`` to ``details[key]``."""
        self.details[key] = self.details.get(key, 0) + by


@dataclass(slots=True)
class LoadContext:
    """Everything a loader needs besides the path: config, generator, report."""

    cfg: TraceWorkload
    rng: np.random.Generator
    report: TraceReport

    def skip(self, err: TraceError) -> None:
        """A malformed record: raise ``err`` when strict, otherwise count and remember it."""
        if self.cfg.strict:
            raise err
        self.report.rows_skipped += 1
        if len(self.report.skipped_reasons) < MAX_REASONS:
            self.report.skipped_reasons.append(str(err))

    def units_per_second(self, native: str | None, fmt: str) -> float:
        """Units of the format's numeric time stamps per second (``time_unit`` overrides);
        loaders divide by it (exact for whole milliseconds, unlike multiplying by 1e-3).

        ``native`` None means the format has no numeric time stamps: setting ``time_unit``
        is then a :class:`ConfigError`.
        """
        unit = self.cfg.time_unit
        if unit is None:
            return _UNITS_PER_SECOND[native] if native is not None else 1.0
        if native is None:
            raise ConfigError(
                "workload.time_unit",
                f"format {fmt!r} has no numeric time stamps; leave time_unit unset",
            )
        return _UNITS_PER_SECOND[unit]
