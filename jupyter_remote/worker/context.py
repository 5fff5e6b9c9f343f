"""What the running remote code can learn about where it runs: :func:`get_env`.

In a worker process, a call without requirements sees the worker's own interpreter; a call
with requirements runs in an environment's process, which sets what the call was given
(:func:`given`) for the thread running it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

_current = threading.local()
_workers_cache: tuple[float, list[str]] = (0.0, [])


def get_env() -> dict[str, Any]:
    """What the running remote code was given: requirements, files, env, cluster workers.

    Keys: ``requirements`` (list of str), ``files`` (names in ``workdir``), ``workdir``,
    ``hash`` (the environment's key, or None without requirements), ``path`` (the env's
    folder, or None), ``python`` (the interpreter running the code) and ``workers`` (the
    addresses of the cluster's workers when the call started).
    """
    info = getattr(_current, "info", None)
    if info is not None:
        return dict(info)
    return {"requirements": [], "files": [], "workdir": os.getcwd(), "hash": None, "path": None,
            "python": sys.executable, "workers": worker_addresses()}


@contextlib.contextmanager
def given(info: dict[str, Any]) -> Iterator[None]:
    """While inside, :func:`get_env` in this thread returns ``info``."""
    _current.info = info
    try:
        yield
    finally:
        _current.info = None


def current_worker() -> Any:
    """The Dask worker running this code, or None (an environment's process, no worker)."""
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):
        return None


THREADS_VARIABLE = "JUPYTER_REMOTE_WORKER_THREADS"


def worker_threads() -> int:
    """The threads of the Dask worker this code runs for: its own in a worker; in an
    environment's process, those of the worker that started it (:data:`THREADS_VARIABLE`,
    set by :mod:`jupyter_remote.worker.envexec`); else the CPUs this process may use."""
    worker = current_worker()
    nthreads = getattr(getattr(worker, "state", None), "nthreads", None)
    if nthreads:
        return int(nthreads)
    inherited = os.environ.get(THREADS_VARIABLE, "")
    if inherited.isdigit() and int(inherited) > 0:
        return int(inherited)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def worker_address() -> str:
    """The address of the Dask worker running this code, or "" outside a worker."""
    worker = current_worker()
    return str(worker.address) if worker is not None else ""


def worker_addresses(ttl: float = 2.0) -> list[str]:
    """The cluster's worker addresses, asked of the scheduler by this worker (cached briefly)."""
    global _workers_cache
    when, addresses = _workers_cache
    if time.monotonic() - when < ttl:
        return list(addresses)
    worker = current_worker()
    if worker is None:
        return []
    from distributed.utils import sync

    try:
        identity = sync(worker.loop, worker.scheduler.identity)
        addresses = sorted(identity.get("workers", {}))
    except Exception:
        addresses = [worker.address]
    _workers_cache = (time.monotonic(), addresses)
    return list(addresses)
