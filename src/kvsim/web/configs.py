"""Turn a client's config into a validated :class:`SimConfig` the server is willing to run.

Steps, in order (each failure is a :class:`ConfigError` naming the key path):

1. start from the preset (if any; the full validated preset, all defaults filled), deep-merge
   the client's mapping over it;
2. replace every file reference by the server path of an uploaded trace: a key named ``path``,
   ``*_path``, ``file(s)``, ``*_file(s)``, ``*_dir`` (at any depth, also in lists) must hold an
   upload id (``trace-<hex>.<ext>``) — no client path is ever opened;
3. validate with the same pydantic schema and loader as the CLI; check catalog names;
4. apply the server caps: ``workload.num_requests`` / trace ``workload.limit`` at most
   ``max_requests_per_run`` (a trace without a limit is cut there, with a note) and
   ``limits.max_sim_time_s`` at most ``max_sim_time_s`` (unset means the cap).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kvsim.config.loader import (
    deep_merge,
    load_config,
    resolve_gpu,
    resolve_model,
    validate_config,
)
from kvsim.config.schema import SimConfig
from kvsim.errors import ConfigError
from kvsim.web.store import UnsafePathError, upload_path

__all__ = ["Caps", "PreparedConfig", "prepare_config"]

_FILE_KEY_RE = re.compile(r"(?:^|_)(?:path|paths|file|files|dir)$")


@dataclass(frozen=True, slots=True)
class Caps:
    """Per-run limits of this server."""

    max_requests_per_run: int = 20_000
    max_sim_time_s: float = 3_600.0


@dataclass(slots=True)
class PreparedConfig:
    """A config ready to run, with notes about anything the server changed."""

    config: SimConfig
    notes: list[str] = field(default_factory=list)


def _preset_dict(name: str) -> dict[str, Any]:
    return load_config(preset=name).model_dump(mode="json")


def _map_uploads(node: Any, root: Path, path: str, key: str | None) -> Any:
    """Copy of ``node`` with file references replaced by server paths of uploads."""
    if isinstance(node, dict):
        return {
            k: _map_uploads(v, root, f"{path}.{k}" if path else str(k), str(k))
            for k, v in node.items()
        }
    if isinstance(node, list | tuple):
        return [_map_uploads(v, root, f"{path}[{i}]", key) for i, v in enumerate(node)]
    if key is None or node is None or not _FILE_KEY_RE.search(key):
        return node
    if not isinstance(node, str):
        raise ConfigError(path, "must be the id of an uploaded trace (a string)")
    try:
        file = upload_path(root, node)
    except UnsafePathError:
        raise ConfigError(
            path,
            f"must be the id of an uploaded trace (POST /api/traces), got {node[:60]!r}; "
            "the server opens no client-supplied path",
        ) from None
    if not file.is_file():
        raise ConfigError(path, f"no uploaded trace with id {node!r}")
    return str(file)


def _apply_caps(cfg: SimConfig, caps: Caps, notes: list[str]) -> SimConfig:
    data = cfg.model_dump(mode="json")
    workload = data.get("workload", {})
    cap_n = caps.max_requests_per_run
    if "num_requests" in workload and workload["num_requests"] > cap_n:
        raise ConfigError(
            "workload.num_requests",
            f"{workload['num_requests']} exceeds this server's limit max_requests_per_run={cap_n}",
        )
    if workload.get("kind") == "trace":
        limit = workload.get("limit")
        if limit is None:
            workload["limit"] = cap_n
            notes.append(f"trace read up to max_requests_per_run={cap_n} requests")
        elif limit > cap_n:
            raise ConfigError(
                "workload.limit",
                f"{limit} exceeds this server's limit max_requests_per_run={cap_n}",
            )
    limits = data.setdefault("limits", {})
    cap_t = caps.max_sim_time_s
    t = limits.get("max_sim_time_s")
    if t is None:
        limits["max_sim_time_s"] = cap_t
        notes.append(f"simulated time capped at max_sim_time_s={cap_t:g} s")
    elif t > cap_t:
        raise ConfigError(
            "limits.max_sim_time_s", f"{t:g} exceeds this server's limit max_sim_time_s={cap_t:g}"
        )
    return validate_config(data)


def prepare_config(
    config: dict[str, Any], preset: str | None, root: Path, caps: Caps
) -> PreparedConfig:
    """Merge, map uploads, validate and cap; raises :class:`ConfigError` on the first problem."""
    base = _preset_dict(preset) if preset else {}
    merged = deep_merge(base, config) if base else dict(config)
    mapped = _map_uploads(merged, root, "", None)
    cfg = validate_config(mapped)
    resolve_model(cfg)
    resolve_gpu(cfg)
    notes: list[str] = []
    cfg = _apply_caps(cfg, caps, notes)
    return PreparedConfig(cfg, notes)
