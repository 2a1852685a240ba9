"""On-disk layout of the dashboard's runs directory, server-generated ids and safe paths.

Layout (everything lives under one ``runs_dir``; nothing outside it is ever opened)::

    runs_dir/
      run-3f2a9c1b7d4e/        a normal kvsim run directory (kvsim.api.write_run_dir)
        web.json               the dashboard's record: status, label, config, timestamps
        summary.json  timeseries.csv  requests.csv  run_meta.json  [events.jsonl] [plots/]
      uploads/
        trace-0b5e77d1c2aa.jsonl   an uploaded trace, named by the server

Invariants:

* Run ids match :data:`RUN_ID_RE` and upload ids match :data:`UPLOAD_ID_RE`; both are made by
  the server (:func:`new_run_id`, :func:`new_upload_id`), never taken from a client.
* :func:`inside` resolves a path and refuses it unless it lies inside ``runs_dir``; every path
  this package opens goes through it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from pathlib import Path
from typing import Any

__all__ = [
    "RUN_ID_PATTERN",
    "RUN_ID_RE",
    "UPLOAD_EXTENSIONS",
    "UPLOAD_ID_PATTERN",
    "UPLOAD_ID_RE",
    "UnsafePathError",
    "inside",
    "new_run_id",
    "new_upload_id",
    "read_json",
    "run_path",
    "upload_path",
    "write_json_atomic",
]

RUN_ID_PATTERN = r"^run-[0-9a-f]{12}$"
RUN_ID_RE = re.compile(RUN_ID_PATTERN)
UPLOAD_EXTENSIONS = ("jsonl", "json", "csv", "txt", "log")
UPLOAD_ID_PATTERN = r"^trace-[0-9a-f]{12}\.(?:jsonl|json|csv|txt|log)$"
UPLOAD_ID_RE = re.compile(UPLOAD_ID_PATTERN)
UPLOADS = "uploads"
RECORD = "web.json"


class UnsafePathError(ValueError):
    """A name that is not a server-made id, or a path that escapes ``runs_dir``."""


def new_run_id() -> str:
    """A fresh random run id (``run-`` + 12 hex digits)."""
    return f"run-{secrets.token_hex(6)}"


def new_upload_id(filename: str | None) -> str:
    """A fresh upload id keeping the client's extension when it is a known trace extension.

    The extension matters: the trace loader's ``format: auto`` picks a parser by it.
    """
    ext = (filename or "").rsplit(".", 1)[-1].lower() if "." in (filename or "") else ""
    if ext not in UPLOAD_EXTENSIONS:
        ext = "txt"
    return f"trace-{secrets.token_hex(6)}.{ext}"


def inside(root: Path, candidate: Path) -> Path:
    """``candidate`` resolved; raises :class:`UnsafePathError` unless it is inside ``root``."""
    base = root.resolve()
    path = candidate.resolve()
    if path == base or base not in path.parents:
        raise UnsafePathError(f"path escapes the runs directory: {candidate}")
    return path


def run_path(root: Path, run_id: str) -> Path:
    """The directory of run ``run_id`` (checked id, checked to lie inside ``root``)."""
    if not RUN_ID_RE.fullmatch(run_id):
        raise UnsafePathError(f"not a run id: {run_id!r}")
    return inside(root, root / run_id)


def upload_path(root: Path, upload_id: str) -> Path:
    """The file of upload ``upload_id`` (checked id, checked to lie inside ``root/uploads``)."""
    if not UPLOAD_ID_RE.fullmatch(upload_id):
        raise UnsafePathError(f"not an upload id: {upload_id!r}")
    return inside(root, root / UPLOADS / upload_id)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to a temp file in the same folder, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True, allow_nan=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any:
    """Parse a JSON file; None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
