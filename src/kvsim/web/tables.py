"""Read a finished run's files into JSON-safe values (NaN and infinities become null)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["clean_json", "events_page", "frame_to_table", "read_requests", "read_timeseries"]


def _column(values: pd.Series) -> list[Any]:
    arr = values.to_numpy()
    if arr.dtype.kind == "f":
        return [None if not math.isfinite(x) else float(x) for x in arr.tolist()]
    if arr.dtype.kind in "iub":
        return arr.tolist()
    return [None if (isinstance(x, float) and not math.isfinite(x)) else x for x in arr.tolist()]


def frame_to_table(df: pd.DataFrame, columns: Sequence[str] | None = None) -> dict[str, Any]:
    """``{columns, data: {column: values}, num_rows}``; unknown requested columns are skipped."""
    names = [c for c in columns if c in df.columns] if columns else [str(c) for c in df.columns]
    return {
        "columns": names,
        "data": {name: _column(df[name]) for name in names},
        "num_rows": len(df),
    }


def read_timeseries(run_dir: Path) -> pd.DataFrame | None:
    path = run_dir / "timeseries.csv"
    return pd.read_csv(path) if path.is_file() else None


def read_requests(run_dir: Path) -> pd.DataFrame | None:
    csv, parquet = run_dir / "requests.csv", run_dir / "requests.parquet"
    if csv.is_file():
        return pd.read_csv(csv, keep_default_na=True)
    if parquet.is_file():
        return pd.read_parquet(parquet)
    return None


def clean_json(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_json(v) for v in value]
    if isinstance(value, np.generic):
        return clean_json(value.item())
    return value


def events_page(run_dir: Path, offset: int, limit: int) -> list[dict[str, Any]] | None:
    """Records ``offset .. offset+limit`` of ``events.jsonl``; None when there is no such file."""
    path = run_dir / "events.jsonl"
    if not path.is_file():
        return None
    out: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i < offset:
                continue
            if len(out) >= limit:
                break
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                out.append(clean_json(record))
    return out
