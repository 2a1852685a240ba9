"""Runs of the dashboard: a bounded worker pool, their records on disk, progress, cancelling.

A run moves ``queued -> running -> done | failed | cancelled``. Its record (``web.json`` in the
run directory) is rewritten at each transition, so the runs directory alone lists every run
after a restart; runs left ``queued``/``running`` by a stopped server come back ``failed``.

Invariants:

* at most ``max_workers`` runs execute at once and at most ``max_workers + max_queued`` are
  pending (queued or running); :meth:`RunManager.submit` raises :class:`QueueFullError` beyond;
* every public method takes the lock only for bookkeeping, never while a simulation runs.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kvsim.config.schema import SimConfig
from kvsim.errors import KvsimError
from kvsim.web.store import RECORD, RUN_ID_RE, new_run_id, read_json, write_json_atomic

__all__ = ["QueueFullError", "RunCancelledError", "RunManager", "RunRecord", "Runner"]

log = logging.getLogger("kvsim.web")

Runner = Callable[[SimConfig, Path, Callable[[int, int], None]], None]
"""``runner(config, out_dir, on_progress)`` simulates and writes the run directory."""

_PENDING = ("queued", "running")


class QueueFullError(Exception):
    """Too many pending runs; the client should retry later (HTTP 429)."""


class RunCancelledError(Exception):
    """Raised from the progress callback to stop a run that was deleted."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def simulate_runner(config: SimConfig, out: Path, on_progress: Callable[[int, int], None]) -> None:
    """The default runner: :func:`kvsim.api.simulate` writing a normal run directory."""
    from kvsim.api import simulate

    simulate(config, out_dir=out, on_progress=on_progress)


@dataclass(slots=True)
class RunRecord:
    """What the dashboard knows about one run (also its ``web.json``)."""

    id: str
    status: str
    created_at: str
    config: dict[str, Any]
    label: str | None = None
    preset: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    done: int = 0
    total: int = 0
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]

    def info(self) -> dict[str, Any]:
        """The public view (no config); ``progress`` in 0..1."""
        data = self.to_json()
        del data["config"]
        if self.status == "done":
            data["progress"] = 1.0
        else:
            data["progress"] = self.done / self.total if self.total else 0.0
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        return cls(**{k: data[k] for k in cls.__slots__ if k in data})  # type: ignore[attr-defined]


class RunManager:
    """Owns the worker pool and every :class:`RunRecord` under ``root``."""

    def __init__(
        self,
        root: Path,
        *,
        max_workers: int = 1,
        max_queued: int = 8,
        runner: Runner = simulate_runner,
    ) -> None:
        self.root = root
        self.max_workers = max_workers
        self.max_queued = max_queued
        self.runner = runner
        self._lock = threading.Lock()
        self._runs: dict[str, RunRecord] = {}
        self._futures: dict[str, Future[None]] = {}
        self._cancel: dict[str, threading.Event] = {}
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="kvsim-run")
        self._load()

    # ------------------------------------------------------------------ disk

    def _load(self) -> None:
        """Read every run record under ``root``; mark runs a stopped server left pending."""
        self.root.mkdir(parents=True, exist_ok=True)
        for child in sorted(self.root.iterdir()):
            if child.is_symlink() or not (child.is_dir() and RUN_ID_RE.fullmatch(child.name)):
                continue
            data = read_json(child / RECORD)
            if not isinstance(data, dict) or data.get("id") != child.name:
                continue
            try:
                rec = RunRecord.from_json(data)
            except TypeError:
                continue
            if rec.status in _PENDING:
                rec.status = "failed"
                rec.error = "interrupted by a server restart"
                self._save(rec)
            self._runs[rec.id] = rec

    def _save(self, rec: RunRecord) -> None:
        write_json_atomic(self.root / rec.id / RECORD, rec.to_json())

    # ------------------------------------------------------------------ queries

    def list_runs(self) -> list[dict[str, Any]]:
        """Every run's public info, newest first."""
        with self._lock:
            recs = sorted(self._runs.values(), key=lambda r: (r.created_at, r.id), reverse=True)
            return [r.info() for r in recs]

    def get(self, run_id: str) -> RunRecord | None:
        """A snapshot copy of the record, or None."""
        with self._lock:
            rec = self._runs.get(run_id)
            return None if rec is None else RunRecord.from_json(rec.to_json())

    def num_pending(self) -> int:
        with self._lock:
            return sum(r.status in _PENDING for r in self._runs.values())

    # ------------------------------------------------------------------ changes

    def submit(
        self, config: SimConfig, *, label: str | None, preset: str | None, notes: list[str]
    ) -> RunRecord:
        """Queue a run; raises :class:`QueueFullError` when the pool and its queue are full."""
        with self._lock:
            pending = sum(r.status in _PENDING for r in self._runs.values())
            if pending >= self.max_workers + self.max_queued:
                raise QueueFullError(
                    f"{pending} runs pending (limit: {self.max_workers} running + "
                    f"{self.max_queued} queued); retry later"
                )
            run_id = new_run_id()
            while run_id in self._runs or (self.root / run_id).exists():
                run_id = new_run_id()
            rec = RunRecord(
                id=run_id,
                status="queued",
                created_at=_now(),
                config=config.model_dump(mode="json"),
                label=label,
                preset=preset,
                notes=list(notes),
            )
            self._runs[run_id] = rec
            self._cancel[run_id] = threading.Event()
            self._save(rec)
            self._futures[run_id] = self._pool.submit(self._execute, run_id, config)
            return RunRecord.from_json(rec.to_json())

    def delete(self, run_id: str) -> bool:
        """Forget a run and remove its directory (a running run stops at its next progress
        report and is removed then). False when there is no such run."""
        with self._lock:
            rec = self._runs.pop(run_id, None)
            if rec is None:
                return False
            cancel = self._cancel.pop(run_id, None)
            future = self._futures.pop(run_id, None)
            running = rec.status == "running"
            if cancel is not None:
                cancel.set()
            if future is not None:
                future.cancel()
        if not running:
            shutil.rmtree(self.root / run_id, ignore_errors=True)
        return True

    def shutdown(self) -> None:
        """Stop accepting work; cancel queued runs; wait for running ones."""
        with self._lock:
            for event in self._cancel.values():
                event.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------ worker side

    def _update(self, run_id: str, **changes: Any) -> bool:
        """Apply ``changes`` to a live record and save it; False when the run was deleted."""
        with self._lock:
            rec = self._runs.get(run_id)
            if rec is None:
                return False
            for key, value in changes.items():
                setattr(rec, key, value)
            if "status" in changes:
                self._save(rec)
            return True

    def _execute(self, run_id: str, config: SimConfig) -> None:
        cancel = self._cancel.get(run_id)
        if cancel is None or cancel.is_set() or not self._update(
            run_id, status="running", started_at=_now()
        ):
            return

        def on_progress(done: int, total: int) -> None:
            if cancel.is_set():
                raise RunCancelledError
            self._update(run_id, done=done, total=total)

        status, error = "done", None
        try:
            self.runner(config, self.root / run_id, on_progress)
        except RunCancelledError:
            status = "cancelled"
        except KvsimError as exc:
            status, error = "failed", str(exc)
        except Exception as exc:  # a bug in kvsim: keep the server up, say so
            log.exception("run %s crashed", run_id)
            status, error = "failed", f"internal error ({type(exc).__name__}): {exc}"
        if cancel.is_set():
            shutil.rmtree(self.root / run_id, ignore_errors=True)
            return
        changes: dict[str, Any] = {"status": status, "error": error, "finished_at": _now()}
        summary = read_json(self.root / run_id / "summary.json") if status == "done" else None
        if isinstance(summary, dict) and isinstance(summary.get("num_requests"), int):
            changes["done"] = changes["total"] = summary["num_requests"]
        self._update(run_id, **changes)
