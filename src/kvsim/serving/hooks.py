"""What an :class:`~kvsim.serving.instance.Instance` needs from its surroundings: the
observer of sequence lifecycles (the metrics collector), the cluster hooks, and its
per-replica parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from kvsim.perf.roofline import RooflineModel
from kvsim.serving.seq import Seq, SeqState

if TYPE_CHECKING:
    from kvsim.serving.instance import Instance

__all__ = ["InstanceHooks", "InstanceObserver", "InstanceSetup", "TerminalHooks"]


class InstanceObserver(Protocol):
    """Receives the lifecycle of sequences (implemented by the metrics collector)."""

    def on_admit(self, seq: Seq, now: float) -> None: ...
    def on_first_token(self, seq: Seq, now: float) -> None: ...
    def on_finish(self, seq: Seq, now: float) -> None: ...
    def on_preempt(self, seq: Seq, now: float) -> None: ...
    def on_evict(self, seq: Seq, now: float) -> None: ...
    def on_reject(self, seq: Seq, now: float) -> None: ...


class InstanceHooks(Protocol):
    """What an instance asks of the cluster around it."""

    def reject(self, inst: Instance, seq: Seq, now: float, reason: str, retryable: bool) -> None:
        """``seq`` (no longer queued or running here, no KV here) cannot be served here."""

    def on_capacity(self, inst: Instance, now: float) -> None:
        """The instance's load went down (a finish or a rejection)."""

    def on_prefill_done(self, inst: Instance, seq: Seq, now: float) -> bool:
        """``seq`` finished its first prefill; True if it was handed off (phase routing)."""
        return False


class TerminalHooks:
    """Hooks of a stand-alone instance: rejections are final, nothing moves."""

    def __init__(self, observer: InstanceObserver) -> None:
        self.obs = observer

    def reject(self, inst: Instance, seq: Seq, now: float, reason: str, retryable: bool) -> None:
        seq.state = SeqState.REJECTED
        seq.reject_reason = reason
        self.obs.on_reject(seq, now)

    def on_capacity(self, inst: Instance, now: float) -> None:
        return None

    def on_prefill_done(self, inst: Instance, seq: Seq, now: float) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class InstanceSetup:
    """Per-replica parameters (heterogeneous clusters differ in these)."""

    index: int
    name: str
    gpu_name: str
    num_blocks: int
    time_model: RooflineModel
    max_num_seqs: int
    decode_speed: float  # nominal decode tokens/s of one sequence (routing scores)
    weight_bytes: float = 0.0
    node: int | None = None
    tensor_parallel: int = 1
