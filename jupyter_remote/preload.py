"""Dask preload for the embedded cluster: interactive latency and no orphans.

Runs in the processes the embedded cluster starts, never in the notebook: loaded with
``preload=["jupyter_remote.preload"]`` by the scheduler, the nannies and the workers
(``jupyter_remote.core.tuning``, its old name, still works). It

- sets Dask's batched-send intervals to zero (they wait 2-10 ms before sending, which
  dominates the round trip of a small interactive call), and
- closes the server when the kernel that started the cluster is gone, so a killed kernel
  never leaves a scheduler or workers behind. The kernel's PID comes from the
  ``JUPYTER_REMOTE_PARENT_PID`` environment variable;
- moves the process out of the kernel's process group: interrupting the kernel (SIGINT to
  its whole group) must cancel the waiting cell, not kill the cluster under it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from jupyter_remote._compat import zero_interval

logger = logging.getLogger(__name__)

PARENT_ENV = "JUPYTER_REMOTE_PARENT_PID"
INTERACTIVE_ENV = "JUPYTER_REMOTE_ZERO_INTERVALS"


def _zero_intervals_plugin() -> Any:
    from distributed.diagnostics.plugin import SchedulerPlugin

    class ZeroIntervals(SchedulerPlugin):
        """Zero the interval of each new worker and client stream."""

        name = "jupyter-remote-zero-intervals"

        def add_worker(self, scheduler: Any, worker: str) -> None:
            zero_interval(scheduler.stream_comms.get(worker))

        def add_client(self, scheduler: Any, client: str) -> None:
            # The client's stream is created right after this hook returns.
            def zero() -> None:
                zero_interval(scheduler.client_comms.get(client))

            scheduler.loop.add_callback(zero)

    return ZeroIntervals()


_watches: set[asyncio.Task] = set()  # referenced, so the event loop keeps them


def _watch_parent(server: Any) -> None:
    pid = os.environ.get(PARENT_ENV)
    if not pid:
        return
    import psutil

    parent = int(pid)

    async def watch() -> None:
        while True:
            await asyncio.sleep(1)
            try:
                alive = psutil.Process(parent).status() != psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                alive = False
            if not alive:
                logger.warning("kernel %s is gone; closing %s", parent, type(server).__name__)
                await server.close()
                return

    task = asyncio.get_running_loop().create_task(watch())
    _watches.add(task)
    task.add_done_callback(_watches.discard)


def _leave_kernel_group() -> None:
    parent = os.environ.get(PARENT_ENV)
    if not parent or int(parent) == os.getpid():  # an in-process scheduler: leave it be
        return
    try:
        if os.getpgrp() == os.getpgid(int(parent)):
            os.setsid()
    except OSError:  # the kernel is gone, or this is a group leader already
        pass


async def dask_setup(server: Any) -> None:
    from distributed import Nanny, Scheduler, Worker

    interactive = os.environ.get(INTERACTIVE_ENV) == "1"
    if isinstance(server, Scheduler):
        _leave_kernel_group()
        if interactive:
            server.add_plugin(_zero_intervals_plugin())
        _watch_parent(server)
    elif isinstance(server, Worker):
        if interactive:
            zero_interval(server.batched_stream)
    elif isinstance(server, Nanny):
        _leave_kernel_group()
        _watch_parent(server)
