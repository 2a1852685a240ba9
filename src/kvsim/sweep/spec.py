"""Sweep and search specifications (pydantic v2, YAML, unknown keys are errors).

A sweep spec names a base configuration and the axes to vary::

    name: qps-sweep
    driver: run                 # run (serving, default) | cache (trace replay)
    base: smoke                 # a preset name, or a config file relative to this spec file
    set: {workload.num_requests: 100}          # fixed overrides, key path -> value
    grid:                       # cartesian product, first key outermost
      workload.rate: [5, 10, 20]
      cluster.num_instances: [1, 2]
    zip:                        # lockstep: equal-length lists, one point per position
      cluster.tensor_parallel: [1, 2]
      gpu: [a100-80gb, h100]
    random:                     # n samples drawn with ``seed``
      n: 4
      params:
        scheduler.max_num_seqs: {low: 8, high: 256, integer: true, log: true}
        scheduler.admission: {choices: [safe, lazy]}
    replicates: 2               # seeds base_seed, base_seed + 1 (or list them in ``seeds``)
    seed: 0                     # seed of the random axis sampler
    plots: [{x: workload.rate, y: p99_ttft_ms, series: cluster.num_instances}]

Invariants: a key path appears in at most one axis; zip lists have equal lengths; every
axis has at least one value; ``seed`` is not an axis when ``replicates`` > 1 or ``seeds`` is
given. Errors are :class:`~kvsim.errors.ConfigError` naming the spec key path.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from kvsim.errors import ConfigError

__all__ = [
    "PlotSpec",
    "RandomAxes",
    "RandomParam",
    "SweepSpec",
    "builtin_sweep_text",
    "builtin_sweeps",
    "load_sweep_spec",
    "parse_spec_yaml",
    "spec_error",
]

_KEY_PATH_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")
_BUILTIN_DIR = "presets/sweeps"
_DESCRIPTION_RE = re.compile(r"^#\s*description:\s*(.*?)\s*$", re.IGNORECASE)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RandomParam(_Strict):
    """One randomly sampled key: ``choices`` (uniform pick), or a range ``[low, high]``
    (uniform, or log-uniform with ``log``; ``integer`` rounds to an int in the range)."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _check(self) -> RandomParam:
        if self.choices is not None:
            if self.low is not None or self.high is not None:
                raise ValueError("give either choices or low/high, not both")
            if not self.choices:
                raise ValueError("choices must not be empty")
            return self
        if self.low is None or self.high is None:
            raise ValueError("give choices, or both low and high")
        if self.low > self.high:
            raise ValueError("low must be <= high")
        if self.log and self.low <= 0:
            raise ValueError("log sampling needs low > 0")
        return self


class RandomAxes(_Strict):
    """``n`` samples; each sample draws every param in spec order from one Generator."""

    n: int = Field(ge=1)
    params: dict[str, RandomParam] = Field(min_length=1)


class PlotSpec(_Strict):
    """One sweep plot: metric(s) ``y`` against axis ``x``, one line per value of ``series``.

    ``kind: latency_throughput`` puts throughput metric ``x`` on the x axis and latency
    ``y`` on the y axis, one line per ``series`` value, points ordered by axis ``order``.
    """

    x: str
    y: str | list[str]
    series: str | None = None
    kind: Literal["line", "latency_throughput"] = "line"
    order: str | None = None
    logx: bool = False
    logy: bool = False

    @property
    def metrics(self) -> list[str]:
        return [self.y] if isinstance(self.y, str) else list(self.y)


class SweepSpec(_Strict):
    """A sweep: base config + fixed overrides + grid/zip/random axes x seed replicates."""

    name: str = ""
    description: str = ""
    driver: str = "run"
    base: str = "default"
    set_: dict[str, Any] = Field(default_factory=dict, alias="set")
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    zip_: dict[str, list[Any]] = Field(default_factory=dict, alias="zip")
    random: RandomAxes | None = None
    replicates: int = Field(1, ge=1)
    seeds: list[int] | None = None
    seed: int = Field(0, ge=0, description="seed of the random-axis sampler")
    plots: list[PlotSpec] | None = None

    @model_validator(mode="after")
    def _check(self) -> SweepSpec:
        _check_paths("set", self.set_)
        _check_paths("grid", self.grid)
        _check_paths("zip", self.zip_)
        for key, values in self.grid.items():
            if not values:
                raise ValueError(f"grid.{key}: needs at least one value")
        lengths = {k: len(v) for k, v in self.zip_.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"zip: lists must have equal lengths, got {lengths}")
        if any(n == 0 for n in lengths.values()):
            raise ValueError("zip: lists must not be empty")
        if self.random is not None:
            _check_paths("random.params", self.random.params)
        seen: set[str] = set()
        for where, keys in self.axis_groups():
            for key in keys:
                if key in seen:
                    raise ValueError(f"{where}.{key}: key path is already an axis")
                seen.add(key)
        if "seed" in seen and (self.replicates > 1 or self.seeds):
            raise ValueError("seed: cannot be an axis together with replicates/seeds")
        if self.seeds is not None:
            if not self.seeds or len(set(self.seeds)) != len(self.seeds):
                raise ValueError("seeds: must be a non-empty list of distinct integers")
            if self.replicates != 1:
                raise ValueError("seeds: give either seeds or replicates, not both")
        return self

    def axis_groups(self) -> list[tuple[str, list[str]]]:
        """``(section, key paths)`` for grid, zip and random, in expansion order."""
        groups = [("grid", list(self.grid)), ("zip", list(self.zip_))]
        if self.random is not None:
            groups.append(("random.params", list(self.random.params)))
        return groups

    @property
    def axis_keys(self) -> list[str]:
        """Every axis key path in expansion order (grid, zip, random)."""
        return [k for _, keys in self.axis_groups() for k in keys]


def _check_paths(section: str, mapping: dict[str, Any]) -> None:
    for key in mapping:
        if not _KEY_PATH_RE.match(key):
            raise ValueError(f"{section}.{key}: not a dotted key path like workload.rate")


# --------------------------------------------------------------------------- loading


def spec_error(exc: ValidationError, origin: str) -> ConfigError:
    """One-line :class:`ConfigError` for the first problem of a spec validation error."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    msg = str(err["msg"])
    msg = re.sub(r"^(Value|Assertion) error, ", "", msg)
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    m = re.match(r"^([A-Za-z_][\w.]*): (.+)$", msg)
    if not loc and m:
        loc, msg = m.group(1), m.group(2)
    return ConfigError(loc or "spec", f"{msg} (in {origin})")


def parse_spec_yaml(text: str, origin: str) -> dict[str, Any]:
    """Parse spec YAML text into a mapping; errors name ``origin`` and the line."""
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{origin}:{mark.line + 1}" if mark is not None else origin
        raise ConfigError(where, f"invalid YAML: {exc.problem or 'syntax error'}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(origin, f"invalid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(origin, f"a spec must be a mapping, got {type(data).__name__}")
    return data


def _builtin_files() -> dict[str, Any]:
    root = resources.files("kvsim").joinpath(_BUILTIN_DIR)
    if not root.is_dir():
        return {}
    return {
        f.name[: -len(".yaml")]: f
        for f in root.iterdir()
        if f.is_file() and f.name.endswith(".yaml")
    }


def builtin_sweeps() -> list[tuple[str, str]]:
    """Built-in sweep specs as ``(name, description)``, sorted by name."""
    out = []
    for name, f in sorted(_builtin_files().items()):
        desc = ""
        for line in f.read_text(encoding="utf-8").splitlines():
            m = _DESCRIPTION_RE.match(line.strip())
            if m:
                desc = m.group(1)
                break
        out.append((name, desc))
    return out


def builtin_sweep_text(name: str) -> str:
    """YAML text of the built-in sweep spec ``name``."""
    files = _builtin_files()
    key = name.strip().lower().removesuffix(".yaml")
    if key not in files:
        known = ", ".join(sorted(files)) or "(none)"
        raise ConfigError(
            "spec", f"no sweep spec file or built-in named '{name}'; built-ins: {known}"
        )
    return str(files[key].read_text(encoding="utf-8"))


def load_spec_mapping(source: str | Path) -> tuple[dict[str, Any], Path | None, str]:
    """Read a spec: a YAML file path, or the name of a built-in spec.

    Returns ``(mapping, directory of the file or None for a built-in, origin label)``.
    """
    p = Path(source)
    if p.is_file():
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(str(p), f"cannot read spec file: {exc}") from None
        return parse_spec_yaml(text, str(p)), p.resolve().parent, str(p)
    if p.suffix in (".yaml", ".yml") or "/" in str(source):
        raise ConfigError(str(p), "sweep spec file not found")
    return parse_spec_yaml(builtin_sweep_text(str(source)), f"built-in {source}"), None, str(source)


def load_sweep_spec(source: str | Path) -> tuple[SweepSpec, Path | None]:
    """Load and validate a :class:`SweepSpec` from a file or a built-in name.

    Returns the spec and the directory that relative ``base`` paths are resolved against
    (None for built-ins, whose ``base`` is a preset name).
    """
    data, spec_dir, origin = load_spec_mapping(source)
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise spec_error(exc, origin) from None
    if not spec.name:
        spec = spec.model_copy(update={"name": Path(str(source)).stem})
    return spec, spec_dir
