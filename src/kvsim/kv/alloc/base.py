"""The allocator interface of the memory study, its parameter object and its registry.

An allocator manages ``num_slots`` KV *slots* (one slot holds one token's K and V for every
layer) on behalf of sequences identified by an ``int`` id. The driver calls

* :meth:`Allocator.allocate` once per sequence (its first ``num_tokens`` tokens, and the
  length ``final_tokens`` it will reach, which only the oracle-style strategies may use);
* :meth:`Allocator.append` as the sequence grows;
* :meth:`Allocator.free` when it completes (or is preempted).

"Cannot allocate" is the return value ``False`` and leaves the allocator as it was (the
compression gate may have compressed cold pages while trying: that is its documented side
effect). Misuse (an unknown or duplicate id) raises :class:`~kvsim.errors.SimulationError`.

Counters every allocator keeps up to date after each call (all in slots unless named
otherwise), with these invariants::

    0 <= used_slots <= reserved_slots <= num_slots
    future_slots <= reserved_slots - used_slots       (reserved for tokens still to come)
    peak_reserved_slots = max over time of reserved_slots
    num_tokens >= used_slots                          (equal unless pages are compressed)

``used_slots`` counts physical slots holding token states; ``num_tokens`` counts the token
states themselves (a compressed page holds more tokens than it has slots). Internal
fragmentation is ``reserved_slots - used_slots``; external fragmentation is asked for with
:meth:`Allocator.external_fragmentation_slots` because it depends on the next request.

New allocators live in their own module and register with :func:`register_allocator`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from kvsim.registry import Registry

__all__ = [
    "KV_DTYPE_BYTES",
    "Allocator",
    "AllocatorSpec",
    "allocator_kinds",
    "create_allocator",
    "register_allocator",
]

#: Bytes per KV element for each supported KV quantisation.
KV_DTYPE_BYTES: dict[str, float] = {"fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}


@dataclass(frozen=True, slots=True)
class AllocatorSpec:
    """Parameters of one allocator instance (a field an allocator does not use is ignored).

    Attributes:
        kind: registry name (``paged``, ``contiguous``, ...).
        block_size: slots per block (paged kinds) or allocation granularity (contiguous kinds).
        max_len: the model's maximum sequence length (the ``max`` strategy reserves it).
        compression_ratio: size of a compressed page relative to a plain one, in (0, 1).
        pressure_threshold: effective usage (fraction of blocks) above which cold pages
            are compressed.
    """

    kind: str
    block_size: int = 16
    max_len: int = 2048
    compression_ratio: float = 0.5
    pressure_threshold: float = 0.9


class Allocator(ABC):
    """Base class: the counters and the hooks every allocator provides (see module doc)."""

    kind: ClassVar[str] = ""
    #: True if an allocation that failed may succeed later without any free (compression).
    reclaims_without_free: ClassVar[bool] = False

    def __init__(self, num_slots: int, spec: AllocatorSpec) -> None:
        if num_slots < 0:
            raise ValueError(f"num_slots must be >= 0, got {num_slots}")
        self.spec = spec
        self.num_slots: int = num_slots
        self.used_slots: int = 0
        self.reserved_slots: int = 0
        self.future_slots: int = 0
        self.num_tokens: int = 0
        self.peak_reserved_slots: int = 0
        self.num_failed: int = 0
        self.num_compressions: int = 0

    @abstractmethod
    def allocate(self, seq_id: int, num_tokens: int, final_tokens: int, now: int) -> bool:
        """Admit sequence ``seq_id`` holding ``num_tokens`` tokens (``>= 1``) that will grow
        to ``final_tokens``. Returns False (state unchanged) if it does not fit."""

    @abstractmethod
    def append(self, seq_id: int, num_tokens: int, now: int) -> bool:
        """Grow ``seq_id`` by ``num_tokens`` tokens. Returns False (state unchanged) if the
        memory for them cannot be found."""

    @abstractmethod
    def free(self, seq_id: int, now: int) -> None:
        """Release everything ``seq_id`` holds."""

    @abstractmethod
    def reservation_slots(self, num_tokens: int, final_tokens: int) -> int:
        """Slots :meth:`allocate` would take for such a sequence (for lookahead metrics)."""

    @abstractmethod
    def external_fragmentation_slots(self, need_slots: int) -> int:
        """Free slots that cannot be part of an allocation of ``need_slots`` slots because
        they lie in holes too small for it (0 for allocators without address holes)."""

    @property
    def free_slots(self) -> int:
        """Slots not reserved by any sequence."""
        return self.num_slots - self.reserved_slots

    def _note_peak(self) -> None:
        if self.reserved_slots > self.peak_reserved_slots:
            self.peak_reserved_slots = self.reserved_slots


_REGISTRY: Registry[type[Allocator]] = Registry(
    "allocator", "kind", "kind", "kvsim.kv.alloc.builtins"
)
#: Class decorator: make ``cls`` available as an allocator kind (one name, one class).
register_allocator = _REGISTRY.register


def allocator_kinds() -> list[str]:
    """Registered allocator kinds, sorted."""
    return _REGISTRY.names()


def create_allocator(spec: AllocatorSpec, num_slots: int) -> Allocator:
    """A new allocator of kind ``spec.kind`` over ``num_slots`` slots.

    An unknown kind raises :class:`~kvsim.errors.ConfigError` listing the registered ones.
    """
    cls = _REGISTRY.get(spec.kind)
    return cls(num_slots, spec)
