"""Every private hook into Dask, ipykernel and CPython, in one place.

Each function below names the private thing it uses, the versions it was checked on, the
feature test it makes, and what happens without it (the fallback). Nothing else in the
package touches a private name of another project, so a new Dask or ipykernel release can
break only this module, and its tests (``tests/test_compat.py``) say which hook broke.

Checked on: CPython 3.10-3.13, dask/distributed 2025.1-2026.8.0, ipykernel 7.4.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

logger = logging.getLogger(__name__)


# -- distributed: batched sends ------------------------------------------------------------
def zero_interval(stream: Any) -> bool:
    """Make a ``distributed.batched.BatchedSend`` send at once instead of every 2-10 ms.

    Private: the ``interval`` attribute (distributed 2022.x-2026.8.0; the client's is
    hard-coded to 10 ms). Feature test: the attribute exists. Fallback: the stream keeps its
    interval (calls take a few ms longer). Returns whether it was set.
    """
    if stream is None or not hasattr(stream, "interval"):
        return False
    stream.interval = 0
    return True


# -- distributed: the scheduler's event topics ---------------------------------------------
def truncate_events(dask_scheduler: Any, topic: str) -> bool:
    """Forget the events the scheduler keeps for ``topic`` (runs on the scheduler).

    Private: ``Scheduler._broker.truncate`` (distributed 2024.2-2026.8.0). Feature test: the
    broker and its method exist. Fallback: the events stay, up to
    ``distributed.admin.low-level-log-length`` per topic.
    """
    broker = getattr(dask_scheduler, "_broker", None)
    truncate = getattr(broker, "truncate", None)
    if truncate is None:
        return False
    truncate(topic)
    return True


async def run_on_scheduler_async(client: Any, fn: Callable[..., Any], *args: Any) -> Any:
    """``client.run_on_scheduler(fn, *args)`` awaited on the client's own event loop.

    Private: ``Client._run_on_scheduler`` (distributed 2022.x-2026.8.0), the coroutine behind
    the public method, which from the loop's thread would block on itself. Feature test: the
    method exists. Fallback: the public method with ``asynchronous=True``.
    """
    private = getattr(client, "_run_on_scheduler", None)
    if private is not None:
        return await private(fn, *args)
    return await client.run_on_scheduler(fn, *args, asynchronous=True)


# -- distributed: futures ------------------------------------------------------------------
def when_done(future: Any, fn: Callable[[Any], Any]) -> None:
    """Call ``fn(future)`` on the client's event loop once ``future`` is no longer pending
    (finished, failed, cancelled or lost), so ``fn`` must not block.

    ``Future.add_done_callback`` hands ``fn`` to a thread pool of Dask's, which refuses work
    once the interpreter is shutting down: a call finished by its event stream leaves its
    future pending for a moment longer, and a script that ends right then printed
    ``RuntimeError: cannot schedule new futures after interpreter shutdown`` when the
    client closed. Private: ``Future._state.wait()`` (distributed 2022.x-2026.8.0), the
    coroutine ``add_done_callback`` itself awaits. Feature test: it exists. Fallback:
    ``add_done_callback``.
    """
    state = getattr(future, "_state", None)
    if not callable(getattr(state, "wait", None)):
        future.add_done_callback(fn)
        return

    async def wait() -> None:
        while future.status == "pending":
            await state.wait()
        fn(future)

    future.client.loop.add_callback(wait)


# -- distributed: straight to a worker ----------------------------------------------------
async def call_worker(client: Any, address: str, op: str, timeout: float, **msg: Any) -> Any:
    """Send ``op(**msg)`` to the worker at ``address`` over the client's connection pool
    and return its answer; connecting gives up after ``timeout`` seconds.

    Private: ``ConnectionPool.connect(addr, timeout)`` / ``reuse`` (marked "for internal
    use"; distributed 2022.x-2026.8.0), what ``client.rpc(address).op(**msg)`` does, with
    the connect timeout of this call rather than the pool's (30 s). Feature test: both exist.
    Fallback: ``client.rpc(address)``, whose connect gives up after the pool's timeout (the
    answer itself may take as long as the work: it is not bounded).
    """
    from distributed.core import send_recv

    pool = client.rpc
    if not (callable(getattr(pool, "connect", None)) and callable(getattr(pool, "reuse", None))):
        return await getattr(pool(address), op)(**msg)
    comm = await pool.connect(address, timeout=timeout)
    try:
        return await send_recv(comm, op=op, **msg)
    finally:
        pool.reuse(address, comm)


@contextlib.contextmanager
def as_task(worker: Any, key: str) -> Iterator[None]:
    """In this thread, ``distributed.get_worker()``/``get_client()`` find ``worker`` as they
    do inside its tasks, and ``get_worker().get_current_task()`` is ``key`` (for code run
    by a handler of ours rather than by a task).

    Private: ``distributed.worker._worker_cvar`` and ``distributed.utils.set_thread_state``
    (distributed 2024.x-2026.8.0), what ``distributed.worker._run_task`` sets, with the
    worker's ``active_threads`` (documented on ``Worker``). Feature test: both import.
    Fallback: nothing is set (``get_worker()`` raises "No worker found" there).
    """
    try:
        from distributed.utils import set_thread_state
        from distributed.worker import _worker_cvar
    except ImportError:
        yield
        return
    state = getattr(worker, "execution_state", None) or {"worker": worker}
    ident = threading.get_ident()
    lock = getattr(worker, "active_threads_lock", None) or threading.Lock()
    active = getattr(worker, "active_threads", {})
    with lock:  # what ``Worker.get_current_task`` and Dask's profiler read
        active[ident] = key
    with set_thread_state(start_time=time.time(), execution_state=state, key=key):
        token = _worker_cvar.set(worker)
        try:
            yield
        finally:
            _worker_cvar.reset(token)
            with lock:
                active.pop(ident, None)


# -- distributed: the scheduler's tasks ----------------------------------------------------
class TaskView(NamedTuple):
    """What the package reads of one of the scheduler's ``TaskState``s."""

    key: Any
    state: str
    annotations: dict[str, Any]
    worker: str | None  # the worker processing it, if it is processing
    wanted_by: list[str]  # the ids of the clients that want it


def scheduler_tasks(dask_scheduler: Any, keys: Iterable[Any] | None = None) -> Iterator[TaskView]:
    """The scheduler's tasks (only ``keys``, if given) as :class:`TaskView`s (runs on the
    scheduler).

    Private: ``Scheduler.tasks`` and the ``TaskState`` fields ``state``, ``annotations``,
    ``processing_on`` and ``who_wants`` (distributed 2022.x-2026.8.0). Feature test: each
    field read with a default. Fallback: a task without them reads as unannotated.
    """
    tasks = getattr(dask_scheduler, "tasks", {})
    found = list(tasks.items()) if keys is None else [(k, tasks[k]) for k in keys if k in tasks]
    for key, ts in found:
        on = getattr(ts, "processing_on", None)
        yield TaskView(
            key,
            str(getattr(ts, "state", "")),
            dict(getattr(ts, "annotations", None) or {}),
            getattr(on, "address", None) if on is not None else None,
            [getattr(c, "client_key", "") for c in (getattr(ts, "who_wants", None) or ())],
        )


def cancel_for(dask_scheduler: Any, key: Any, client_id: str, reason: str) -> bool:
    """Cancel one task on the scheduler on behalf of the client that wants it.

    Internal: ``Scheduler.stimulus_cancel(keys, client, force, reason, msg)`` (distributed
    2024.x-2026.8.0). Feature test: the method exists. Fallback: nothing is cancelled (the
    owner's own Cancel still works).
    """
    cancel = getattr(dask_scheduler, "stimulus_cancel", None)
    if cancel is None:
        return False
    cancel([key], client_id, force=True, reason=reason, msg=None)
    return True


def never_steal(prefix: str) -> bool:
    """Keep Dask's work stealing off tasks of ``prefix`` (runs on the scheduler).

    Internal: ``distributed.stealing.fast_tasks``, the set of task prefixes the scheduler
    never steals (distributed 2021.x-2026.8.0; filled from
    ``distributed.scheduler.default-task-durations`` at import). Feature test: the set
    exists. Fallback: such tasks may be stolen (a take then fetches its value through the
    scheduler, which a value that cannot be pickled does not survive).
    """
    try:
        from distributed import stealing
    except ImportError:
        return False
    fast = getattr(stealing, "fast_tasks", None)
    if not isinstance(fast, set):
        return False
    fast.add(prefix)
    return True


# -- distributed: deployments --------------------------------------------------------------
def stop_adaptive(cluster: Any) -> None:
    """Stop a deployment's adaptive scaling (a fixed size replaces it).

    Private: ``Cluster._adaptive`` (distributed 2021.x-2026.8.0), the ``Adaptive`` that
    ``adapt()`` starts. Feature test: the attribute exists and is set. Fallback: nothing to
    stop.
    """
    adaptive = getattr(cluster, "_adaptive", None)
    if adaptive is not None:
        adaptive.stop()
        cluster._adaptive = None


# -- CPython: interrupting a thread --------------------------------------------------------
def async_raise(thread_id: int, exc_type: type[BaseException]) -> bool:
    """Raise ``exc_type`` in the thread ``thread_id`` at its next bytecode.

    C API: ``PyThreadState_SetAsyncExc`` (CPython 3.7-3.13). Feature test: ``ctypes.pythonapi``
    has it (not on PyPy). Fallback: nothing is raised (the call runs to its end). Returns
    whether exactly one thread was hit.
    """
    set_async_exc = getattr(getattr(ctypes, "pythonapi", None), "PyThreadState_SetAsyncExc", None)
    if set_async_exc is None:
        return False
    hit = set_async_exc(ctypes.c_ulong(thread_id), ctypes.py_object(exc_type))
    return bool(hit == 1)


# -- CPython: ast.parse -------------------------------------------------------------------
def parse(source: str, filename: str = "<unknown>") -> Any:
    """``ast.parse(source, filename)``, past a CPython bug.

    CPython 3.11.0-3.11.7 and 3.12.0 (gh-106905, fixed in 3.11.8 and 3.12.1) can raise a
    spurious ``SystemError: AST constructor recursion depth mismatch`` in a process with
    other threads (a worker, a kernel, the test run here once in eight loaded runs). Feature
    test: none needed; the error names itself. Fallback: parse once more with the garbage
    collector paused (no finalizer runs in the middle); a second failure is raised.
    """
    import ast
    import gc

    try:
        return ast.parse(source, filename=filename)
    except SystemError as exc:
        if "recursion depth mismatch" not in str(exc):
            raise
    paused = gc.isenabled()
    gc.disable()
    try:
        return ast.parse(source, filename=filename)
    finally:
        if paused:
            gc.enable()


# -- ipykernel: subshells ------------------------------------------------------------------
def can_route_comm(comm: Any) -> bool:
    """Whether ``comm``'s messages can be routed to a subshell of its kernel.

    Private: ``BaseComm._reply_subshell_for`` (ipykernel 7.4). Feature test: the attribute.
    Fallback: the comm's messages are handled between cells, as every comm's.
    """
    return hasattr(comm, "_reply_subshell_for")


def route_comm(comm: Any, subshell: str) -> None:
    """Handle ``comm``'s messages on ``subshell`` (see :func:`can_route_comm`)."""

    def route(_data: Any, _default: Any) -> str:  # called on ipykernel's shell-channel thread
        return subshell

    comm._reply_subshell_for = route


def subshell_manager(kernel: Any, current_thread: Any) -> tuple[Any, Any] | None:
    """The shell-channel thread and its subshell manager, or None where they are missing.

    Private: ``ShellChannelThread._manager`` (set up on first use by the kernel's own thread)
    and ``.manager`` (ipykernel 7.3-7.4). Fallback: None (no subshell).
    """
    channel = getattr(kernel, "shell_channel_thread", None)
    if channel is None or not channel.is_alive():
        return None
    if current_thread is not getattr(channel, "parent_thread", None) and getattr(
        channel, "_manager", None
    ) is None:
        return None  # only the kernel's own thread may set up the subshell manager
    return channel, channel.manager


def hold_subshell_status(kernel: Any, subshell: str) -> bool:
    """Keep ``subshell``'s busy/idle status off iopub while the main shell runs a cell.

    ipykernel publishes a busy and an idle status for every message a subshell handles;
    JupyterLab 4.6 shows the last status of any shell message as the kernel's, so a widget
    message handled on the subshell during a cell turned the notebook Idle while the cell
    still ran. While the main shell is busy, the kernel's status is the main shell's: the
    subshell's statuses are left out then (a frontend loses nothing: no reply waits on the
    idle of a comm message), and published as usual between cells.

    Private: ``Kernel._publish_status`` and ``Kernel._main_asyncio_lock`` (held while the
    main shell handles a message), ipykernel 7.4; subshell threads are named
    ``subshell-<id>``. Fallback (either missing): False, statuses flow unchanged.
    """
    publish = getattr(kernel, "_publish_status", None)
    lock = getattr(kernel, "_main_asyncio_lock", None)
    thread = f"subshell-{subshell}"
    if publish is None or lock is None:
        return False
    if getattr(publish, "_jr_held", None) == thread:
        return True  # already held

    def held(status: str, channel: str, parent: Any = None) -> Any:
        if (channel == "shell" and status in ("busy", "idle") and lock.locked()
                and threading.current_thread().name == thread):
            return None
        return publish(status, channel, parent)

    held._jr_held = thread  # type: ignore[attr-defined]
    kernel._publish_status = held
    return True


def create_subshell(manager: Any) -> str:
    """Create a subshell (on the shell-channel thread); its id.

    Private: ``SubshellManager._create_subshell`` (ipykernel 7.3-7.4). No fallback: the
    caller catches the error and routes nothing.
    """
    return str(manager._create_subshell())
