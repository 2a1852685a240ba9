"""Load skew across GPUs and racks (summary diagnostics), O(instances) once per run.

For a vector of per-unit loads x (busy seconds per instance, or summed per rack):

* ``max_mean`` = max(x) / mean(x) (1.0 = perfectly even; 0 when nothing ran);
* ``cv`` = population standard deviation / mean (0 = even);
* ``active`` = units with x > 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["flatten_summary", "skew_stats"]


def skew_stats(values: Sequence[float], prefix: str) -> dict[str, float | int]:
    """``{<prefix>_max_mean, <prefix>_cv, <prefix>_active}`` of ``values`` (see module)."""
    x = np.asarray(values, dtype=float)
    mean = float(x.mean()) if x.size else 0.0
    if mean <= 0:
        return {f"{prefix}_max_mean": 0.0, f"{prefix}_cv": 0.0, f"{prefix}_active": 0}
    return {
        f"{prefix}_max_mean": float(x.max()) / mean,
        f"{prefix}_cv": float(x.std()) / mean,
        f"{prefix}_active": int((x > 0).sum()),
    }


def flatten_summary(summary: dict[str, Any]) -> list[tuple[str, Any]]:
    """``(dotted key, scalar)`` rows of a nested summary, in key order: a dict ``{a: {b: 1}}``
    gives ``a.b``, a list item ``per_gpu[3].busy_ms`` gives ``per_gpu.3.busy_ms``."""
    rows: list[tuple[str, Any]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(f"{prefix}.{i}", v)
        else:
            rows.append((prefix, value))

    walk("", summary)
    return rows
