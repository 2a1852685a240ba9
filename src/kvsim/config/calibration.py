"""Calibration profiles: a YAML overlay of hardware, network, time-model and cache numbers.

A profile replaces the datasheet defaults with measured (or better-estimated) figures, without
touching the rest of a config. Format (every section optional; unknown keys are a
:class:`~kvsim.errors.ConfigError` naming the key path, e.g. ``calibration.hardware.hbm_bw``)::

    # description: one line shown by list_profiles()
    name: h100-llama3-70b            # informational
    applies_to: {model: llama-3-70b, gpu: h100}   # informational (strings)
    hardware:                        # GPUSpec fields (catalog/gpus.yaml), SI units
      gpu: h100                      # base catalog GPU (default: the config's gpu)
      hbm_bandwidth_bytes_per_s: 3.35e12
    network:                         # TopologyConfig fields except links (GB/s, us)
      network_gbytes_per_s: 50
    time_model:                      # PerfConfig fields (efficiencies, overheads)
      compute_efficiency: 0.55
    cache:
      tiers:                         # by tier name: transfer figures only
        dram: {read_bandwidth_bytes_per_s: 5.0e10, write_bandwidth_bytes_per_s: 5.0e10,
               latency_us: 10}

:func:`apply_calibration` maps the sections onto a *raw* config mapping (before validation):

=============  ===========================================  =================================
section        ``kvsim run`` config (target ``run``)        ``kvsim cache`` config (``cache``)
=============  ===========================================  =================================
hardware       ``gpu`` becomes an inline GPUSpec (base +    same (``gpu``)
               overlay); ``cluster.instances[i].gpu`` that
               names the base GPU too
network        merged into ``cluster.topology``             merged into ``network``
time_model     merged into ``perf``                         merged into ``perf``
cache.tiers    merged into each ``cache.tiers[i]`` (if the  merged into each ``tiers[i]`` of
               config has such a list) of the same name     that name (``kvsim cache`` fills
                                                            in its default tiers first)
=============  ===========================================  =================================

Values in the profile win over the config they are applied to; ``--set`` overrides applied
after it win over the profile (layering: defaults < preset < file < calibration < ``--set``).
The function never mutates its inputs and is idempotent.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kvsim.config.catalog import GPUSpec, gpu_catalog
from kvsim.config.loader import PresetDir, _parse_mapping, _read_config_file
from kvsim.config.schema import PerfConfig
from kvsim.config.topology import TopologyConfig
from kvsim.errors import ConfigError

__all__ = ["TierFigures", "apply_calibration", "list_profiles", "load_profile", "profile_text"]

_ROOT = "calibration"
_SECTIONS = ("name", "description", "applies_to", "hardware", "network", "time_model", "cache")
_GPU_KEYS = tuple(k for k in GPUSpec.model_fields if k != "name")
_NETWORK_KEYS = tuple(k for k in TopologyConfig.model_fields if k != "links")


class TierFigures(BaseModel):
    """Transfer figures of one tier (the ``kvsim cache`` TierConfig field names)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    read_bandwidth_bytes_per_s: float | None = Field(None, gt=0)
    write_bandwidth_bytes_per_s: float | None = Field(None, gt=0)
    latency_us: float | None = Field(None, ge=0)


def _error(path: str, exc: ValidationError) -> ConfigError:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    key = f"{path}.{where}" if where else path
    if err["type"] == "extra_forbidden":
        return ConfigError(key, "unknown key")
    got = err.get("input")
    suffix = f" (got {got!r})" if not isinstance(got, (dict, list)) else ""
    return ConfigError(key, f"{str(err['msg']).lower()}{suffix}")


def _mapping(value: Any, path: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(path, f"expected a mapping, got {type(value).__name__}")
    return dict(value)


def _check_keys(data: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
    for key in data:
        if key not in allowed:
            raise ConfigError(f"{path}.{key}", f"unknown key; allowed: {', '.join(allowed)}")


def validate_profile(profile: Mapping[str, Any]) -> dict[str, Any]:
    """Check a raw profile (every key and value) and return it as a plain dict.

    Raises :class:`ConfigError` naming ``calibration.<section>.<key>`` for an unknown key or a
    bad value. Hardware values are checked against GPUSpec once merged onto their base GPU
    (:func:`apply_calibration`); here only their names and signs are checked.
    """
    data = _mapping(profile, _ROOT)
    _check_keys(data, _SECTIONS, _ROOT)
    for key in ("name", "description"):
        if key in data and not isinstance(data[key], str):
            raise ConfigError(f"{_ROOT}.{key}", "expected a string")
    applies = _mapping(data.get("applies_to"), f"{_ROOT}.applies_to")
    if any(not isinstance(v, str) for v in applies.values()):
        raise ConfigError(f"{_ROOT}.applies_to", "values must be strings")
    hardware = _mapping(data.get("hardware"), f"{_ROOT}.hardware")
    _check_keys(hardware, ("gpu", *_GPU_KEYS), f"{_ROOT}.hardware")
    for key, value in hardware.items():
        if key in ("gpu", "source"):
            if not isinstance(value, str):
                raise ConfigError(f"{_ROOT}.hardware.{key}", "expected a string")
        elif value is not None and (not isinstance(value, (int, float)) or value < 0):
            raise ConfigError(f"{_ROOT}.hardware.{key}", f"expected a number >= 0 (got {value!r})")
    network = _mapping(data.get("network"), f"{_ROOT}.network")
    _check_keys(network, _NETWORK_KEYS, f"{_ROOT}.network")
    try:
        TopologyConfig.model_validate(network)
    except ValidationError as exc:
        raise _error(f"{_ROOT}.network", exc) from None
    perf = _mapping(data.get("time_model"), f"{_ROOT}.time_model")
    try:
        PerfConfig.model_validate(perf)
    except ValidationError as exc:
        raise _error(f"{_ROOT}.time_model", exc) from None
    cache = _mapping(data.get("cache"), f"{_ROOT}.cache")
    _check_keys(cache, ("tiers",), f"{_ROOT}.cache")
    tiers = _mapping(cache.get("tiers"), f"{_ROOT}.cache.tiers")
    for name, figures in tiers.items():
        try:
            TierFigures.model_validate(_mapping(figures, f"{_ROOT}.cache.tiers.{name}"))
        except ValidationError as exc:
            raise _error(f"{_ROOT}.cache.tiers.{name}", exc) from None
    return copy.deepcopy(data)


# --------------------------------------------------------------------------- files


_PROFILES = PresetDir(_ROOT, "calibration profile", key=_ROOT)


def list_profiles() -> list[tuple[str, str]]:
    """Shipped profiles as ``(name, description)``, sorted by name."""
    return _PROFILES.list()


def profile_text(name: str) -> str:
    """YAML text of shipped profile ``name`` (case-insensitive, ``.yaml`` optional)."""
    return _PROFILES.text(name)


def load_profile(name_or_path: str | Path) -> dict[str, Any]:
    """A validated profile: a shipped one by name (``h100-llama3-70b``) or a YAML file.

    A :class:`~pathlib.Path`, or a string ending in ``.yaml`` / ``.yml`` or containing a path
    separator, is read as a file; anything else is a shipped profile name.
    """
    text = str(name_or_path)
    as_file = isinstance(name_or_path, Path) or text.endswith((".yaml", ".yml")) or "/" in text
    if as_file and Path(text).is_file():
        raw = _read_config_file(text)
    elif as_file and "/" in text:
        raise ConfigError(_ROOT, f"calibration file not found: {text}")
    else:
        raw = _parse_mapping(profile_text(text), f"calibration profile {text}")
    return validate_profile(raw)


# --------------------------------------------------------------------------- applying


def _gpu_name(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip().lower()
    if isinstance(value, Mapping) and isinstance(value.get("name"), str):
        return str(value["name"]).strip().lower()
    return None


def _calibrated_gpu(base: Any, hardware: Mapping[str, Any], label: str) -> dict[str, Any]:
    """Inline GPUSpec mapping: ``base`` (catalog name or inline mapping) + ``hardware``."""
    if isinstance(base, Mapping):
        fields = dict(base)
    else:
        table = gpu_catalog()
        key = str(base).strip().lower()
        if key not in table:
            raise ConfigError(
                f"{_ROOT}.hardware.gpu", f"unknown gpu '{base}'; known: {', '.join(table)}"
            )
        fields = table[key].model_dump()
        fields["name"] = f"{key}@{label}" if label else key
    fields.update({k: v for k, v in hardware.items() if k != "gpu"})
    try:
        return GPUSpec.model_validate(fields).model_dump()
    except ValidationError as exc:
        raise _error(f"{_ROOT}.hardware", exc) from None


def _merge_tiers(tiers: list[Any], figures: Mapping[str, Any]) -> list[Any]:
    out = []
    for tier in tiers:
        if isinstance(tier, Mapping) and tier.get("name") in figures:
            tier = {**tier, **{k: v for k, v in figures[tier["name"]].items() if v is not None}}
        out.append(tier)
    return out


def apply_calibration(
    config_dict: Mapping[str, Any],
    profile: Mapping[str, Any] | str | Path,
    target: Literal["run", "cache"] = "run",
) -> dict[str, Any]:
    """``config_dict`` (a raw ``kvsim run`` or, with ``target="cache"``, ``kvsim cache``
    mapping) with ``profile`` (a mapping, a shipped name or a YAML path) applied; see the
    module doc for what goes where. Returns a new mapping, still to be validated."""
    prof = load_profile(profile) if isinstance(profile, (str, Path)) else validate_profile(profile)
    data = copy.deepcopy(dict(config_dict))
    label = str(prof.get("name") or (profile if isinstance(profile, str) else "calibrated"))
    hardware = prof.get("hardware") or {}
    if hardware:
        base = hardware.get("gpu", data.get("gpu", "h100"))
        base_name = _gpu_name(base)
        data["gpu"] = _calibrated_gpu(base, hardware, label)
        cluster = data.get("cluster")
        if target == "run" and isinstance(cluster, Mapping):
            insts = cluster.get("instances")
            if isinstance(insts, list):
                new = [
                    {**i, "gpu": data["gpu"]}
                    if isinstance(i, Mapping) and _gpu_name(i.get("gpu", "h100")) == base_name
                    else i
                    for i in insts
                ]
                data["cluster"] = {**cluster, "instances": new}
    network = prof.get("network") or {}
    if network:
        if target == "run":
            cluster = dict(_mapping(data.get("cluster"), "cluster"))
            topo = _mapping(cluster.get("topology"), "cluster.topology")
            cluster["topology"] = {**topo, **network}
            data["cluster"] = cluster
        else:
            data["network"] = {**_mapping(data.get("network"), "network"), **network}
    perf = prof.get("time_model") or {}
    if perf:
        data["perf"] = {**_mapping(data.get("perf"), "perf"), **perf}
    figures = (prof.get("cache") or {}).get("tiers") or {}
    if figures:
        _apply_tiers(data, figures, target)
    return data


def _apply_tiers(data: dict[str, Any], figures: Mapping[str, Any], target: str) -> None:
    if target == "cache":
        tiers = data.get("tiers")
        if isinstance(tiers, list):
            data["tiers"] = _merge_tiers(tiers, figures)
        return
    cache = data.get("cache")
    if isinstance(cache, Mapping) and isinstance(cache.get("tiers"), list):
        data["cache"] = {**cache, "tiers": _merge_tiers(cache["tiers"], figures)}
