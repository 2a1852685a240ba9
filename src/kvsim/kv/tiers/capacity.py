"""Tier capacities: parse ``1k`` / ``2.5M`` blocks, ``40GiB`` bytes, ``100ktok`` tokens, ``10%``.

A capacity is given in one of four units and resolved to whole blocks before a replay, once
the block size, the KV bytes per token and the trace are known:

============  ======================  ==================================================
written       unit                    resolved blocks
============  ======================  ==================================================
``5000``      blocks                  ``5000``
``1k``        blocks (k=1e3, M, G)    ``1000``
``40GiB``     bytes (B, KB/MB/GB/TB   ``floor(bytes / (block_size * kv_bytes_per_token))``
              SI, KiB/MiB/GiB/TiB)
``100ktok``   tokens (``tok`` suffix) ``floor(tokens / block_size)``
``10%``       fraction of the         ``floor(0.10 * unique_blocks)`` of the whole trace
              trace's unique blocks
``inf``       unbounded               ``unique_blocks`` (every block fits; no eviction)
============  ======================  ==================================================

A capacity that resolves to fewer than one block is a :class:`~kvsim.errors.ConfigError`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from kvsim.errors import ConfigError

__all__ = ["Capacity", "parse_capacity"]

CapacityUnit = Literal["blocks", "bytes", "tokens", "fraction", "inf"]

_COUNT_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}
_BYTE_SUFFIX = {
    "b": 1.0,
    "kb": 1e3,
    "mb": 1e6,
    "gb": 1e9,
    "tb": 1e12,
    "kib": 2.0**10,
    "mib": 2.0**20,
    "gib": 2.0**30,
    "tib": 2.0**40,
}
_NUM = r"(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)"
_RE_PERCENT = re.compile(rf"^{_NUM}\s*%$")
_RE_TOKENS = re.compile(rf"^{_NUM}\s*([kmgt]?)\s*tok(?:ens?)?$", re.IGNORECASE)
_RE_BYTES = re.compile(rf"^{_NUM}\s*([kmgt]i?b|b)$", re.IGNORECASE)
_RE_COUNT = re.compile(rf"^{_NUM}\s*([kmgt]?)(?:\s*blocks?)?$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Capacity:
    """A capacity before resolution: ``value`` in ``unit`` (a fraction in [0, 1] for
    ``fraction``; ignored for ``inf``). ``text`` is what the user wrote (for labels)."""

    unit: CapacityUnit
    value: float
    text: str

    def to_blocks(
        self, *, block_size: int, kv_bytes_per_token: float, unique_blocks: int, where: str = ""
    ) -> int:
        """Whole blocks this capacity buys (see the module table); at least 1 or an error."""
        if self.unit == "blocks":
            blocks = math.floor(self.value)
        elif self.unit == "bytes":
            blocks = math.floor(self.value / (block_size * kv_bytes_per_token))
        elif self.unit == "tokens":
            blocks = math.floor(self.value / block_size)
        elif self.unit == "fraction":
            blocks = math.floor(self.value * unique_blocks)
        else:
            blocks = unique_blocks
        if blocks < 1:
            raise ConfigError(
                where or "capacity",
                f"{self.text!r} resolves to {blocks} blocks (block size {block_size} tokens, "
                f"{unique_blocks} unique blocks in the trace); a tier needs at least 1 block",
            )
        return blocks


def parse_capacity(text: str | int | float, where: str = "capacity") -> Capacity:
    """Parse a capacity (see the module table). Plain numbers are blocks.

    Raises :class:`ConfigError` naming ``where`` and the accepted forms on bad input.
    """
    if isinstance(text, bool):
        raise _bad(where, text)
    if isinstance(text, (int, float)):
        if not math.isfinite(text) or text < 0:
            raise _bad(where, text)
        return Capacity("blocks", float(text), str(text))
    raw = text.strip()
    low = raw.lower()
    if low in ("inf", "infinite", "unbounded", "100%"):
        return Capacity("inf", math.inf, raw)
    m = _RE_PERCENT.match(raw)
    if m:
        frac = float(m.group(1)) / 100.0
        if frac > 1.0:
            raise ConfigError(where, f"a fraction of unique blocks must be <= 100%, got {raw!r}")
        return Capacity("fraction", frac, raw)
    m = _RE_TOKENS.match(raw)
    if m:
        return Capacity("tokens", float(m.group(1)) * _COUNT_SUFFIX[m.group(2).lower()], raw)
    m = _RE_BYTES.match(raw)
    if m:
        return Capacity("bytes", float(m.group(1)) * _BYTE_SUFFIX[m.group(2).lower()], raw)
    m = _RE_COUNT.match(raw)
    if m:
        return Capacity("blocks", float(m.group(1)) * _COUNT_SUFFIX[m.group(2).lower()], raw)
    raise _bad(where, text)


def _bad(where: str, text: object) -> ConfigError:
    return ConfigError(
        where,
        f"cannot parse capacity {text!r}; use blocks (5000, 1k, 2.5M), bytes (40GiB, 500MB), "
        "tokens (100ktok), a fraction of the trace's unique blocks (10%) or inf",
    )
