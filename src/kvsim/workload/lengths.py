"""Token-length sampling from a :class:`~kvsim.config.workload.LengthDist`."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from kvsim.config.workload import LengthDist
from kvsim.errors import TraceError

__all__ = ["read_length_column", "sample_lengths"]


def sample_lengths(dist: LengthDist, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` token lengths from ``dist``.

    Returns an int64 array of shape ``(n,)``; every entry is in
    ``[max(dist.min, 1), dist.max]``. Real-valued draws are rounded to the nearest integer
    (ties to even) and then clipped. Distributions:

    * ``fixed``: ``value`` (draws nothing from ``rng``);
    * ``uniform``: integers uniform in ``[low, high]`` (both inclusive);
    * ``normal``: ``N(mean, std**2)``;
    * ``lognormal``: ``mean`` is the mean of the *lengths*: the log has standard deviation
      ``sigma`` and mean ``ln(mean) - sigma**2 / 2``;
    * ``zipf``: ``value * Zipf(a)`` (heavy tailed: most draws are ``value``, a few huge);
    * ``empirical``: rows drawn uniformly with replacement from column ``column`` of the CSV
      file ``path`` (see :func:`read_length_column`).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    raw: np.ndarray
    if dist.dist == "fixed":
        raw = np.full(n, float(dist.value))
    elif dist.dist == "uniform":
        raw = rng.integers(dist.low, dist.high, size=n, endpoint=True).astype(np.float64)
    elif dist.dist == "normal":
        raw = rng.normal(dist.mean, dist.std, size=n)
    elif dist.dist == "lognormal":
        mu = math.log(dist.mean) - dist.sigma**2 / 2.0
        raw = rng.lognormal(mu, dist.sigma, size=n)
    elif dist.dist == "zipf":
        raw = rng.zipf(dist.a, size=n).astype(np.float64) * float(dist.value)
    elif dist.dist == "empirical":
        assert dist.path is not None and dist.column is not None  # checked by the schema
        values = read_length_column(dist.path, dist.column)
        raw = rng.choice(values, size=n, replace=True)
    else:  # pragma: no cover - the schema's Literal forbids it
        raise ValueError(f"unknown length distribution {dist.dist!r}")
    low = max(dist.min, 1)
    clipped = np.clip(np.rint(raw), low, dist.max)
    return clipped.astype(np.int64)


def read_length_column(path: str | Path, column: str) -> np.ndarray:
    """All values of ``column`` in the CSV file ``path`` as a float64 array.

    The file needs a header row; empty rows are skipped. Every value must be a finite
    number > 0; an empty cell, a missing column, a non-number or an empty file raises
    :class:`TraceError` naming the file, the 1-based line and the column.
    """
    name = str(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise TraceError(name, None, column, "file is empty (a header row is needed)")
            names = [h.strip() for h in header]
            if column not in names:
                raise TraceError(name, 1, column, f"no such column; columns are {names}")
            idx = names.index(column)
            values = [
                _length_cell(row, idx, name, reader.line_num, column) for row in reader if row
            ]
    except OSError as exc:
        raise TraceError(name, None, column, f"cannot read file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise TraceError(name, None, column, f"not UTF-8 text: {exc.reason}") from exc
    except csv.Error as exc:
        raise TraceError(name, None, column, f"malformed CSV: {exc}") from exc
    if not values:
        raise TraceError(name, None, column, "column has no values")
    return np.asarray(values, dtype=np.float64)


def _length_cell(row: list[str], idx: int, name: str, line: int, column: str) -> float:
    """Parse one cell of a length column; raise :class:`TraceError` if it is not a length."""
    if idx >= len(row) or not row[idx].strip():
        raise TraceError(name, line, column, "missing value")
    text = row[idx].strip()
    try:
        value = float(text)
    except ValueError:
        raise TraceError(name, line, column, f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise TraceError(name, line, column, f"length must be a finite number > 0, got {text}")
    return value
