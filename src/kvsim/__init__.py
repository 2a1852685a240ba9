"""kvsim: a discrete-event simulator of KV-cache memory in LLM serving.

>>> from kvsim import simulate, load_config
>>> result = simulate(load_config(preset="smoke"))
>>> result.summary["finished"]  # doctest: +SKIP
"""

from __future__ import annotations

__version__ = "0.1.0"

from kvsim.errors import ConfigError, KvsimError, SimulationError, TraceError


def __getattr__(name: str):  # lazy: keep `import kvsim` light
    if name in ("simulate", "Result", "write_run_dir"):
        from kvsim import api

        return getattr(api, name)
    if name == "load_config":
        from kvsim.config.loader import load_config

        return load_config
    raise AttributeError(name)


__all__ = [
    "ConfigError",
    "KvsimError",
    "Result",
    "SimulationError",
    "TraceError",
    "__version__",
    "load_config",
    "simulate",
    "write_run_dir",
]
