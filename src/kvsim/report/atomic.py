"""Crash-safe writers for run-directory files (DESIGN §7, §8).

Every writer here follows one rule: **a file that exists under its final name is whole**.
Data goes to a hidden temporary file in the same directory (``.<name>.<pid>.<n>.tmp``), is
flushed and fsynced, and only then renamed over the final name with :func:`os.replace`, which
is atomic on POSIX and Windows when source and target share a filesystem (hence "same
directory"). If anything fails before the rename, the temporary file is removed and any
previous file under the final name is left untouched.

:class:`JsonlStreamWriter` streams records (``events.jsonl``) to ``<path>.part`` and renames
on a clean :meth:`~JsonlStreamWriter.close`; an exception inside its ``with`` block leaves the
``.part`` file for post-mortem reading, never the final name.

Output is deterministic: JSON keeps insertion order, floats are written by Python's shortest
round-trip ``repr``, NaN and ±inf become ``null`` (strict JSON has no NaN), and CSV floats use
``%.9g`` with ``\\n`` line endings on every platform.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

import numpy as np
import pandas as pd

from kvsim.errors import KvsimError

__all__ = [
    "JsonlStreamWriter",
    "atomic_write_bytes",
    "atomic_write_text",
    "to_json_safe",
    "write_dataframe",
    "write_json",
]

DataFrameFormat = Literal["csv", "parquet"]

#: Per-process counter for temporary names; O_EXCL makes a clash (a stale file left by a
#: crashed process that had the same pid) a retry, never an overwrite.
_tmp_counter = itertools.count()

_PARQUET_HINT = "parquet output needs pyarrow: pip install pyarrow"


# --------------------------------------------------------------------------- temp + rename


def _open_unique_tmp(path: Path, binary: bool) -> tuple[Path, IO[Any]]:
    """Create and open a fresh temporary file next to ``path``.

    Created with mode 0o666 filtered by the umask, like a plain ``open()``, so the renamed
    file gets ordinary permissions (``tempfile`` would give 0o600).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{next(_tmp_counter)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        if binary:
            return tmp, os.fdopen(fd, "wb")
        return tmp, os.fdopen(fd, "w", encoding="utf-8", newline="\n")


@contextmanager
def _atomic_open(path: str | os.PathLike[str], *, binary: bool) -> Iterator[IO[Any]]:
    """Yield a file handle whose contents appear at ``path`` only if the block succeeds."""
    target = Path(path)
    tmp, fh = _open_unique_tmp(target, binary)
    try:
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same directory, then rename).

    The parent directory must exist. An existing file at ``path`` is replaced in one step.
    """
    with _atomic_open(path, binary=True) as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` as UTF-8 to ``path`` atomically; ``\\n`` is never translated."""
    atomic_write_bytes(path, text.encode("utf-8"))


# --------------------------------------------------------------------------- JSON


def to_json_safe(obj: Any) -> Any:
    """Return a copy of ``obj`` that strict JSON can encode, deterministically.

    * NaN, +inf and -inf (Python or numpy, also ``pd.NA`` / ``pd.NaT``) become ``None``;
    * numpy scalars become Python ``int`` / ``float`` / ``bool``; arrays become lists;
    * mappings keep their insertion order (keys: numpy ints -> ``int``, others unchanged);
      tuples, lists and sets become lists (sets sorted, so their order is stable);
    * ``Path`` becomes ``str``, an ``Enum`` its ``value``.

    Anything else is returned unchanged, so an unsupported type still fails loudly in
    :func:`json.dumps` instead of being silently stringified.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, Mapping):
        return {_json_key(k): to_json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json_safe(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return [to_json_safe(v) for v in sorted(obj)]
    if isinstance(obj, np.ndarray):
        return to_json_safe(obj.tolist())
    if isinstance(obj, Enum):
        return to_json_safe(obj.value)
    if isinstance(obj, Path):
        return str(obj)
    if obj is pd.NA or obj is pd.NaT:
        return None
    return obj


def _json_key(key: Any) -> Any:
    """Map numpy scalar keys to Python ones (json.dumps rejects numpy keys)."""
    if isinstance(key, np.integer):
        return int(key)
    if isinstance(key, np.floating):
        return float(key)
    return key


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented (2) strict JSON with a trailing newline, atomically.

    Keys keep insertion order; NaN/inf become ``null`` (see :func:`to_json_safe`).
    Raises ``TypeError`` for objects JSON cannot represent; nothing is written then.
    """
    text = json.dumps(to_json_safe(obj), indent=2, allow_nan=False, ensure_ascii=False)
    atomic_write_text(path, text + "\n")


# --------------------------------------------------------------------------- DataFrames


def _have_pyarrow() -> bool:
    """True when pyarrow can be imported (the parquet engine kvsim supports)."""
    return importlib.util.find_spec("pyarrow") is not None


def write_dataframe(
    path: str | os.PathLike[str],
    df: pd.DataFrame,
    fmt: DataFrameFormat = "csv",
    *,
    float_format: str = "%.9g",
) -> None:
    """Write ``df`` to ``path`` atomically as CSV or Parquet; the index is not written.

    CSV: floats as ``float_format`` (default ``%.9g``: stable, readable text, exact for
    float32 but only 9 significant digits for float64 — keep byte counts in int columns),
    NaN as an empty field, ``\\n`` line endings. Parquet needs pyarrow; without it a
    :class:`~kvsim.errors.KvsimError` says how to install it, before any file is touched.
    """
    if fmt == "csv":
        with _atomic_open(path, binary=False) as fh:
            df.to_csv(fh, index=False, float_format=float_format, lineterminator="\n")
    elif fmt == "parquet":
        if not _have_pyarrow():
            raise KvsimError(_PARQUET_HINT)
        with _atomic_open(path, binary=True) as fh:
            df.to_parquet(fh, engine="pyarrow", index=False)
    else:
        raise KvsimError(f"unknown table format {fmt!r}: expected 'csv' or 'parquet'")


# --------------------------------------------------------------------------- JSON lines


class JsonlStreamWriter:
    """Stream JSON records, one compact line each, to ``path`` via ``<path>.part``.

    Usage::

        with JsonlStreamWriter(run_dir / "events.jsonl") as out:
            for event in events:
                out.write({"t_ms": ..., "kind": ...})

    Lines are written to ``<path>.part`` as they come (buffered); a clean exit (or an
    explicit :meth:`close`) flushes, fsyncs and renames the file to ``path``. If the
    ``with`` block raises, the handle is closed but the file is *not* renamed: the
    ``.part`` file keeps what was written for inspection, and ``path`` is never created
    (nor is a previous file at ``path`` replaced). An existing ``.part`` is truncated.
    Records are made JSON-safe with :func:`to_json_safe` (NaN -> ``null``).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.part_path = self.path.with_name(self.path.name + ".part")
        self.num_records = 0
        self._fh: IO[str] | None = open(  # noqa: SIM115 - closed in close()/__exit__
            self.part_path, "w", encoding="utf-8", newline="\n"
        )

    def write(self, record: Mapping[str, Any]) -> None:
        """Append ``record`` as one line of compact JSON (keys in insertion order)."""
        if self._fh is None:
            raise ValueError(f"write to closed JsonlStreamWriter({self.path})")
        line = json.dumps(
            to_json_safe(record), separators=(",", ":"), allow_nan=False, ensure_ascii=False
        )
        self._fh.write(line + "\n")
        self.num_records += 1

    def flush(self) -> None:
        """Push buffered lines to the OS (the file stays ``.part``)."""
        if self._fh is not None:
            self._fh.flush()

    def close(self) -> None:
        """Flush, fsync and rename ``<path>.part`` to ``path``. Idempotent."""
        if self._fh is None:
            return
        fh, self._fh = self._fh, None
        with fh:
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(self.part_path, self.path)

    def abort(self) -> None:
        """Close without renaming: ``<path>.part`` stays, ``path`` is not created."""
        if self._fh is not None:
            fh, self._fh = self._fh, None
            fh.close()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` or :meth:`abort` ran."""
        return self._fh is None

    def __enter__(self) -> JsonlStreamWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"JsonlStreamWriter({str(self.path)!r}, {state}, num_records={self.num_records})"
