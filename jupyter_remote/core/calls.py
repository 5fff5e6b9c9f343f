"""Submitting a payload to the runner, and waiting for it while its log streams.

A :class:`Call` is one submission: its id (which tags its log lines on the worker), the
futures behind it and its :class:`~jupyter_remote.core.logs.CallLog`. Every task it submits
calls a stable function of :mod:`jupyter_remote.worker.runner` with an opaque payload
(:mod:`jupyter_remote.wire.payload`). ``wait`` blocks the
calling thread until the call ends, handing log lines to a callback *in that thread* (so a
waiting notebook cell prints them into itself), and turns a timeout or a
``KeyboardInterrupt`` into a cancelled call.

Waits are held: a call keeps the router it was opened with, so ending a call on a lost
cluster never starts a second connect; ``cancel`` is best effort within
``jupyter-remote.cancel-timeout`` (a worker cut off by the network cannot answer, and a
timed-out cell must not wait for it). A call that fails before it is sent (its inputs do
not pickle, no worker has its resources) ends ``failed`` with its error in its log, so it
never stays "queued" in ``%remote logs``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import cloudpickle
import dask

from jupyter_remote import config, on_scheduler
from jupyter_remote._compat import when_done
from jupyter_remote.core import logs, modules, registry
from jupyter_remote.core.refs import translate
from jupyter_remote.exceptions import RemoteTimeoutError, ResourceError
from jupyter_remote.wire import payload
from jupyter_remote.worker import runner

logger = logging.getLogger(__name__)
DONE = object()


class Call:
    """One remote call: its futures, its log, and how to stop it."""

    def __init__(self, cluster: Any, label: str, kind: str):
        self.id = uuid.uuid4().hex[:12]
        self.cluster = cluster
        self.label = label
        self.kind = kind
        self.futures: list = []
        self.router = cluster.router  # kept: `cluster.router` may reconnect a lost cluster
        self.log: logs.CallLog = self.router.open(self.id, label)
        self.log.one_task = kind != "map"  # its log marks a rerun after a lost worker
        self.log.cancel = self.cancel
        self._finished = False
        self._cancelled = False
        # workers running its batches sent past the scheduler (core/lane.py rebinds it)
        self.direct: frozenset[str] = frozenset()

    @property
    def key_prefix(self) -> str:
        return f"remote-{self.kind}"

    def submit(
        self,
        spec: dict,
        *,
        names: dict | None = None,
        resources: dict | None = None,
        extra: Sequence = (),
        fn: Callable = runner.run,
        key: str | None = None,
        env: dict | None = None,
        packed: tuple[Any, list[Any]] | None = None,
    ):
        """Pickle ``spec`` and submit ``fn(payload, *extra, *dependencies)``; return the future.

        ``env`` (from :func:`jupyter_remote.core.environments.resolve`) runs the payload in
        a process of that requirements environment on the worker. ``packed`` is what
        :meth:`pack` already made of ``spec`` (without ``env``).
        A failure here ends the call ``failed``, with the error in its log.
        """
        try:
            future = self._submit(spec, names, resources, extra, fn, key, env, packed)
        except BaseException as exc:
            self.log.feed({"call": self.id, "lines": [
                {"stream": "stderr", "text": f"not sent: {type(exc).__name__}: {exc}\n"}]})
            self.finish("failed")
            raise
        self.futures.append(future)
        return future

    def pack(self, spec: dict, names: dict | None = None,
             frames: bool = True) -> tuple[Any, list[Any]]:
        """The payload of ``spec`` for this call and the futures it depends on; with
        ``frames``, big arrays travel as frames of their own, never copied into the bytes."""
        spec = {**spec, "call": self.id, "topic": self.router.topic}
        buffers: list[Any] | None = [] if frames else None
        data: Any
        data, deps = dumps(spec, names, buffers)
        if buffers:
            data = payload.Frames(data, buffers)
        return data, deps

    def _submit(self, spec: dict, names: dict | None, resources: dict | None,
                extra: Sequence, fn: Callable, key: str | None, env: dict | None,
                packed: tuple[Any, list[Any]] | None) -> Any:
        if resources:
            check_resources(self.cluster, resources, self.label)
        # (env payloads: in-band)
        data, deps = packed if packed is not None else self.pack(spec, names, env is None)
        if env is not None:
            from jupyter_remote.core import environments

            env, blobs = environments.detach(env, self.cluster.client)  # big files: by reference
            deps = [*deps, *blobs]
            data = payload.with_env(data, {"env": env, "call": self.id, "kind": spec["kind"],
                                           "topic": self.router.topic, "blobs": len(blobs)})
        with dask.annotate(jupyter_remote=registry.call_annotation(self)):  # for the sidebar
            return self.cluster.client.submit(
                fn,
                data,
                *extra,
                *deps,
                key=key or f"{self.key_prefix}-{self.id}-{len(self.futures)}",
                resources=resources or None,
                pure=False,
            )

    def finish_when_done(self) -> None:
        """Close the call's log once all its futures are done (for calls nobody waits on)."""
        remaining = [len(self.futures)]

        def one_done(future) -> None:
            remaining[0] -= 1
            if remaining[0] == 0:
                self.finish(_state_of(self.futures))

        for future in self.futures:
            when_done(future, one_done)

    def finish(self, state: str) -> None:
        if self._cancelled:  # whoever waited saw the cancellation as a failure first
            state = "cancelled"
        if not self._finished:
            self._finished = True
            # The router keeps finished logs for `%remote logs`: they must not keep the
            # call's futures (and so its data on the cluster) alive, nor may a ref keep
            # its sibling refs' data alive through the call.
            self.futures = []
            self.log.cancel = None
            self.router.finish(self.log, state)

    def cancel(self) -> str:
        """Cancel the call: queued work never starts, running work is interrupted.

        Returns what happened, for the user. Best effort, and bounded by
        ``jupyter-remote.cancel-timeout``: a scheduler or worker that does not answer in time
        is named in the answer, never waited for.
        """
        self._cancelled = True
        limit = dask.utils.parse_timedelta(config.get("cancel-timeout", "0.8s"))
        steps: dict[str, Any] = {}
        try:
            self.router.client.sync(_stop, self.router.client, list(self.futures), self.id,
                                    steps, sorted(self.direct), callback_timeout=limit)
        except Exception:  # timed out, or the client is closed: say how far it got
            logger.debug("cancelling %s stopped early", self.label, exc_info=True)
        self.finish("cancelled")
        return _cancel_outcome(steps, limit)


async def _stop(client: Any, futures: list[Any], call_id: str, steps: dict[str, Any],
                direct: list[str]) -> None:
    """Cancel ``futures`` and interrupt the code running them (and on ``direct``, the
    workers running batches sent past the scheduler); ``steps`` records what was done (read
    even when the caller's time limit cut this short)."""
    keys = [f.key for f in futures]
    running_on = await client.run_on_scheduler(on_scheduler.where_running, keys,
                                               asynchronous=True)
    steps["running_on"] = sorted({*running_on, *direct})
    await client.cancel(futures, asynchronous=True)
    steps["cancelled"] = True
    if steps["running_on"]:
        steps["outcomes"] = await client.run(runner.interrupt, call_id,
                                             workers=steps["running_on"], on_error="return",
                                             asynchronous=True)


def _cancel_outcome(steps: dict[str, Any], limit: float) -> str:
    """What a cancel did, in words."""
    if "running_on" not in steps:
        return (f"cancelled here; the scheduler did not answer within {limit:g} s, so the "
                "remote work may still run (`%remote clusters` shows whether it is reachable)")
    running_on = steps["running_on"] or []
    outcomes: dict[str, str] = steps.get("outcomes") or {}
    if running_on and "outcomes" not in steps:
        return (f"cancelled; {', '.join(running_on)} did not answer within {limit:g} s (cut "
                "off or busy): its running code stops when it answers or is dropped")
    interrupted = [w for w, what in outcomes.items() if what == "interrupted"]
    if interrupted:
        return (
            f"cancelled; the running code on {', '.join(interrupted)} was interrupted (code "
            "inside one long call into C, such as time.sleep, stops when that call returns)"
        )
    if "finished" in outcomes.values():
        return "cancelled; it had just finished"
    return "cancelled before it started"  # queued on the scheduler, or in a worker's queue


def dumps(spec: Any, names: dict[str, Any] | None = None,
          buffers: list[Any] | None = None) -> tuple[bytes, list[Any]]:
    """The payload of ``spec`` and the futures it depends on; modules imported from files
    next to the notebook travel by value (``buffers``: see :func:`payload.dumps`)."""
    modules.register_local_modules()
    return payload.dumps(spec, names, buffers)


def check_resources(cluster: Any, resources: dict[str, float], label: str) -> None:
    """Fail now, rather than wait forever, when no worker offers ``resources``."""
    workers = cluster.client.scheduler_info(n_workers=-1).get("workers", {}).values()
    offered = [w.get("resources") or {} for w in workers]
    if not offered:  # no workers yet (an adaptive cluster scaling up): let Dask wait
        return
    if any(all(have.get(k, 0) >= n for k, n in resources.items()) for have in offered):
        return
    asked = ", ".join(f"{k}={n:g}" for k, n in resources.items())
    kinds = sorted({k for have in offered for k in have})
    raise ResourceError(
        f"{label} asks for resources {asked}, but no worker of cluster {cluster.name!r} offers "
        f"them (workers offer: {', '.join(kinds) or 'no resources'}). Start workers with "
        "--resources (e.g. `dask worker --resources GPU=1`), or drop --resources."
    )


def _state_of(futures) -> str:
    statuses = {f.status for f in futures}
    if "error" in statuses:
        return "failed"
    if "cancelled" in statuses:
        return "cancelled"
    return "done"


def wait(
    call: Call,
    futures: Sequence[Any] | None = None,
    *,
    fetch: Sequence[Any] = (),
    result_event: bool = False,
    decode: Callable[[Any], Any] | None = None,
    timeout: float | None = None,
    on_lines: Callable[[list[logs.LogLine]], None] | None = None,
) -> list[Any]:
    """Block until ``futures`` and ``fetch`` are done; return the values of ``fetch``.

    The values are fetched on the client's event loop as each one finishes (one hop less
    than ``future.result()`` from this thread). With ``result_event``, the first value may
    instead arrive as a ``result`` event on the call's stream (sent after its last line),
    opened by ``decode`` if given (should that fail, the value is fetched instead).
    Log lines reach ``on_lines`` in the calling thread as they arrive. A failure raises the
    user-facing exception; a timeout or an interrupt cancels the call and raises.
    """
    fetch = list(fetch)
    others = [f for f in (call.futures if futures is None else futures) if f not in fetch]
    inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
    _listen(call, fetch, inbox, result_event, on_lines, decode)
    for future in others:
        when_done(future, lambda f: inbox.put((DONE, None, True, None)))
    client = call.cluster.client
    for index, future in enumerate(fetch):
        if not (result_event and index == 0):
            client.loop.add_callback(fetch_value, future, index, inbox)
    try:
        return _collect(call, inbox, len(fetch), len(others), timeout, on_lines)
    except _Timeout:
        call.cancel()
        drain(inbox, on_lines)
        raise RemoteTimeoutError(
            f"{call.label} did not finish within {timeout:g} s; the remote work was cancelled. "
            "Raise --timeout (or timeout=) if it needs longer."
        ) from None
    except KeyboardInterrupt:
        call.cancel()
        raise


def _listen(call: Call, fetch: list[Any], inbox: queue.SimpleQueue[Any], result_event: bool,
            on_lines: Callable[[list[logs.LogLine]], None] | None,
            decode: Callable[[Any], Any] | None = None) -> None:
    """Lines (and, with ``result_event``, the first value) of ``call`` into ``inbox``."""
    if not result_event:
        if on_lines is not None:
            call.log.listen(lambda _log, lines: inbox.put(lines) if lines else None, replay=True)
        return
    # The first fetched value may come on the call's stream: then no fetch is needed.
    sent = threading.Event()
    client = call.cluster.client

    def on_event(log: logs.CallLog, lines: list[logs.LogLine]) -> None:
        if lines and on_lines is not None:
            inbox.put(lines)
        if log.result is not None and not sent.is_set():
            try:
                value = log.result if decode is None else decode(log.result)
            except Exception:  # fetched from the worker instead, once the task is done
                return
            sent.set()
            inbox.put((DONE, 0, True, value))

    call.log.listen(on_event, replay=True)

    def first_done(future: Any) -> None:  # failed, cancelled, or a result too big to stream
        if not sent.is_set():
            client.loop.add_callback(fetch_value, future, 0, inbox, sent)

    when_done(fetch[0], first_done)


def _collect(call: Call, inbox: queue.SimpleQueue[Any], n_fetch: int, n_others: int,
             timeout: float | None,
             on_lines: Callable[[list[logs.LogLine]], None] | None) -> list[Any]:
    """Take completions and lines from ``inbox`` until every future is done."""
    values: list[Any] = [None] * n_fetch
    pending = n_fetch + n_others
    deadline = None if timeout is None else time.monotonic() + timeout
    while pending:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise _Timeout
        try:
            item = inbox.get(timeout=left if left is not None else 3600)
        except queue.Empty:
            continue
        if isinstance(item, tuple) and item and item[0] is DONE:
            _, index, ok, value = item
            pending -= 1
            if not ok:
                drain(inbox, on_lines)
                raise translate(value, call.label, call.cluster)
            if index is not None:
                values[index] = value
        elif on_lines is not None:
            on_lines(item)
    drain(inbox, on_lines)
    return values


def streamed_value(result: Any) -> Any:
    """A call's value sent on its stream (``{"value": pickled}``, see the worker's
    ``runner.execute``)."""
    return cloudpickle.loads(result["value"])


async def fetch_value(future: Any, index: Any, inbox: queue.SimpleQueue[Any],
                sent: threading.Event | None = None) -> None:
    """On the client's loop: await ``future`` and put ``(DONE, index, ok, value)`` in
    ``inbox`` (once, with ``sent``: the first of two racing sources wins)."""
    try:
        value = payload.unwrap(await future)  # a value made in a requirements environment
    except BaseException as exc:  # the remote failure, or a cancellation
        outcome = (DONE, index, False, exc)
    else:
        outcome = (DONE, index, True, value)
    if sent is None:
        inbox.put(outcome)
    elif not sent.is_set():  # the result event may have won the race meanwhile
        sent.set()
        inbox.put(outcome)


class _Timeout(Exception):
    pass


def drain(inbox: queue.SimpleQueue[Any],
          on_lines: Callable[[list[logs.LogLine]], None] | None) -> None:
    """Hand over lines that arrived with the last completion."""
    while True:
        try:
            item = inbox.get_nowait()
        except queue.Empty:
            return
        if on_lines is not None and not (isinstance(item, tuple) and item and item[0] is DONE):
            on_lines(item)
