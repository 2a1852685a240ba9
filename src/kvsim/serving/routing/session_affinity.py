"""Session affinity: every request of a session goes where its first request went."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kvsim.serving.routing.base import RoutedInstance, Router, register_router, speed_load
from kvsim.serving.seq import Seq


@register_router("session_affinity")
class SessionAffinityRouter(Router):
    """Sticky by ``session_id`` (>= 0); a new session, a session-less request, or a session
    whose instance is not among the candidates (a retry) goes least-loaded, and a session's
    instance is (re)set to wherever it went."""

    def __init__(self, params: Any, rng: Any) -> None:
        super().__init__(params, rng)
        self._session_to_instance: dict[int, int] = {}

    def choose(self, seq: Seq, candidates: Sequence[RoutedInstance], now: float) -> Any:
        sid = seq.req.session_id
        if sid >= 0:
            idx = self._session_to_instance.get(sid)
            if idx is not None:
                for inst in candidates:
                    if inst.index == idx:
                        return inst
        inst = min(candidates, key=speed_load)
        if sid >= 0:
            self._session_to_instance[sid] = inst.index
        return inst
