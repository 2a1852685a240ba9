"""Deterministic expansion of a :class:`SweepSpec` into points, and point keys.

Order (point index): the grid product (first grid key outermost), then the zip positions,
then the random samples, then the seeds (innermost). Random samples come from
``numpy.random.default_rng(spec.seed)``: for each sample in turn, each param in spec order
takes exactly one draw (``choices``: ``integers(len)``; range: ``uniform(low, high)``, on
``log`` values in log space; ``integer``: ``integers(low, high + 1)``, or the rounded
log-uniform draw).

A point's key is the first 16 hex digits of SHA-256 over the canonical JSON (sorted keys,
no spaces) of ``{"driver": name, "config": validated config}`` — the same config always
gets the same key, whichever spec or axis produced it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kvsim.errors import ConfigError
from kvsim.sweep.drivers import SweepDriver, get_driver
from kvsim.sweep.spec import RandomAxes, SweepSpec

__all__ = [
    "Base",
    "Point",
    "config_key",
    "expand",
    "expand_axes",
    "override_text",
    "resolve_base",
    "sample_random",
]


@dataclass(frozen=True, slots=True)
class Base:
    """Where a point's config starts: a config file (``path``) or a preset name."""

    path: Path | None
    preset: str | None


@dataclass(slots=True)
class Point:
    """One sweep point. ``axes`` maps axis key paths to this point's values (spec order)."""

    index: int
    key: str
    axes: dict[str, Any]
    seed: int | None
    config: Any


def resolve_base(base: str, spec_dir: Path | None) -> Base:
    """A base that looks like a file (``.yaml``/``.yml`` or a ``/``) is a path relative to
    the spec file's directory; anything else is a preset name."""
    if base.endswith((".yaml", ".yml")) or "/" in base:
        p = Path(base)
        if not p.is_absolute() and spec_dir is not None:
            p = spec_dir / p
        if not p.is_file():
            raise ConfigError("base", f"config file not found: {p}")
        return Base(p, None)
    return Base(None, base)


def override_text(path: str, value: Any) -> str:
    """``path=value`` with the value as JSON (valid YAML flow), so it parses back exactly."""
    return f"{path}={json.dumps(value, allow_nan=False)}"


def config_key(driver: str, config_json: dict[str, Any]) -> str:
    """The point key of a validated config dump (see module docstring)."""
    blob = json.dumps(
        {"driver": driver, "config": config_json},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def sample_random(axes: RandomAxes, seed: int) -> list[dict[str, Any]]:
    """The ``axes.n`` random samples (see module docstring for the draw order)."""
    rng = np.random.default_rng(seed)
    out: list[dict[str, Any]] = []
    for _ in range(axes.n):
        sample: dict[str, Any] = {}
        for key, p in axes.params.items():
            if p.choices is not None:
                sample[key] = p.choices[int(rng.integers(len(p.choices)))]
                continue
            assert p.low is not None and p.high is not None
            if p.log:
                v = math.exp(float(rng.uniform(math.log(p.low), math.log(p.high))))
                v = min(max(v, p.low), p.high)
                sample[key] = round(v) if p.integer else v
            elif p.integer:
                sample[key] = int(rng.integers(math.ceil(p.low), math.floor(p.high) + 1))
            else:
                sample[key] = float(rng.uniform(p.low, p.high))
        out.append(sample)
    return out


def expand_axes(spec: SweepSpec) -> list[dict[str, Any]]:
    """Axis values of every point before seeds: grid x zip x random, in index order."""
    grid_rows = list(itertools.product(*spec.grid.values()))  # [()] when there is no grid
    grid_keys = list(spec.grid)
    zip_rows: list[tuple[Any, ...]] = (
        list(zip(*spec.zip_.values(), strict=True)) if spec.zip_ else [()]
    )
    zip_keys = list(spec.zip_)
    randoms = sample_random(spec.random, spec.seed) if spec.random is not None else [{}]
    combos: list[dict[str, Any]] = []
    for g in grid_rows:
        for z in zip_rows:
            for r in randoms:
                combo = dict(zip(grid_keys, g, strict=True))
                combo.update(zip(zip_keys, z, strict=True))
                combo.update(r)
                combos.append(combo)
    return combos


def _seeds(spec: SweepSpec, base_seed: int | None) -> list[int | None]:
    if spec.seeds is not None:
        return list(spec.seeds)
    if spec.replicates == 1:
        return [None]
    start = base_seed or 0
    return [start + r for r in range(spec.replicates)]


def _describe(axes: dict[str, Any], seed: int | None) -> str:
    parts = [f"{k}={v}" for k, v in axes.items()]
    if seed is not None:
        parts.append(f"seed={seed}")
    return ", ".join(parts) or "base config"


def load_point_config(
    driver: SweepDriver, base: Base, overrides: list[str], seed: int | None, label: str
) -> Any:
    """Validate one point's config; a ConfigError keeps its key path and names the point."""
    try:
        return driver.load(base.path, base.preset, overrides, seed)
    except ConfigError as exc:
        raise ConfigError(exc.path, f"{exc.message} (sweep point {label})") from None


def expand(spec: SweepSpec, spec_dir: Path | None = None) -> list[Point]:
    """Every point of ``spec`` with its validated config and key, in index order.

    Raises ConfigError for an invalid point config or two points with the same config.
    """
    driver = get_driver(spec.driver)
    base = resolve_base(spec.base, spec_dir)
    fixed = [override_text(k, v) for k, v in spec.set_.items()]
    base_seed = driver.seed_of(load_point_config(driver, base, fixed, None, "base"))
    points: list[Point] = []
    seen: dict[str, int] = {}
    for axes in expand_axes(spec):
        for seed in _seeds(spec, base_seed):
            overrides = fixed + [override_text(k, v) for k, v in axes.items()]
            label = f"{len(points)}: {_describe(axes, seed)}"
            cfg = load_point_config(driver, base, overrides, seed, label)
            key = config_key(spec.driver, driver.dump(cfg))
            if key in seen:
                raise ConfigError(
                    spec.axis_keys[0] if spec.axis_keys else "spec",
                    f"points {seen[key]} and {len(points)} have the same config "
                    f"({_describe(axes, seed)}); remove the duplicate axis value",
                )
            seen[key] = len(points)
            points.append(Point(len(points), key, dict(axes), driver.seed_of(cfg), cfg))
    return points
