"""What runs in a worker process (local pool or Ray task): one point in, files out.

A worker never writes into the sweep directory: it runs the point in a private temporary
directory, reads every file back as bytes and returns them in a :class:`PointOutcome`. The
driver process writes them (see :mod:`kvsim.sweep.store`), so a Ray cluster needs no shared
filesystem and local and Ray sweeps write the same bytes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kvsim.errors import KvsimError

__all__ = ["PointOutcome", "PointTask", "clean_stale_scratch", "execute_point"]

_SCRATCH_PREFIX = "kvsim-point-"


@dataclass(slots=True)
class PointTask:
    """Everything a worker needs to run one point (picklable)."""

    index: int
    key: str
    driver: str
    config: Any
    plots: bool | None = None


@dataclass(slots=True)
class PointOutcome:
    """The result of one point: ``status`` is ``ok`` or ``failed`` (then ``error`` says why,
    in one line, and ``files`` is empty). ``files`` maps run-dir relative paths to bytes."""

    index: int
    key: str
    status: str
    summary: dict[str, Any] | None = None
    error: str = ""
    traceback: str = ""
    files: dict[str, bytes] = field(default_factory=dict)


def _scratch_dir() -> str | None:
    """A RAM-backed directory for the worker's private run dir when there is one (the
    files are read back at once, so their fsyncs need not reach a disk); else the default."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_scratch() -> int:
    """Remove private run dirs left by workers that were killed (their pid is gone)."""
    removed = 0
    for root in {_scratch_dir() or tempfile.gettempdir(), tempfile.gettempdir()}:
        for p in Path(root).glob(f"{_SCRATCH_PREFIX}*"):
            pid = p.name[len(_SCRATCH_PREFIX) :].split("-", 1)[0]
            if p.is_dir() and pid.isdigit() and not _pid_alive(int(pid)):
                shutil.rmtree(p, ignore_errors=True)
                removed += 1
    return removed


def _collect(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root`` by POSIX relative path, sorted."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def execute_point(task: PointTask) -> PointOutcome:
    """Run one point; never raises for a failing simulation (status ``failed`` instead)."""
    from kvsim.sweep.drivers import get_driver

    prefix = f"{_SCRATCH_PREFIX}{os.getpid()}-{task.key}-"
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=_scratch_dir()))
    try:
        driver = get_driver(task.driver)
        summary = driver.run(task.config, tmp / "run", task.plots)
        files = _collect(tmp / "run")
        return PointOutcome(task.index, task.key, "ok", summary=summary, files=files)
    except KvsimError as exc:
        msg = " ".join(str(exc).split())
        return PointOutcome(task.index, task.key, "failed", error=msg)
    except Exception as exc:
        msg = " ".join(f"{type(exc).__name__}: {exc}".split())
        return PointOutcome(
            task.index, task.key, "failed", error=msg, traceback=traceback.format_exc()
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
