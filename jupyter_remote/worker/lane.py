"""A map's batches straight from the notebook to this worker, past the scheduler.

A batch sent as a task travels notebook -> scheduler -> worker -> scheduler -> notebook, and
the scheduler's bookkeeping adds messages of its own: about nine per batch, most of the
time a small map takes. The notebook sends the batches of a plain map (no refs among its
items, no requirements, no placement; see :mod:`jupyter_remote.core.lane`) to the handler
this module adds to the worker (:data:`HANDLER`), over the client's own connection to it, and
the answer carries the results: two messages.

The handler opens and runs the payload as :func:`jupyter_remote.worker.runner.run` does
for a task (output captured and routed, interrupts, ``get_worker()``,
``get_current_task()``), in a pool of its own with as many threads as the worker's: a long
map never queues the tasks of other calls behind it (they share the CPUs, as two
notebooks' work does). Answers:

- ``{"status": "done", "result": BatchResult (or its pickle), "printed": bool}``: with
  ``printed``, the batch's lines are on the stream, the last of them followed by a mark
  (``Sink.batch_end``) the notebook waits for, so no line arrives after the map returned;
- ``{"status": "failed", "error": ...}``: what the runner raised (a packed exception);
- ``{"status": "busy", "why": ...}``: the worker does not take work now (paused for
  memory, closing, or every thread of the pool held by an item longer than :data:`STUCK`
  seconds): the notebook sends the batch as a task instead, which Dask places.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from jupyter_remote._compat import as_task
from jupyter_remote.exceptions import RemoteTaskError
from jupyter_remote.wire import payload
from jupyter_remote.worker import capture, runner, state

HANDLER = "jupyter_remote_batch"
SMALL = 8 * 2**20  # results up to this size travel as pickled bytes (see _run)
# A batch runs for ``map.batch-seconds`` (0.5 s) and then stops after its current item; a
# thread held longer than this is held by one long item.
STUCK = 2.0

_pools: weakref.WeakKeyDictionary[Any, ThreadPoolExecutor] = weakref.WeakKeyDictionary()


def install(worker: Any) -> None:
    """Add the handler to ``worker`` (once; a second registration of the plugin is a no-op)."""
    handlers = getattr(worker, "handlers", None)
    if handlers is None or HANDLER in handlers:
        return
    threads = int(getattr(getattr(worker, "state", None), "nthreads", 0) or 1)
    pool = ThreadPoolExecutor(threads, thread_name_prefix="jupyter-remote-batch")
    _pools[worker] = pool
    running: dict[str, tuple[float, str]] = {}  # key -> when its batch started, its call

    async def handle(comm: Any = None, data: Any = None, key: str = "") -> dict[str, Any]:
        status = getattr(getattr(worker, "status", None), "name", "running")
        if status != "running":
            return {"status": "busy", "why": f"the worker is {status}"}
        if _held(running) >= threads:
            # every thread is held by an item that outlived its batch's time (a long call
            # into C) or by a cancelled call not back yet: Dask places the work instead
            return {"status": "busy", "why": f"its {threads} thread(s) are held by long items"}
        return await asyncio.get_running_loop().run_in_executor(pool, _run, worker, data, key,
                                                                running)

    handlers[HANDLER] = handle


def uninstall(worker: Any) -> None:
    """The worker closes: its pool goes (a running batch ends with the process)."""
    pool = _pools.pop(worker, None)
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)
    handlers = getattr(worker, "handlers", None)
    if handlers is not None:
        handlers.pop(HANDLER, None)


def _held(running: dict[str, tuple[float, str]]) -> int:
    """Threads held by a batch past its time, or by a call cancelled meanwhile."""
    now = time.monotonic()
    return sum(1 for began, call in list(running.values())
               if now - began > STUCK or state.interrupted(call))


def _run(worker: Any, data: Any, key: str,
         running: dict[str, tuple[float, str]]) -> dict[str, Any]:
    from distributed.protocol.serialize import Serialize

    with as_task(worker, key):
        try:
            spec = runner.opened(data)
            running[key] = (time.monotonic(), spec["call"])
            sink = capture.worker_sink(spec["call"], spec["topic"], worker)
            result = runner.execute(spec, sink, worker.address)
        except RemoteTaskError as exc:
            return {"status": "failed", "error": Serialize(exc)}  # type: ignore[no-untyped-call]
        finally:
            running.pop(key, None)
    # Pickled here when small: Dask's serialization of the same object costs more (100,000
    # items of x + 1: 30 ms a map against 20); big arrays still go as frames of their own.
    data = payload.small_pickle(result, SMALL)
    # printed: the notebook waits for the mark after its last line (runner.execute)
    if data is None:
        return {"status": "done", "result": Serialize(result),  # type: ignore[no-untyped-call]
                "printed": sink.wrote}
    return {"status": "done", "result": data, "printed": sink.wrote}
