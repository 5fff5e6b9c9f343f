"""The stable functions every task calls on the worker.

Tasks are ``run(payload, *dependencies)``: ``payload`` is opaque bytes that only the worker
opens (:mod:`jupyter_remote.wire.payload`), so the scheduler never needs user code. A payload
with requirements or files runs in a process of its environment
(:mod:`jupyter_remote.worker.envexec`); any other runs here, its output captured
(:mod:`jupyter_remote.worker.capture`), by kind (:mod:`jupyter_remote.worker.kinds`).
``take`` hands one value a cell bound to its own task; ``run_queued``/``unwrap`` make the
queue of ``RemoteFunction.enqueue``; ``describe`` reports on a value where it lives.

Whatever user code raises leaves as :class:`RemoteTaskError` holding plain bytes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from jupyter_remote.exceptions import RemoteCancelledError, RemoteTaskError, WorkerLostError
from jupyter_remote.wire import payload
from jupyter_remote.wire.failures import pack_exception
from jupyter_remote.worker import capture, context, kinds, state

STREAM_LIMIT = 256 * 1024  # a map batch's results up to this size also ride its event stream
VALUE_LIMIT = 64 * 1024  # ... and a waited-for call's value up to this size


def run(data: bytes | payload.Frames, *dependencies: Any) -> Any:
    """Run one payload. This is the only function the scheduler ever sees in our tasks."""
    if payload.has_env(data):  # requirements or files
        from jupyter_remote.worker import envexec  # loaded by the first such call only

        return envexec.run_in_env(data, dependencies)  # type: ignore[arg-type]
    spec = opened(data, dependencies)
    worker = context.current_worker()
    sink = capture.worker_sink(spec["call"], spec["topic"], worker)
    return execute(spec, sink, worker.address)


def opened(data: bytes | payload.Frames, dependencies: tuple[Any, ...] = ()) -> dict[str, Any]:
    """The spec inside a payload (its refs replaced by their values); what fails to open
    raises as a :class:`RemoteTaskError`."""
    error: RemoteTaskError | None
    try:
        if any(type(d) is payload.Opaque for d in dependencies):
            dependencies = tuple(payload.unwrap(d) for d in dependencies)
        spec = payload.loads(data, dependencies)
    except Exception as exc:
        error = pack_exception(exc)
    else:
        error = None
    if error is not None:
        raise error  # raised outside `except`: no chained user exception to pickle
    return spec  # type: ignore[no-any-return]


def execute(spec: dict[str, Any], sink: capture.Sink, worker: str) -> Any:
    """Run an opened payload with its output captured into ``sink`` (here, or in the
    process of a requirements environment)."""
    call = spec["call"]
    # Announced only if the call lasts: a quick call should not pay for an extra message.
    sink.state_soon("running", worker=worker)
    state.started(call)
    error: RemoteTaskError
    try:
        if state.interrupted(call):  # a map's batch queued here after its map was cancelled
            raise RemoteCancelledError(f"call {call} was cancelled before this part started")
        with capture.capture(sink):
            result = kinds.dispatch(spec, sink, worker)
        state.stopped(call)
        if spec["kind"] == "cell" and not spec.get("get"):
            # After the last line: the client can finish the cell on this event alone,
            # without fetching the task's result (one round trip less).
            sink.result(result)
            # What Dask sees of this result is its size: the values kept here for the
            # cell's takes. Otherwise a take (whose only input is this small description)
            # may be placed on another worker, which then has to copy the value over.
            held = sum(int(o.get("nbytes", 0)) for o in result.get("outputs", {}).values())
            result = {**result, "held": payload.Held(held)}
        elif spec["kind"] == "batch" and spec.get("direct"):
            # Its results go back as the answer, past the scheduler; lines it printed take
            # the stream, so the notebook waits for this mark after the last of them.
            if sink.wrote:
                sink.batch_end(spec["batch"], len(result.values), len(result.errors))
        elif spec["kind"] == "batch" and spec.get("stream"):
            # Small results ride the call's stream too; the task keeps them until the
            # notebook releases it (or fetches them, should this event not arrive first).
            # The batch's final count goes with them: one message less per batch.
            data = result.small(STREAM_LIMIT)
            progress = {"batch": spec["batch"], "done": len(result.values),
                        "failed": len(result.errors)}
            if data is not None:
                sink.batch_result(data, **progress)
            else:
                sink.state("running", **progress)
        elif ((spec["kind"] == "call" and spec.get("stream"))
              or (spec["kind"] == "cell" and spec.get("get"))):
            # A small value the notebook waits for rides the stream as well (one round trip
            # less than fetching it): a call's, a `--get` cell's values. The task keeps it
            # until the notebook releases it.
            data = _small_value(result)
            if data is not None:
                sink.value(data)
        return result
    except RemoteTaskError as exc:
        state.stopped(call)
        error = exc
    except BaseException as exc:  # async stops (interrupt) included
        state.stopped(call)
        error = pack_exception(exc)
    error.__context__ = None
    raise error


def _small_value(value: Any) -> bytes | None:
    """``value`` pickled if it is small (see :data:`VALUE_LIMIT`); else None."""
    size: Callable[[Any], Any]
    try:
        from dask.sizeof import sizeof as size  # (a requirements environment may lack dask)
    except ImportError:
        size = sys.getsizeof
    try:
        # clearly big: not worth pickling here (sizeof counts a list of 10,000 small ints
        # as 360 KB, which pickle writes in 30)
        if int(size(value)) > 16 * VALUE_LIMIT:
            return None
    except Exception:
        return None
    return payload.small_pickle(value, VALUE_LIMIT)


def take(call: str, name: str, label: str, *after: Any) -> Any:
    """Hand one value a cell bound on this worker to its own task (its ``RemoteRef``).

    Runs after the cell's task (``after`` holds its description), normally on the worker
    holding the value. Dask may still move it elsewhere (work stealing, when that worker is
    busy): then it fetches the value from the worker the description names.
    """
    meta = after[0] if after and isinstance(after[0], dict) else {}
    where = meta.get("worker")
    if where and where != context.worker_address():
        from distributed import get_client

        return get_client().run(take, call, name, label, workers=[where])[where]
    found, value = state.take_kept(call, name)
    if not found:
        holder = state.holder_of(call)  # kept in the process of a requirements environment
        if holder is not None:
            return holder.take(call, name, label)
        raise WorkerLostError(
            f"{label} was lost: the worker that computed it is gone. "
            "Run the cell again to recompute it."
        )
    if value is state.UNBOUND:
        return payload.Unbound(label)
    return value


def describe(value: Any) -> dict[str, Any]:
    """Type, shape, dtype and size of a value (a task pinned next to the data)."""
    return kinds.describe(value)


# -- queues --------------------------------------------------------------------------------
def run_queued(data: bytes | payload.Frames, previous: Any,
               *dependencies: Any) -> tuple[bool, Any]:
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


def interrupt(call: str) -> str:
    """Stop ``call`` if it runs in this process (sent with ``Client.run``); see
    :func:`jupyter_remote.worker.state.interrupt`."""
    return state.interrupt(call)
