"""Names the form can suggest for free-text fields that a registry validates (routers, queue
policies, trace formats, eviction policies), keyed by the registry's config key path."""

from __future__ import annotations

import importlib
from functools import cache

from kvsim.errors import KvsimError
from kvsim.registry import Registry

__all__ = ["registry_choices"]

# Modules that own a Registry whose key_path names a config field. Allocators are left out:
# their key path ``kind`` is also the workload's discriminator.
_REGISTRY_MODULES = (
    "kvsim.serving.routing.base",
    "kvsim.serving.queues.base",
    "kvsim.workload.trace_common",
    "kvsim.kv.policies.base",
)


@cache
def registry_choices() -> dict[str, list[str]]:
    """``{key_path: sorted names}`` of every registry found; a missing module is skipped."""
    out: dict[str, list[str]] = {}
    for name in _REGISTRY_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for value in vars(module).values():
            if isinstance(value, Registry):
                try:
                    out[value.key_path] = value.names()
                except (ImportError, KvsimError):
                    continue
    return out
