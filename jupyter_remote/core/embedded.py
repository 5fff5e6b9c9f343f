"""The embedded ``local`` cluster: started by the kernel on first use, tuned for interactive
work, and closed with the kernel.

Its scheduler runs in a process of its own by default (Dask's ``SubprocessCluster``): a busy
kernel then never stalls the cluster. Every process it starts loads
:mod:`jupyter_remote.preload` (zero send intervals, no orphans) and logs to
:func:`log_path`, not to the kernel's stderr.

Everything it starts listens on loopback (``jupyter-remote.local.host``; the dashboard on
``local.dashboard-address``): the dashboard has no authentication and shows task names,
worker logs and call stacks, so it is not reachable from the network unless config says
so. Its scheduler drops a worker it has not heard from within ``local.worker-ttl`` (10 s;
Dask's own default is 5 minutes), so a call on a worker cut off by the network restarts
elsewhere within seconds.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from jupyter_remote import config

PRELOAD = "jupyter_remote.preload"


def start(at_exit: Callable[[], None] | None = None) -> Any:
    """Start the embedded cluster: its scheduler in a process of its own by default.

    ``at_exit`` (the caller's close, which calls :func:`close_workers`) is registered with
    ``atexit`` again now, so that it runs before the exit hooks Dask registered when it was
    imported: they kill the workers (and close the client ``close_workers`` needs) first.
    """
    from jupyter_remote.preload import INTERACTIVE_ENV, PARENT_ENV

    def cfg(key: str, default: Any = None) -> Any:
        # one key at a time: dask config then matches `threads_per_worker` set through
        # DASK_JUPYTER_REMOTE__LOCAL__THREADS_PER_WORKER as well as `threads-per-worker`
        return config.get(f"local.{key}", default)

    # Read by the processes the cluster starts (not by this one): the kernel's PID for
    # their orphan watch, and quiet startup logs.
    os.environ[PARENT_ENV] = str(os.getpid())
    os.environ[INTERACTIVE_ENV] = "1" if cfg("interactive") else "0"
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    preload = [PRELOAD]
    host = cfg("host") or "127.0.0.1"
    common: dict[str, Any] = {
        "n_workers": cfg("n-workers"),
        "threads_per_worker": cfg("threads-per-worker"),
        "dashboard_address": cfg("dashboard-address"),
        "host": host,
    }
    scheduler_kwargs: dict[str, Any] = {"preload": preload}
    if cfg("worker-ttl"):
        scheduler_kwargs["worker_ttl"] = cfg("worker-ttl")
    worker_kwargs = {"memory_limit": cfg("memory-limit"), "preload": preload}
    if cfg("scheduler-process", True):
        from distributed.deploy.subprocess import SubprocessCluster

        worker_kwargs["preload_nanny"] = preload
        # The workers' own logs (Dask's "Compute Failed" for every remote exception, say)
        # go to a file: inherited, the kernel's stderr would print them into notebook cells.
        with _stderr_to(log_path()):
            cluster = SubprocessCluster(
                scheduler_kwargs=scheduler_kwargs,
                worker_kwargs=worker_kwargs,
                **common,
            )
        if at_exit is not None:  # last registered, first run
            atexit.unregister(at_exit)
            atexit.register(at_exit)
    else:
        from distributed import LocalCluster

        cluster = LocalCluster(
            processes=True,
            scheduler_kwargs=scheduler_kwargs,
            memory_limit=worker_kwargs["memory_limit"],
            **common,
        )
    return cluster


def log_path() -> str:
    """Where the embedded cluster of this process writes its logs."""
    import tempfile

    return os.path.join(tempfile.gettempdir(), f"jupyter-remote-local-{os.getpid()}.log")


@contextlib.contextmanager
def _stderr_to(path: str) -> Iterator[None]:
    """Point file descriptor 2 at ``path`` while processes are spawned (they inherit it)."""
    sys.stderr.flush()
    saved = os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.dup2(fd, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(fd)
        os.close(saved)


def close_workers(client: Any, deployment: Any, timeout: float = 5.0) -> None:
    """Have each nanny of the embedded cluster close its worker and itself, and wait (at
    most ``timeout`` seconds in all) for their processes to end, before Dask's
    ``SubprocessCluster`` closes.

    That close kills every process under each worker's ``dask spec`` (SIGKILL): a nanny
    killed that way never unlinks the semaphores its worker's queues made, and each start
    of the cluster left 12 ``sem.mp-*`` files in ``/dev/shm`` until the machine restarted.
    A worker busy with a call that does not stop is terminated by its nanny after half of
    ``timeout``; whatever is still running at the end is killed as before.
    """
    if deployment is None:
        return
    deadline = time.monotonic() + timeout
    pids = [proc.pid for proc in (getattr(w, "process", None)
                                  for w in getattr(deployment, "workers", {}).values())
            if proc is not None and getattr(proc, "returncode", 0) is None]
    if not pids:
        return
    try:
        client.run_on_scheduler(_close_every_worker, timeout / 2)
    except Exception:  # a lost scheduler: Dask's close kills them as before
        return
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if _alive(pid)]
        time.sleep(0.05)


async def _close_every_worker(timeout: float, dask_scheduler: Any) -> None:
    """Each nanny closes its worker (a stop message the worker process waits for: a worker
    closed by the scheduler instead waits 2 s for it) and then itself."""
    import asyncio

    nannies = [ws.nanny for ws in list(dask_scheduler.workers.values()) if ws.nanny]
    closing = asyncio.gather(*(dask_scheduler.rpc(n).terminate(timeout=timeout,
                                                              reason="jupyter-remote-close")
                               for n in nannies), return_exceptions=True)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(closing, timeout + 0.5)


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie has ended: asyncio reaps it, not us)."""
    import psutil

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
