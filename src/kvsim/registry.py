"""A name -> class registry for pluggable components (allocators, eviction policies, ...).

One policy = one module that decorates its class with ``@registry.register("name")``; the
built-in modules are imported lazily the first time the registry is read, so a config can be
validated against the full list of names without importing every implementation up front.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Generic, TypeVar

from kvsim.errors import ConfigError

__all__ = ["Registry"]

T = TypeVar("T", bound=type)


class Registry(Generic[T]):
    """Maps names to classes. ``what`` names the component in errors ("allocator"),
    ``key_path`` is the config key an unknown name is reported under, ``attr`` the class
    attribute that receives the registered name, ``builtins`` a module whose import
    registers the built-in classes.

    Invariants: one name, one class (re-registering the same class is a no-op); lookups of
    unknown names raise :class:`ConfigError` listing every registered name.
    """

    def __init__(self, what: str, key_path: str, attr: str, builtins: str) -> None:
        self.what = what
        self.key_path = key_path
        self.attr = attr
        self.builtins = builtins
        self._classes: dict[str, T] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator: make ``cls`` available as ``name``."""

        def deco(cls: T) -> T:
            if self._classes.get(name, cls) is not cls:
                raise ValueError(f"{self.what} {name!r} is already registered")
            setattr(cls, self.attr, name)
            self._classes[name] = cls
            return cls

        return deco

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            importlib.import_module(self.builtins)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        self._load()
        return sorted(self._classes)

    def get(self, name: str) -> T:
        """The class registered as ``name``."""
        self._load()
        cls = self._classes.get(name)
        if cls is None:
            known = ", ".join(sorted(self._classes))
            raise ConfigError(self.key_path, f"unknown {self.what} {name!r}; known: {known}")
        return cls
