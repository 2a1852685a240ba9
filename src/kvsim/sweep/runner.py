"""Run a sweep: expand, skip finished points, execute the rest, keep the table current.

Invariants: every point of the spec ends in the table exactly once (``ok`` or ``failed``)
however often the sweep is killed and rerun; the table depends only on the spec and the
point directories, never on the backend, the worker count or the order points finish in.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from kvsim import __version__
from kvsim.errors import KvsimError
from kvsim.sweep.backends import map_unordered
from kvsim.sweep.expand import Point, expand
from kvsim.sweep.spec import SweepSpec
from kvsim.sweep.store import SweepStore
from kvsim.sweep.worker import PointOutcome, PointTask, clean_stale_scratch, execute_point

__all__ = ["SweepRun", "run_sweep"]

#: ``on_progress(done, failed, total)``: points finished (skipped ones included), of which
#: failed, out of the total.
ProgressFn = Callable[[int, int, int], None]

_TABLE_EVERY_S = 1.0


@dataclass(slots=True)
class SweepRun:
    """What :func:`run_sweep` did. ``table`` is the final results table."""

    out: Path
    points: list[Point]
    table: pd.DataFrame
    num_skipped: int = 0
    num_ran: int = 0
    num_failed: int = 0
    plots: list[Path] = field(default_factory=list)


@contextmanager
def _lock(out: Path) -> Iterator[None]:
    """One sweep per directory at a time (an advisory lock the kernel drops on exit)."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "w") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise KvsimError(f"another sweep is running in {out}") from None
        yield


def _todo(store: SweepStore, points: list[Point], retry_failed: bool) -> list[Point]:
    todo = []
    for p in points:
        marker = store.marker(p.key)
        if marker is None or (retry_failed and marker.get("status") != "ok"):
            todo.append(p)
    return todo


def _meta(spec: SweepSpec, spec_dir: Path | None) -> dict[str, Any]:
    return {
        "kvsim_version": __version__,
        "spec": spec.model_dump(mode="json", by_alias=True),
        "spec_dir": str(spec_dir) if spec_dir is not None else None,
    }


def run_sweep(
    spec: SweepSpec,
    out: Path,
    *,
    spec_dir: Path | None = None,
    backend: str = "local",
    workers: int | None = None,
    address: str | None = None,
    retry_failed: bool = False,
    plots: bool = True,
    on_progress: ProgressFn | None = None,
) -> SweepRun:
    """Run every unfinished point of ``spec`` into ``out`` and return the results.

    ``plots=False`` skips both the per-point PNGs and the sweep plots. Failed points are
    recorded (status ``failed`` with the error) and rerun only with ``retry_failed``.
    """
    points = expand(spec, spec_dir)
    out = Path(out)
    with _lock(out):
        store = SweepStore(out)
        store.clean()
        clean_stale_scratch()
        store.write_manifest(_meta(spec, spec_dir), points)
        axis_keys = spec.axis_keys
        rows = {p.index: r for p in points if (r := store.row(p, axis_keys)) is not None}
        todo = _todo(store, points, retry_failed)
        for p in todo:
            rows.pop(p.index, None)
        run = SweepRun(out, points, store.write_table(list(rows.values())))
        run.num_skipped = len(points) - len(todo)
        failed = sum(1 for r in rows.values() if r["status"] != "ok")
        if on_progress:
            on_progress(len(rows), failed, len(points))
        tasks = [
            PointTask(p.index, p.key, spec.driver, p.config, None if plots else False) for p in todo
        ]
        by_index = {p.index: p for p in todo}
        last_write = time.monotonic()
        for _, outcome in map_unordered(
            execute_point, tasks, backend=backend, workers=workers, address=address
        ):
            point = by_index[outcome.index]
            _record(store, point, outcome, spec.driver, rows, axis_keys)
            run.num_ran += 1
            failed += outcome.status != "ok"
            if time.monotonic() - last_write >= _TABLE_EVERY_S:
                store.write_table(list(rows.values()))
                last_write = time.monotonic()
            if on_progress:
                on_progress(len(rows), failed, len(points))
        run.table = store.write_table(list(rows.values()))
        run.num_failed = failed
        if plots:
            from kvsim.sweep.plots import write_sweep_plots

            run.plots = write_sweep_plots(out, run.table, spec)
    return run


def _record(
    store: SweepStore,
    point: Point,
    outcome: PointOutcome,
    driver: str,
    rows: dict[int, dict[str, Any]],
    axis_keys: list[str],
) -> None:
    store.write_point(point, outcome, driver)
    row = store.row(point, axis_keys)
    if row is None:  # pragma: no cover - write_point always leaves a marker
        raise KvsimError(f"point {point.index} ({point.key}) has no marker after writing")
    rows[point.index] = row
