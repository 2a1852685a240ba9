"""The router interface and registry (DESIGN.md §4 "Routing").

A router picks, for one arriving sequence, one instance out of a non-empty candidate list
(the whole cluster, or what is left of it on a cross-instance retry). It reads instance state
through the small :class:`RoutedInstance` protocol only and never mutates an instance.

Invariants every router keeps: ``choose`` returns an element of ``candidates``; it is
deterministic given the run's seeded ``numpy.random.Generator``; ties go to the candidate
listed first (lowest instance index).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol

import numpy as np

from kvsim.errors import ConfigError
from kvsim.registry import Registry
from kvsim.serving.seq import Seq

__all__ = [
    "DRAW_BLOCK",
    "RoutedInstance",
    "Router",
    "create_router",
    "register_router",
    "router_class",
    "router_names",
]


class RoutedInstance(Protocol):
    """What routers may read from an instance (all side-effect free)."""

    index: int
    decode_speed: float

    def load(self) -> int: ...
    def free_blocks_at(self, now: float) -> int: ...
    def cached_prefix_blocks(self, hashes: Sequence[int], now: float) -> int: ...


class Router:
    """Base class: subclasses set ``params`` (name -> default) and implement ``choose``."""

    #: Registry name, set by :func:`register_router`.
    name: ClassVar[str] = ""
    #: Accepted ``cluster.router_params`` keys and their defaults.
    params: ClassVar[dict[str, float]] = {}

    def __init__(self, params: Mapping[str, Any], rng: np.random.Generator) -> None:
        self.rng = rng
        merged: dict[str, float] = dict(self.params)
        for key, value in params.items():
            if key not in self.params:
                allowed = ", ".join(sorted(self.params)) or "none"
                raise ConfigError(
                    f"cluster.router_params.{key}",
                    f"unknown parameter for router {self.name!r}; allowed: {allowed}",
                )
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(
                    f"cluster.router_params.{key}", f"must be a number, got {value!r}"
                )
            merged[key] = float(value)
        self.values = merged
        self._uniform: list[float] = []
        self._next_u = 0

    def draw_index(self, n: int) -> int:
        """A uniform integer in ``[0, n)``: ``floor(u * n)`` for the next ``u`` of the run's
        Generator, drawn in blocks of :data:`DRAW_BLOCK` (``rng.random(DRAW_BLOCK)``) because
        one Generator call per draw costs more than the routing decision."""
        i = self._next_u
        if i == len(self._uniform):
            self._uniform = self.rng.random(DRAW_BLOCK).tolist()
            i = 0
        self._next_u = i + 1
        return min(int(self._uniform[i] * n), n - 1)

    def choose(self, seq: Seq, candidates: Sequence[RoutedInstance], now: float) -> Any:
        """The instance ``seq`` goes to (an element of the non-empty ``candidates``)."""
        raise NotImplementedError


def speed_load(inst: RoutedInstance) -> float:
    """Active + queued sequences per decode token/s: the least-loaded score (lower wins)."""
    return inst.load() / inst.decode_speed


#: Uniform variates fetched from the Generator per call (see :meth:`Router.draw_index`).
DRAW_BLOCK = 1024

_REGISTRY: Registry[type[Router]] = Registry(
    "router", "cluster.router", "name", "kvsim.serving.routing.builtins"
)
register_router = _REGISTRY.register


def router_names() -> list[str]:
    """Every registered router name, sorted."""
    return _REGISTRY.names()


def router_class(name: str) -> type[Router]:
    """The router class registered as ``name`` (ConfigError listing the names otherwise)."""
    return _REGISTRY.get(name)


def create_router(name: str, params: Mapping[str, Any], rng: np.random.Generator) -> Router:
    """Instantiate router ``name`` with ``cluster.router_params``."""
    return router_class(name)(params, rng)
