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

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

from jupyter_remote import config

PRELOAD = "jupyter_remote.preload"


def start() -> Any:
    """Start the embedded cluster: its scheduler in a process of its own by default."""
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
