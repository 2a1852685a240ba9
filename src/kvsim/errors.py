"""Exception hierarchy of kvsim.

Every error a user can cause derives from :class:`KvsimError`; the CLI catches it, prints
one line and exits with status 2. Anything else escaping is a bug in kvsim.

    KvsimError
    ├── ConfigError      bad configuration: names the key path and what is allowed
    ├── TraceError       bad trace input: names the file, line and field
    └── SimulationError  the simulation reached an impossible state (always a bug report)
"""

from __future__ import annotations

__all__ = ["ConfigError", "KvsimError", "SimulationError", "TraceError"]


class KvsimError(Exception):
    """Base class of every error kvsim raises on purpose."""


class ConfigError(KvsimError):
    """A configuration value is missing, unknown or out of range.

    ``path`` is the dotted key path (``scheduler.block_size``); the message says what is allowed.
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class TraceError(KvsimError):
    """A trace file is malformed. The message reads ``FILE:LINE: field 'x': problem``."""

    def __init__(self, file: str, line: int | None, field: str | None, message: str) -> None:
        self.file = file
        self.line = line
        self.field = field
        where = f"{file}:{line}" if line is not None else file
        what = f"field '{field}': " if field else ""
        super().__init__(f"{where}: {what}{message}")


class SimulationError(KvsimError):
    """An internal invariant was violated. Please report it with the config and seed."""
