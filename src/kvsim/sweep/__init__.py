"""Sweeps and capacity search (``kvsim sweep``, ``kvsim search``).

* :mod:`~kvsim.sweep.spec` — :class:`SweepSpec` (YAML): base + ``set`` + grid/zip/random
  axes x seed replicates; built-in specs in ``kvsim/presets/sweeps``.
* :mod:`~kvsim.sweep.expand` — deterministic expansion into points keyed by a hash of the
  full validated config.
* :mod:`~kvsim.sweep.runner` — :func:`run_sweep`: resumable, crash-safe, local process pool
  or Ray (:mod:`~kvsim.sweep.backends`); one run directory per point plus a results table.
* :mod:`~kvsim.sweep.search` — :func:`run_search`: bisection over request rate for the max
  rate meeting SLOs per config, and the cheapest config per target rate.
* :mod:`~kvsim.sweep.plots` — metric-vs-axis, latency-throughput and Pareto plots.
"""

from __future__ import annotations

from kvsim.sweep.expand import Point, config_key, expand
from kvsim.sweep.runner import SweepRun, run_sweep
from kvsim.sweep.spec import SweepSpec, builtin_sweeps, load_sweep_spec

__all__ = [
    "Point",
    "SweepRun",
    "SweepSpec",
    "builtin_sweeps",
    "config_key",
    "expand",
    "load_sweep_spec",
    "run_sweep",
]
