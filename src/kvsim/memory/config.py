"""Schema and loader of a memory-study config (``kvsim memory``).

Layering, lowest first (as for ``kvsim run``)::

    schema defaults  <  --preset (presets/memory/NAME.yaml)  <  config file  <  --set  <  --seed

Unknown keys are errors; every problem becomes one :class:`~kvsim.errors.ConfigError` whose
message names the dotted key path, e.g.
``allocators[1].kind: unknown allocator 'buddy'; known: contiguous, max, ...``.
``--set`` accepts list indices as path parts: ``--set allocators.0.block_size=8``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kvsim.config.catalog import ModelSpec, model_catalog
from kvsim.config.loader import (
    PresetDir,
    _parse_mapping,
    _read_config_file,
    deep_merge,
    first_error_line,
)
from kvsim.config.loader import parse_override as _parse_override
from kvsim.config.workload import WorkloadConfig
from kvsim.errors import ConfigError
from kvsim.kv.alloc.base import KV_DTYPE_BYTES, AllocatorSpec, allocator_kinds

__all__ = [
    "AllocatorConfig",
    "EventsInput",
    "LengthsInput",
    "MemoryConfig",
    "WorkloadInput",
    "list_memory_presets",
    "load_memory_config",
    "memory_preset_text",
]

KvDtype = Literal["fp16", "bf16", "fp8", "int8", "int4"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventsInput(_Strict):
    """The synthetic alloc/free generator: one event per step. ``workload`` picks the
    allocation sizes (``short`` 1..4, ``long`` 8..32, ``mixed`` 1..32 slots); each allocation
    is freed, with probability ``free_probability``, after a lifetime drawn uniformly from
    ``lifetime_range`` steps."""

    kind: Literal["events"] = "events"
    num_steps: int = Field(default=2000, ge=1)
    workload: Literal["short", "long", "mixed"] = "mixed"
    free_probability: float = Field(default=0.7, ge=0.0, le=1.0)
    lifetime_range: tuple[int, int] = (5, 50)

    @field_validator("lifetime_range")
    @classmethod
    def _check_range(cls, v: tuple[int, int]) -> tuple[int, int]:
        if v[0] < 1 or v[0] > v[1]:
            raise ValueError(f"needs 1 <= low <= high, got [{v[0]}, {v[1]}]")
        return v


class LengthsInput(_Strict):
    """Requests whose (prompt, output) pairs are rows drawn uniformly, with replacement, from
    a length table (CSV), keeping only rows with ``prompt + output <= max_len``. All are
    queued at step 0 unless ``arrivals_per_step`` is set."""

    kind: Literal["lengths"] = "lengths"
    path: str
    prompt_column: str = "num_prefill_tokens"
    output_column: str = "num_decode_tokens"
    num_requests: int = Field(default=1000, ge=1)
    arrivals_per_step: float | None = Field(default=None, gt=0.0)


class WorkloadInput(_Strict):
    """Requests from any kvsim workload (synthetic generator or trace file). Arrival times
    map to steps of ``step_s`` seconds; ``step_s: null`` queues every request at step 0."""

    kind: Literal["workload"] = "workload"
    workload: WorkloadConfig
    step_s: float | None = Field(default=None, gt=0.0)


InputConfig = Annotated[EventsInput | LengthsInput | WorkloadInput, Field(discriminator="kind")]


class AllocatorConfig(_Strict):
    """One allocator to compare. ``name`` labels its columns (default: ``kind``, plus
    ``_<kv_dtype>`` when it is not fp16)."""

    kind: str
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+$")
    block_size: int = Field(default=16, ge=1)
    kv_dtype: KvDtype = "fp16"
    compression_ratio: float = Field(default=0.5, gt=0.0, lt=1.0)
    pressure_threshold: float = Field(default=0.9, gt=0.0, le=1.0)

    @field_validator("kind")
    @classmethod
    def _known(cls, v: str) -> str:
        kinds = allocator_kinds()
        if v not in kinds:
            raise ValueError(f"unknown allocator {v!r}; known: {', '.join(kinds)}")
        return v

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        return self.kind if self.kv_dtype == "fp16" else f"{self.kind}_{self.kv_dtype}"

    def to_spec(self, max_len: int) -> AllocatorSpec:
        return AllocatorSpec(
            kind=self.kind,
            block_size=self.block_size,
            max_len=max_len,
            compression_ratio=self.compression_ratio,
            pressure_threshold=self.pressure_threshold,
        )


def _default_allocators() -> list[AllocatorConfig]:
    return [
        AllocatorConfig(kind=k) for k in ("monolithic", "contiguous", "paged", "paged_compressed")
    ]


class MemoryConfig(_Strict):
    """A memory study: one input replayed against each allocator with the same KV budget.

    The budget is ``capacity_bytes``, or ``capacity_tokens`` fp16 token slots of ``model``
    (exactly one). An allocator with a smaller ``kv_dtype`` gets proportionally more slots.
    """

    seed: int = 0
    model: str = "llama-2-7b"
    capacity_tokens: int | None = Field(default=1024, ge=1)
    capacity_bytes: float | None = Field(default=None, gt=0)
    max_len: int = Field(default=2048, ge=1, description="the model's maximum sequence length")
    max_num_seqs: int | None = Field(default=None, ge=1, description="cap on running requests")
    max_steps: int = Field(default=10_000_000, ge=1)
    record_every: int = Field(default=1, ge=1, description="record metrics every N steps")
    input: InputConfig = EventsInput()
    allocators: list[AllocatorConfig] = Field(default_factory=_default_allocators, min_length=1)
    plots: bool = True

    @model_validator(mode="after")
    def _check(self) -> MemoryConfig:
        if (self.capacity_tokens is None) == (self.capacity_bytes is None):
            raise ValueError("capacity_tokens: set exactly one of capacity_tokens, capacity_bytes")
        if self.model.strip().lower() not in model_catalog():
            known = ", ".join(model_catalog())
            raise ValueError(f"model: unknown model {self.model!r}; known: {known}")
        labels = [a.label for a in self.allocators]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise ValueError(f"allocators: duplicate names {dup}; give each a distinct 'name'")
        return self

    @property
    def model_spec(self) -> ModelSpec:
        return model_catalog()[self.model.strip().lower()]

    def bytes_per_slot(self, kv_dtype: str) -> float:
        """KV bytes of one token at ``kv_dtype`` for ``model``."""
        spec = self.model_spec
        return spec.kv_bytes_per_token / spec.kv_element_bytes * KV_DTYPE_BYTES[kv_dtype]

    @property
    def budget_bytes(self) -> float:
        if self.capacity_bytes is not None:
            return self.capacity_bytes
        assert self.capacity_tokens is not None
        return self.capacity_tokens * self.bytes_per_slot("fp16")

    def num_slots(self, kv_dtype: str) -> int:
        """Token slots the budget buys at ``kv_dtype`` (exact for ``capacity_tokens``)."""
        if self.capacity_tokens is not None:
            return int(self.capacity_tokens * KV_DTYPE_BYTES["fp16"] // KV_DTYPE_BYTES[kv_dtype])
        return int(self.budget_bytes // self.bytes_per_slot(kv_dtype))


# --------------------------------------------------------------------------- errors


def _path(loc: Sequence[Any]) -> str:
    """Dotted key path of a pydantic ``loc``; union tags (``events``, ...) are dropped."""
    tags = {"events", "lengths", "workload", "synthetic", "trace"}
    out = ""
    for i, item in enumerate(loc):
        if isinstance(item, int):
            out += f"[{item}]"
        elif item in tags and i > 0 and loc[i - 1] in ("input", "workload"):
            continue
        else:
            out = f"{out}.{item}" if out else str(item)
    return out


def _one_line(exc: ValidationError) -> ConfigError:
    return first_error_line(
        exc, _path, {"union_tag_invalid": "unknown kind; allowed kinds: events, lengths, workload"}
    )


# --------------------------------------------------------------------------- loading


_PRESETS = PresetDir("memory", "memory preset")


def list_memory_presets() -> list[tuple[str, str]]:
    """Built-in memory-study presets as ``(name, description)``, sorted by name."""
    return _PRESETS.list()


def memory_preset_text(name: str) -> str:
    """YAML text of memory preset ``name`` (case-insensitive, ``.yaml`` optional)."""
    return _PRESETS.text(name)


def _apply_override(data: dict[str, Any], text: str) -> None:
    """Set one ``a.b.0.c=value`` override in ``data`` (creating mappings on the way)."""
    parts, value = _parse_override(text)
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(where, f"no list item {part} (the list has {len(node)})")
            idx = int(part)
            if last:
                node[idx] = value
            else:
                node[idx] = node[idx] if not isinstance(node[idx], dict) else dict(node[idx])
                node = node[idx]
            continue
        if not isinstance(node, dict):
            raise ConfigError(where, f"cannot set {'.'.join(parts)}: its parent is not a mapping")
        if last:
            node[part] = value
        else:
            node[part] = node = _copy_child(node.get(part), part)


def _copy_child(child: Any, part: str) -> Any:
    """A fresh copy of an intermediate node (so presets are never mutated)."""
    if child is None and part == "allocators":
        return [a.model_dump() for a in _default_allocators()]
    if child is None:
        return {}
    if isinstance(child, dict):
        return dict(child)
    if isinstance(child, list):
        return list(child)
    return child


def validate_memory_config(data: Mapping[str, Any]) -> MemoryConfig:
    """Validate a raw mapping; errors become one-line :class:`ConfigError` s."""
    raw = dict(data)
    if (
        "capacity_bytes" in raw
        and raw.get("capacity_bytes") is not None
        and "capacity_tokens" not in raw
    ):
        raw["capacity_tokens"] = None
    try:
        return MemoryConfig.model_validate(raw)
    except ValidationError as exc:
        raise _one_line(exc) from None


def load_memory_config(
    path: str | Path | None = None,
    preset: str | None = None,
    overrides: Sequence[str] = (),
    seed: int | None = None,
) -> MemoryConfig:
    """Build a validated :class:`MemoryConfig` (see the module doc for the layering)."""
    data: dict[str, Any] = {}
    if preset is not None:
        data = _parse_mapping(memory_preset_text(preset), f"memory preset {preset}")
    if path is not None:
        data = deep_merge(data, _read_config_file(path))
    for text in overrides:
        _apply_override(data, text)
    if seed is not None:
        data["seed"] = seed
    return validate_memory_config(data)
