"""CLI sub-commands that live outside ``kvsim.cli``.

Each module here exposes ``register(app: typer.Typer) -> None`` and adds its commands to the
root app. Modules must import heavy optional dependencies (ray, fastapi, lightgbm, torch) lazily,
inside the command body, so that ``kvsim --help`` works with core dependencies only.
"""

from __future__ import annotations

COMMAND_MODULES: tuple[str, ...] = ("cache", "sweep", "serve", "convert")
