"""Sweep drivers: how one sweep point is configured and run (one driver per module).

``run`` is the serving simulation (:func:`kvsim.api.simulate`); ``cache`` is the trace
replay of :mod:`kvsim.cache` (imported lazily). A new driver is one module that subclasses
:class:`SweepDriver` and registers itself with ``@DRIVERS.register("name")``.
"""

from __future__ import annotations

from kvsim.sweep.drivers.base import DRIVERS, SweepDriver, get_driver

__all__ = ["DRIVERS", "SweepDriver", "get_driver"]
