"""Import the built-in sweep drivers so that they register themselves."""

from __future__ import annotations

from kvsim.sweep.drivers import cache, run  # noqa: F401
