"""Trace uploads: stored under ``runs_dir/uploads/`` with a server-made id, checked on arrival.

A stored trace ``trace-<hex>.<ext>`` has a sidecar ``trace-<hex>.<ext>.meta.json`` with the
client's file name (informational only, never used as a path), its size and request count.
An upload that is too large (413) or does not parse as a trace (422) leaves nothing behind.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from fastapi import UploadFile
from fastapi.responses import JSONResponse

from kvsim.errors import KvsimError
from kvsim.web.configs import Caps
from kvsim.web.store import (
    UPLOAD_ID_RE,
    UPLOADS,
    inside,
    new_upload_id,
    read_json,
    upload_path,
    write_json_atomic,
)

__all__ = ["list_uploads", "store_upload"]

_CHUNK = 1 << 20
_SAFE_NAME_RE = re.compile(r"[^A-Za-z0-9._ -]")


def _uploads_dir(root: Path) -> Path:
    path = root / UPLOADS
    path.mkdir(parents=True, exist_ok=True)
    return inside(root, path)


def _display_name(filename: str | None) -> str:
    base = (filename or "trace").replace("\\", "/").rsplit("/", 1)[-1]
    return _SAFE_NAME_RE.sub("_", base)[:100] or "trace"


def _copy_limited(src: Any, dest_dir: Path, max_bytes: int) -> tuple[Path, int] | None:
    """Copy ``src`` to a temp file in ``dest_dir``; None (and nothing left) when too large."""
    fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=dest_dir)
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := src.read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    Path(tmp).unlink(missing_ok=True)
                    return None
                out.write(chunk)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp), size


def _count_requests(path: Path, fmt: str, upload_id: str, caps: Caps) -> int:
    """Parse the trace (up to the request cap); raises KvsimError naming the upload id."""
    import numpy as np
    from pydantic import ValidationError

    from kvsim.config.workload import TraceWorkload
    from kvsim.workload.traces import load_workload

    try:
        spec = TraceWorkload(path=str(path), format=fmt, limit=caps.max_requests_per_run)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        raise KvsimError(f"{err['loc'][0]}: {err['msg']}") from None
    try:
        return len(load_workload(spec, np.random.default_rng(0)))
    except KvsimError as exc:
        raise KvsimError(str(exc).replace(str(path), upload_id)) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise KvsimError(f"{upload_id}: not a readable trace ({type(exc).__name__})") from None


def store_upload(
    root: Path, file: UploadFile, fmt: str, max_bytes: int, caps: Caps
) -> dict[str, Any] | JSONResponse:
    """Store and check one uploaded trace; the answer is an UploadInfo or a 413/422 error."""
    folder = _uploads_dir(root)
    copied = _copy_limited(file.file, folder, max_bytes)
    if copied is None:
        return JSONResponse(
            {"detail": f"upload larger than max_upload_bytes={max_bytes}", "errors": []},
            status_code=413,
        )
    tmp, size = copied
    upload_id = new_upload_id(file.filename)
    dest = upload_path(root, upload_id)
    try:
        num = _count_requests(tmp, fmt, upload_id, caps)
    except KvsimError as exc:
        tmp.unlink(missing_ok=True)
        return JSONResponse(
            {"detail": str(exc), "errors": [{"path": "file", "message": str(exc)}]},
            status_code=422,
        )
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    shutil.move(tmp, dest)
    info = {
        "id": upload_id,
        "filename": _display_name(file.filename),
        "size_bytes": size,
        "num_requests": num,
    }
    write_json_atomic(dest.with_name(dest.name + ".meta.json"), info)
    return info


def list_uploads(root: Path) -> list[dict[str, Any]]:
    """Every stored upload (sorted by id) with its sidecar's details."""
    folder = _uploads_dir(root)
    out = []
    for path in sorted(folder.iterdir()):
        if not (path.is_file() and UPLOAD_ID_RE.fullmatch(path.name)):
            continue
        meta = read_json(path.with_name(path.name + ".meta.json"))
        info = {"id": path.name, "filename": path.name, "size_bytes": path.stat().st_size}
        if isinstance(meta, dict):
            info.update({k: meta[k] for k in ("filename", "num_requests") if k in meta})
        out.append(info)
    return out
