"""Session affinity: every turn of a session goes to the worker of its first turn."""

from __future__ import annotations

from collections.abc import Sequence

from kvsim.cache.routers.base import CacheRouter, Worker, least_loaded, register_router
from kvsim.workload.request import Request

__all__ = ["SessionAffinityRouter"]


@register_router("session_affinity")
class SessionAffinityRouter(CacheRouter):
    """A session's first turn (and every request without a session, ``session_id < 0``) goes
    to the least-loaded worker (fewest requests; ties: least recently used, then index);
    later turns follow it. Memory: one entry per session."""

    def __init__(self) -> None:
        self._home: dict[int, int] = {}

    def route(self, req: Request, hashes: Sequence[int], workers: Sequence[Worker]) -> int:
        sid = req.session_id
        if sid < 0:
            return least_loaded(workers)
        home = self._home.get(sid)
        if home is None:
            home = self._home[sid] = least_loaded(workers)
        return home
