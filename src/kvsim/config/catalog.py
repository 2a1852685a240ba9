"""Catalog of models and GPUs: :class:`ModelSpec`, :class:`GPUSpec` and the built-in entries.

Built-in entries live in ``catalog/models.yaml`` and ``catalog/gpus.yaml`` next to this file,
each with the public source of its numbers. A config may name an entry (``model: llama-3-8b``)
or give one inline (a mapping with the same fields); ``catalog_files`` in a config adds YAML
files of extra entries.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from kvsim.errors import ConfigError

__all__ = ["GPUSpec", "ModelSpec", "gpu_catalog", "load_catalog_file", "model_catalog"]


class ModelSpec(BaseModel):
    """A transformer's shape, as far as KV memory and roofline timing need it.

    Invariants: ``kv_bytes_per_token`` counts K and V over all layers (GQA/MHA), or the
    compressed latent plus the decoupled RoPE key for MLA (DeepSeek-V2/V3).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    num_layers: int = Field(ge=1)
    hidden_size: int = Field(ge=1)
    num_attention_heads: int = Field(ge=1)
    num_kv_heads: int = Field(ge=1)
    head_dim: int = Field(ge=1)
    num_params: float = Field(gt=0, description="total parameters")
    num_active_params: float | None = Field(
        None, gt=0, description="parameters used per token (MoE); default num_params"
    )
    dtype_bytes: float = Field(2.0, gt=0, description="bytes per weight")
    kv_dtype_bytes: float | None = Field(None, gt=0, description="bytes per KV element")
    attention: Literal["mha", "gqa", "mla"] = "gqa"
    mla_kv_lora_rank: int = Field(0, ge=0)
    mla_rope_dim: int = Field(0, ge=0)
    max_model_len: int = Field(8192, ge=1)
    source: str = ""

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        if self.attention == "mla" and self.mla_kv_lora_rank <= 0:
            raise ValueError("attention 'mla' needs mla_kv_lora_rank > 0")
        if self.num_attention_heads % self.num_kv_heads:
            raise ValueError("num_attention_heads must be a multiple of num_kv_heads")
        return self

    @property
    def active_params(self) -> float:
        return self.num_active_params if self.num_active_params is not None else self.num_params

    @property
    def kv_element_bytes(self) -> float:
        return self.kv_dtype_bytes if self.kv_dtype_bytes is not None else self.dtype_bytes

    @property
    def kv_bytes_per_token(self) -> float:
        """Bytes of KV cache one token occupies across all layers."""
        if self.attention == "mla":
            per_layer = self.mla_kv_lora_rank + self.mla_rope_dim
        else:
            per_layer = 2 * self.num_kv_heads * self.head_dim
        return self.num_layers * per_layer * self.kv_element_bytes

    @property
    def weight_bytes(self) -> float:
        return self.num_params * self.dtype_bytes

    @property
    def q_dim(self) -> int:
        """Width of the query projection (heads x head_dim), used for attention FLOPs."""
        return self.num_attention_heads * self.head_dim


class GPUSpec(BaseModel):
    """One accelerator's datasheet numbers (dense, no sparsity), in SI units."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    hbm_bytes: float = Field(gt=0)
    hbm_bandwidth_bytes_per_s: float = Field(gt=0)
    bf16_flops: float = Field(gt=0, description="dense BF16/FP16 tensor FLOP/s")
    fp8_flops: float | None = Field(None, gt=0)
    nvlink_bandwidth_bytes_per_s: float = Field(
        0.0, ge=0, description="GPU-to-GPU bandwidth per direction; 0 = none (PCIe only)"
    )
    pcie_bandwidth_bytes_per_s: float = Field(gt=0, description="host link, per direction")
    cost_per_hour: float | None = Field(None, ge=0, description="USD per GPU-hour")
    source: str = ""


def _load_entries(text: str, origin: str, cls: type[BaseModel]) -> dict[str, BaseModel]:
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ConfigError(origin, "a catalog file is a mapping of name -> fields")
    out: dict[str, BaseModel] = {}
    for key, fields in data.items():
        if not isinstance(fields, dict):
            raise ConfigError(f"{origin}:{key}", "expected a mapping of fields")
        try:
            out[str(key).lower()] = cls.model_validate({"name": str(key), **fields})
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise ConfigError(f"{origin}:{key}.{loc}", err["msg"]) from None
    return out


@cache
def model_catalog() -> dict[str, ModelSpec]:
    """Built-in models by lower-case name."""
    text = resources.files("kvsim.config").joinpath("catalog/models.yaml").read_text()
    return _load_entries(text, "catalog/models.yaml", ModelSpec)  # type: ignore[return-value]


@cache
def gpu_catalog() -> dict[str, GPUSpec]:
    """Built-in GPUs by lower-case name."""
    text = resources.files("kvsim.config").joinpath("catalog/gpus.yaml").read_text()
    return _load_entries(text, "catalog/gpus.yaml", GPUSpec)  # type: ignore[return-value]


def load_catalog_file(path: str | Path) -> tuple[dict[str, ModelSpec], dict[str, GPUSpec]]:
    """Read a user catalog file with optional top-level ``models:`` and ``gpus:`` mappings."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except OSError as exc:
        raise ConfigError("catalog_files", f"cannot read {p}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        raise ConfigError("catalog_files", f"{where}: invalid YAML") from None
    if not isinstance(data, dict):
        raise ConfigError("catalog_files", f"{p}: expected a mapping with models: and gpus:")
    unknown = set(data) - {"models", "gpus"}
    if unknown:
        raise ConfigError(
            f"{p}", f"unknown top-level keys {sorted(unknown)}; allowed: models, gpus"
        )
    models = _load_entries(yaml.safe_dump(data.get("models") or {}), f"{p}:models", ModelSpec)
    gpus = _load_entries(yaml.safe_dump(data.get("gpus") or {}), f"{p}:gpus", GPUSpec)
    return models, gpus  # type: ignore[return-value]
