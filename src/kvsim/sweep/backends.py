"""Execution backends: apply a picklable function to items, yielding results as they finish.

* ``local`` — :class:`concurrent.futures.ProcessPoolExecutor` with ``workers`` processes
  (default ``os.cpu_count()``), started by a ``forkserver`` that imports kvsim once (so no
  thread of the parent, such as a progress bar, is forked, and workers start in
  milliseconds); ``spawn`` where there is no fork server. With one worker the items run
  in this process, in order.
* ``ray`` — one Ray task per item (``num_cpus=1``); connects to ``address`` when given,
  reuses an already initialised Ray, else starts a local Ray with ``workers`` CPUs (and
  shuts it down again at the end). Ray is imported lazily (extra ``kvsim[ray]``).

Results come back in completion order as ``(item index, result)``; callers sort.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from kvsim.errors import ConfigError, KvsimError

__all__ = ["BACKENDS", "default_workers", "map_unordered"]

T = TypeVar("T")
R = TypeVar("R")

BACKENDS = ("local", "ray")
#: Modules the local pool's fork server imports once, before forking workers.
_PRELOAD = ("kvsim.sweep.worker", "kvsim.api", "kvsim.sweep.drivers.builtins")


def default_workers() -> int:
    """Worker count when none is given: the number of CPU cores."""
    return max(os.cpu_count() or 1, 1)


def map_unordered(
    fn: Callable[[T], R],
    items: Sequence[T],
    *,
    backend: str = "local",
    workers: int | None = None,
    address: str | None = None,
) -> Iterator[tuple[int, R]]:
    """Yield ``(i, fn(items[i]))`` for every item as each finishes (see module docstring)."""
    if backend not in BACKENDS:
        raise ConfigError("backend", f"unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
    if workers is not None and workers < 1:
        raise ConfigError("workers", f"must be >= 1 (got {workers})")
    if not items:
        return iter(())
    if backend == "ray":
        return _ray_map(fn, items, workers, address)
    n = min(workers or default_workers(), len(items))
    if n == 1:
        return ((i, fn(item)) for i, item in enumerate(items))
    return _pool_map(fn, items, n)


def _pool_map(fn: Callable[[T], R], items: Sequence[T], workers: int) -> Iterator[tuple[int, R]]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    if "forkserver" in multiprocessing.get_all_start_methods():
        # A fresh single-threaded server imports kvsim once; workers fork from it cheaply.
        ctx: Any = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(list(_PRELOAD))
    else:  # pragma: no cover - Windows
        ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    try:
        futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
        for fut in as_completed(futures):
            try:
                result = fut.result()
            except BrokenProcessPool:
                raise KvsimError(
                    "a worker process died (out of memory?); rerun the same command to resume"
                ) from None
            yield futures[fut], result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _ray_map(
    fn: Callable[[T], R], items: Sequence[T], workers: int | None, address: str | None
) -> Iterator[tuple[int, R]]:
    try:
        import ray
    except ImportError:
        raise KvsimError("--backend ray needs ray: pip install 'kvsim[ray]'") from None
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address:
            kwargs["address"] = address
        elif workers:
            kwargs["num_cpus"] = workers
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise KvsimError(f"cannot start or reach Ray ({address or 'local'}): {exc}") from None
        started = True
    try:
        remote = ray.remote(num_cpus=1)(fn)
        refs = {remote.remote(item): i for i, item in enumerate(items)}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                yield refs[ref], ray.get(ref)
    finally:
        if started:
            ray.shutdown()
