"""The sweep directory on disk: point run directories, completion markers, results table.

Layout::

    OUT/sweep.json              spec snapshot + every point (index, key, axes, seed)
    OUT/results.csv|parquet     one row per finished point, sorted by point index
    OUT/plots/*.png             sweep plots
    OUT/points/<key>/           a normal run directory + point.json (the marker)

Crash safety (a SIGKILL may land anywhere): a point's files are written into a hidden
staging directory ``points/.staging-<key>-<pid>``; ``point.json`` is written last
(atomically), then the whole directory is renamed to ``points/<key>`` — a single atomic
step. So ``points/<key>`` exists only with every file and its marker; a killed run leaves at
most a staging directory, which :meth:`SweepStore.clean` removes on the next start. Table
and manifest are written with temp file + ``os.replace``. The table is rebuilt from the
point directories on every start, so it always holds each finished point exactly once.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from kvsim import __version__
from kvsim.report.atomic import write_dataframe, write_json
from kvsim.sweep.expand import Point
from kvsim.sweep.worker import PointOutcome

__all__ = ["MARKER", "SweepStore", "scalar_metrics"]

MARKER = "point.json"
_TMP_RE = re.compile(r"^\..+\.\d+\.\d+\.tmp$")
_EXCLUDED_METRIC = re.compile(r"wall|cpu_time", re.IGNORECASE)
FIXED_COLUMNS = ("point", "key", "seed", "status", "error")


def scalar_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    """The scalar entries of a summary (numbers, bools, strings, None), minus any
    wall-clock or CPU-time field (those differ between runs of the same config)."""
    return {
        k: v
        for k, v in summary.items()
        if (v is None or isinstance(v, (bool, int, float, str))) and not _EXCLUDED_METRIC.search(k)
    }


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, sort_keys=True)


def _write_file_durably(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


class SweepStore:
    """Reads and writes one sweep directory (see module docstring for the layout)."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.points_dir = self.out / "points"

    def point_dir(self, key: str) -> Path:
        return self.points_dir / key

    def clean(self) -> int:
        """Remove leftovers of a killed run (staging dirs, temp files); return how many."""
        self.points_dir.mkdir(parents=True, exist_ok=True)
        removed = 0
        for p in self.points_dir.iterdir():
            if p.name.startswith((".staging-", ".trash-")):
                shutil.rmtree(p, ignore_errors=True)
                removed += 1
        for folder in (self.out, self.out / "plots"):
            if folder.is_dir():
                for p in folder.iterdir():
                    if p.is_file() and _TMP_RE.match(p.name):
                        p.unlink(missing_ok=True)
                        removed += 1
        return removed

    def marker(self, key: str) -> dict[str, Any] | None:
        """The completion marker of point ``key``, or None if the point is not finished."""
        try:
            data = json.loads((self.point_dir(key) / MARKER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def write_point(self, point: Point, outcome: PointOutcome, driver: str) -> None:
        """Write a finished point's run directory; marker last, then one atomic rename."""
        staging = self.points_dir / f".staging-{point.key}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for rel, data in outcome.files.items():
            if rel == MARKER:
                rel = "run_" + MARKER
            _write_file_durably(staging / rel, data)
        marker = {
            "key": point.key,
            "driver": driver,
            "status": outcome.status,
            "error": outcome.error,
            "axes": point.axes,
            "seed": point.seed,
            "kvsim_version": __version__,
        }
        if outcome.traceback:
            marker["traceback"] = outcome.traceback
        write_json(staging / MARKER, marker)
        final = self.point_dir(point.key)
        if final.exists():  # a failed point being retried
            trash = self.points_dir / f".trash-{point.key}-{os.getpid()}"
            os.replace(final, trash)
            os.replace(staging, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(staging, final)

    def row(self, point: Point, axis_keys: list[str]) -> dict[str, Any] | None:
        """The results-table row of a finished point, read from disk (None if unfinished)."""
        marker = self.marker(point.key)
        if marker is None:
            return None
        row: dict[str, Any] = {"point": point.index, "key": point.key}
        for k in axis_keys:
            row[k] = _cell(point.axes.get(k))
        row["seed"] = point.seed
        row["status"] = str(marker.get("status", "failed"))
        row["error"] = str(marker.get("error", ""))
        summary_path = self.point_dir(point.key) / "summary.json"
        if row["status"] == "ok" and summary_path.is_file():
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
            for k, v in scalar_metrics(summary).items():
                row[k if k not in row else f"summary.{k}"] = v
        return row

    def write_table(self, rows: list[dict[str, Any]]) -> pd.DataFrame:
        """Write ``results.csv`` and ``results.parquet`` (rows sorted by point index)."""
        ordered = sorted(rows, key=lambda r: int(r["point"]))
        df = pd.DataFrame(ordered)
        if df.empty:
            df = pd.DataFrame(columns=list(FIXED_COLUMNS))
        write_dataframe(self.out / "results.csv", df, "csv")
        write_dataframe(self.out / "results.parquet", df, "parquet")
        return df

    def write_manifest(self, meta: dict[str, Any], points: list[Point]) -> None:
        """``sweep.json``: the spec snapshot and every point's index, key, axes and seed."""
        doc = dict(meta)
        doc["points"] = [
            {"point": p.index, "key": p.key, "axes": p.axes, "seed": p.seed} for p in points
        ]
        write_json(self.out / "sweep.json", doc)
