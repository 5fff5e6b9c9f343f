"""The one stable function every task calls on the worker.

Tasks are ``run(payload, *dependencies)``: ``payload`` is opaque bytes that only the worker
opens, so the scheduler never needs user code. The payload says what to do:

- ``cell``: execute a cell's source as module-level code in a fresh namespace; keep the
  names it binds on this worker (``take`` hands each one to its own task) and return a
  small, plain description of them;
- ``call``: call a function and return its value;
- ``batch``: call a function on many items, returning per-item values or errors.

Whatever user code raises leaves as :class:`RemoteTaskError` holding plain bytes.
"""

from __future__ import annotations

import ast
import builtins
import collections
import ctypes
import linecache
import re
import sys
import threading
import time
import types
from typing import Any

from jupyter_remote.core import logs, payload
from jupyter_remote.exceptions import RemoteCancelledError, RemoteTaskError, WorkerLostError

# Values bound by cells, kept until their ``take`` task collects them: {call: {name: value}}
_kept: dict[str, dict[str, Any]] = {}
_kept_lock = threading.Lock()
# Threads running calls, so ``interrupt`` can stop one: {call: thread ident}
_running: dict[str, int] = {}
_running_lock = threading.Lock()
# Calls that ended here lately, so a cancel can tell "had finished" from "never started"
_ended: collections.deque[str] = collections.deque(maxlen=1000)
# Cells dropped lately: one still running when dropped keeps nothing when it ends
_dropped: collections.deque[str] = collections.deque(maxlen=1000)


def run(data: bytes, *dependencies: Any) -> Any:
    """Run one payload. This is the only function the scheduler ever sees in our tasks."""
    _watch_kept()
    if data[: len(payload.ENV_HEADER)] == payload.ENV_HEADER:  # requirements or files
        from jupyter_remote.core import envprocess

        return envprocess.run_in_env(data, dependencies)
    error: RemoteTaskError | None
    try:
        if any(type(d) is payload.Opaque for d in dependencies):
            dependencies = tuple(payload.unwrap(d) for d in dependencies)
        spec = payload.loads(data, dependencies)
    except Exception as exc:
        error = payload.pack_exception(exc)
    else:
        error = None
    if error is not None:
        raise error  # raised outside `except`: no chained user exception to pickle
    return execute(spec, logs.worker_sink(spec["call"], spec["topic"]), _worker_address())


def execute(spec: dict, sink: logs.Sink, worker: str) -> Any:
    """Run an opened payload with its output captured into ``sink`` (here, or in the
    process of a requirements environment)."""
    call = spec["call"]
    # Announced only if the call lasts: a quick call should not pay for an extra message.
    sink.state_soon("running", worker=worker)
    with _running_lock:
        _running[call] = threading.get_ident()
    try:
        with logs.capture(sink):
            result = _dispatch(spec, sink, worker)
        _stop_interrupts(call)
        if spec["kind"] == "cell" and not spec.get("get"):
            # After the last line: the client can finish the cell on this event alone,
            # without fetching the task's result (one round trip less).
            sink.result(result)
        return result
    except RemoteTaskError as exc:
        _stop_interrupts(call)
        error = exc
    except BaseException as exc:  # async stops (interrupt) included
        _stop_interrupts(call)
        error = payload.pack_exception(exc)
    error.__context__ = None
    raise error


def _stop_interrupts(call: str) -> None:
    """After this, ``interrupt`` can no longer target this thread for ``call``.

    Taken under the lock ``interrupt`` holds, so an interrupt is either raised inside the
    call (and reported as a cancellation) or not at all: never in later work of the thread.
    """
    with _running_lock:
        _running.pop(call, None)
        _ended.append(call)


def _dispatch(spec: dict, sink: logs.Sink, worker: str) -> Any:
    kind = spec["kind"]
    if kind == "cell":
        return _run_cell(spec, worker)
    if kind == "call":
        return _run_call(spec, sink)
    if kind == "batch":
        return _run_batch(spec, sink)
    raise ValueError(f"unknown payload kind {kind!r}")


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except ValueError:
        return ""


# -- cells ---------------------------------------------------------------------------------
def _run_cell(spec: dict, worker: str) -> dict:
    source, filename = spec["source"], spec["filename"]
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    ns: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    ns.update(spec["inputs"])

    tree = ast.parse(source, filename=filename)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    exec(compile(tree, filename, "exec"), ns)
    display = None
    if last is not None:
        value = eval(compile(last, filename, "eval"), ns)
        if value is not None:
            display = mimebundle(value)

    wanted = spec["outputs"]
    values = {
        name: ns[name]
        for name in wanted
        if name in ns and not isinstance(ns[name], types.ModuleType)
    }
    missing = [n for n in spec.get("required", ()) if n not in values]
    if missing:
        raise NameError(
            f"--out names {', '.join(map(repr, missing))} that the cell never bound "
            "(modules cannot be outputs)"
        )
    result = {
        "outputs": {name: describe(value) for name, value in values.items()},
        "display": display,
        "worker": worker,
    }
    if spec.get("get"):
        result["values"] = values
    else:
        with _kept_lock:
            if spec["call"] not in _dropped:  # (an env process can hear of it first)
                _kept[spec["call"]] = {name: values.get(name, _UNBOUND) for name in wanted}
    return result


# -- values nobody will take ---------------------------------------------------------------
_REAPER = "jupyter-remote-kept"
_CELL_KEY = re.compile(r"^remote-cell-([0-9a-f]+)-\d+$")


def drop(call: str) -> None:
    """Forget the values a cell bound here that no ``take`` will collect (and, should the
    cell still be running, the ones it will bind)."""
    with _kept_lock:
        _kept.pop(call, None)
        _dropped.append(call)
    envprocess = sys.modules.get("jupyter_remote.core.envprocess")
    if envprocess is not None:
        envprocess.drop(call)


def _watch_kept() -> None:
    """Once per worker: drop a cell's kept values when the cell's task leaves its memory.

    The worker keeps the cell's task while any ``take`` of it may still run (they depend
    on it); when it is released, takes that never ran (cancelled, or their refs dropped
    before they ran) never will, and their values would otherwise stay until the worker
    restarts.
    """
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):  # not on a Dask worker (an environment's process)
        return
    if _REAPER in worker.plugins:
        return
    from distributed.diagnostics.plugin import WorkerPlugin

    class KeptReaper(WorkerPlugin):
        def transition(self, key, start, finish, **kwargs) -> None:
            # The worker forgets a task only once it no longer runs (a cancelled one
            # first ends, perhaps binding names anyway) and none of its takes can run.
            done_with = finish == "forgotten" or (start, finish) == ("memory", "released")
            if done_with and isinstance(key, str):
                match = _CELL_KEY.match(key)
                if match:
                    drop(match.group(1))

    async def install() -> None:  # on the worker's loop, which reads worker.plugins
        if _REAPER not in worker.plugins:
            await worker.plugin_add(KeptReaper(), name=_REAPER)

    worker.loop.add_callback(install)


class Unbound:
    """Stands for a name the cell did not bind on this run (or bound to a module).

    ``take`` returns it rather than failing, so Dask logs no error for what is not one;
    the client drops such refs, and ``RemoteRef.get`` explains if one is ever read.
    """

    def __init__(self, label: str):
        self.label = label

    def __repr__(self) -> str:
        return f"<{self.label} was not bound>"


_UNBOUND = object()


def take(call: str, name: str, label: str, *after: Any) -> Any:
    """Hand one value a cell bound on this worker to its own task (its ``RemoteRef``).

    Runs after the cell's task (``after`` holds its description), normally on the worker
    holding the value. Dask may still move it elsewhere (work stealing, when that worker is
    busy): then it fetches the value from the worker the description names.
    """
    meta = after[0] if after and isinstance(after[0], dict) else {}
    where = meta.get("worker")
    if where and where != _worker_address():
        from distributed import get_client

        return get_client().run(take, call, name, label, workers=[where])[where]
    with _kept_lock:
        kept = _kept.get(call)
        here = kept is not None and name in kept
        if kept is not None and here:
            value = kept.pop(name)
            if not kept:
                del _kept[call]
    if not here:
        envprocess = sys.modules.get("jupyter_remote.core.envprocess")  # loaded by env calls
        elsewhere = envprocess and envprocess.take(call, name, label)
        if elsewhere:  # kept in the process of a requirements environment
            return elsewhere[0]
        raise WorkerLostError(
            f"{label} was lost: the worker that computed it is gone. "
            "Run the cell again to recompute it."
        )
    if value is _UNBOUND:
        return Unbound(label)
    return value


def mimebundle(value: Any) -> dict[str, str]:
    """The rich representation of ``value``, computed here where the value lives."""
    bundle: dict[str, str] = {}
    method = getattr(value, "_repr_mimebundle_", None)
    if callable(method):
        try:
            got = method()
            data = got[0] if isinstance(got, tuple) else got
            bundle.update({k: v for k, v in (data or {}).items() if isinstance(v, str)})
        except Exception:
            pass
    for mime, attr in (("text/html", "_repr_html_"), ("text/markdown", "_repr_markdown_")):
        if mime not in bundle and callable(getattr(value, attr, None)):
            try:
                got = getattr(value, attr)()
                if isinstance(got, str):
                    bundle[mime] = got
            except Exception:
                pass
    bundle.setdefault("text/plain", repr(value))
    return bundle


def describe(value: Any) -> dict[str, Any]:
    """Type, shape, dtype and size of a value, for the ref's repr."""
    from dask.sizeof import sizeof

    info: dict[str, Any] = {"type": f"{type(value).__module__}.{type(value).__qualname__}"}
    if info["type"].startswith("builtins."):
        info["type"] = type(value).__qualname__
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and all(isinstance(s, int) for s in shape):
        info["shape"] = list(shape)
    dtype = getattr(value, "dtype", None)
    if dtype is not None and not callable(dtype):
        info["dtype"] = str(dtype)
    elif dtype is not None:
        info["dtype"] = getattr(dtype, "__name__", str(dtype))
    try:
        info["nbytes"] = int(sizeof(value))
    except Exception:
        pass
    info["callable"] = callable(value) and not isinstance(value, type)
    return info


# -- functions -----------------------------------------------------------------------------
def _run_call(spec: dict, sink: logs.Sink) -> Any:
    return spec["fn"](*spec["args"], **spec["kwargs"])


def _run_batch(spec: dict, sink: logs.Sink) -> list:
    fn = spec["fn"]
    results: list = []
    done = failed = 0
    last = time.monotonic()
    for index, args, kwargs in spec["items"]:
        sink.index = index
        try:
            results.append((True, fn(*args, **kwargs)))
        except RemoteCancelledError:
            raise
        except Exception as exc:
            failed += 1
            results.append((False, payload.pack_exception(exc).args[0]))
        done += 1
        now = time.monotonic()
        if now - last > 0.2:
            last = now
            sink.state("running", batch=spec["batch"], done=done, failed=failed)
    sink.index = None
    sink.state("running", batch=spec["batch"], done=done, failed=failed)
    return results


# -- queues --------------------------------------------------------------------------------
def run_queued(data: bytes, previous: Any, *dependencies: Any) -> tuple[bool, Any]:
    """A call of ``RemoteFunction.enqueue``: runs after ``previous`` and never fails as a
    task, so one failed call does not break the queue behind it (``unwrap`` re-raises)."""
    try:
        return True, run(data, *dependencies)
    except RemoteTaskError as exc:
        return False, exc.args


def unwrap(outcome: tuple[bool, Any]) -> Any:
    ok, value = outcome
    if not ok:
        raise RemoteTaskError(*value)
    return value


# -- stopping ------------------------------------------------------------------------------
def where_running(keys: list[str], dask_scheduler=None) -> list[str]:
    """On the scheduler: the workers currently running any of ``keys``."""
    out = set()
    for key in keys:
        ts = dask_scheduler.tasks.get(key)
        if ts is not None and ts.processing_on is not None:
            out.add(ts.processing_on.address)
    return sorted(out)


def interrupt(call: str) -> str:
    """Stop a running call by raising in its thread.

    Returns ``"interrupted"``, ``"finished"`` (it had ended here) or ``"not started"``.
    Python checks for the exception between bytecodes: pure-Python work stops at once,
    a long call into C (``time.sleep``, a big numpy operation) stops when it returns.
    """
    with _running_lock:
        ident = _running.get(call)
        if ident is None:
            return "finished" if call in _ended else "not started"
        n = ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(ident), ctypes.py_object(RemoteCancelledError)
        )
    return "interrupted" if n == 1 else "finished"
