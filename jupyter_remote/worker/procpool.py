"""``target="processes"``: the items of a map's batch run in a pool of this worker's python
processes (pure-Python work on a multi-threaded worker, where threads share one GIL).

Why not ``concurrent.futures.ProcessPoolExecutor``: a Nanny's worker (the default of
``LocalCluster`` and ``dask worker``, the embedded cluster included) is a daemonic process,
and ``multiprocessing`` refuses to start children there. The pool's processes are the
environment processes of :mod:`jupyter_remote.worker.envexec` (a ``subprocess`` running
:mod:`jupyter_remote.worker.envchild` with this process's python, speaking
:mod:`jupyter_remote.worker.pipe`): the same child that runs calls with requirements, so a
child's prints, log records, per-item errors, progress and interrupts take the path they
take for any call there. Forking is never used (forking a threaded worker is unsafe).

One pool per process, sized to the worker's threads, started lazily (a child per pool
thread) and kept across batches; the worker plugin's teardown closes it
(:func:`jupyter_remote.worker.state.at_close`). A batch is cut into a few chunks (up to four
per child, so uneven items balance); each chunk is one ``batch`` payload, function and items
cloudpickled, run by one child under a call id of its own (``CALL/N``), whose events this
module relays to the batch's sink: lines keep their ``[index]`` tags, progress is summed over
the chunks. Cancel and timeouts interrupt the chunks in their children; a child that does not
stop within :data:`GRACE` seconds (stuck in C code) is killed, and the next chunk starts a
new one.
"""

from __future__ import annotations

import itertools
import sys
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

from jupyter_remote.exceptions import RemoteTaskError, WorkerLostError
from jupyter_remote.wire import payload
from jupyter_remote.wire.events import unpack
from jupyter_remote.worker import capture, context, envexec, envstore, state

GRACE = 3.0  # seconds an interrupted child has to stop before it is killed
CHUNKS_PER_CHILD = 4


class _Relay:
    """One batch: its chunks' events go to its sink; its progress sums theirs."""

    def __init__(self, sink: capture.Sink, batch: Any, chunks: int):
        self.sink = sink
        self.batch = batch
        self.progress = [(0, 0)] * chunks
        self.running: dict[str, envexec.EnvExecutor] = {}  # chunk call id -> its child
        self.cancelled = False
        self.lock = threading.Lock()

    def event(self, index: int, event: dict[str, Any]) -> None:
        if "packed" in event:
            for line in unpack(event["packed"]):
                self.sink.add(line)
        elif "batch" in event:  # a chunk's progress; other states were announced here
            with self.lock:
                self.progress[index] = (int(event.get("done", 0)), int(event.get("failed", 0)))
                done = sum(d for d, _ in self.progress)
                failed = sum(f for _, f in self.progress)
            self.sink.state("running", batch=self.batch, done=done, failed=failed)


class ProcessPool:
    """This process's children for ``target="processes"``: one per pool thread."""

    def __init__(self, size: int):
        self.size = size
        self.threads = ThreadPoolExecutor(max_workers=size, thread_name_prefix="procpool")
        self._local = threading.local()  # each pool thread's own child
        self._children: list[envexec.EnvExecutor] = []
        self._routes: dict[str, tuple[_Relay, int]] = {}  # chunk call id -> (relay, chunk)
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._env = envstore.Env("base", None, sys.executable, {"requirements": []})

    def _child(self) -> envexec.EnvExecutor:
        child = getattr(self._local, "child", None)
        if child is None or not child.alive:
            child = envexec.EnvExecutor(self._env, None, self._forward)
            self._local.child = child
            with self._lock:
                self._children = [c for c in self._children if c.alive] + [child]
        return child

    def _forward(self, _topic: str, event: dict[str, Any]) -> None:
        """An event of a chunk (from a child's reader thread): to its batch's sink."""
        with self._lock:
            route = self._routes.get(str(event.get("call")))
        if route is not None:
            route[0].event(route[1], event)

    def run_batch(self, fn: Any, args: Any, star: bool, start: int, spec: dict[str, Any],
                  sink: capture.Sink) -> tuple[list[Any], dict[int, bytes]]:
        """The items of one batch, in this pool's children; values and packed errors by
        position in the batch, as a plain batch returns them."""
        n = len(args)
        count = max(1, min(n, CHUNKS_PER_CHILD * self.size))
        bounds = [(i * n // count, (i + 1) * n // count) for i in range(count)]
        relay = _Relay(sink, spec.get("batch"), count)
        info = {**context.get_env(), "worker": context.worker_address()}
        ids = [f"{spec['call']}/{next(self._ids)}" for _ in bounds]
        with self._lock:
            self._routes.update({cid: (relay, i) for i, cid in enumerate(ids)})
        try:
            jobs = [self.threads.submit(self._run_chunk, relay, cid, {
                "kind": "batch", "fn": fn, "args": args[lo:hi], "start": start + lo,
                "star": star, "batch": i, "seconds": None, "target": None, "call": cid,
                "topic": spec.get("topic", "")}, info) for i, (cid, (lo, hi)) in
                enumerate(zip(ids, bounds))]
            self._wait(jobs, relay, spec["call"])
        finally:
            with self._lock:
                for cid in ids:
                    self._routes.pop(cid, None)
        values: list[Any] = []
        errors: dict[int, bytes] = {}
        for (lo, _), job in zip(bounds, jobs):
            result = job.result()
            values.extend(result.values)
            errors.update({lo + pos: packed for pos, packed in result.errors.items()})
        return values, errors

    def _wait(self, jobs: list[Any], relay: _Relay, call: str) -> None:
        """Wait for the chunks; a cancel (raised in this thread) or a failed chunk stops
        the others."""
        try:
            pending = set(jobs)
            while pending:  # in short waits: an interrupt lands between them
                done, pending = wait(pending, timeout=0.05, return_when=FIRST_EXCEPTION)
                for job in done:
                    if job.exception() is not None:
                        raise job.exception()  # type: ignore[misc]
        except BaseException:
            self.interrupt(call)
            raise

    def _run_chunk(self, relay: _Relay, cid: str, spec: dict[str, Any],
                   info: dict[str, Any]) -> payload.BatchResult:
        import cloudpickle

        if relay.cancelled:
            raise RemoteTaskError(*_cancelled())
        body, _ = payload.dumps(spec)
        child = self._child()
        with relay.lock:
            relay.running[cid] = child
        try:
            reply = child.request({"op": "run", "meta": {"call": cid, "topic": spec["topic"]},
                                   "body": body, "deps": cloudpickle.dumps(()), "info": info})
        except WorkerLostError:
            end = spec["start"] + len(spec["args"]) - 1
            raise WorkerLostError(
                f"a process of the worker's target='processes' pool exited (code "
                f"{child.exit_code}) while running items {spec['start']}-{end} of this map; "
                "the next batch starts a new one"
            ) from None
        finally:
            with relay.lock:
                relay.running.pop(cid, None)
        if not reply["ok"]:
            raise RemoteTaskError(*reply["error"])
        return cloudpickle.loads(reply["value"])  # type: ignore[no-any-return]

    def interrupt(self, call: str) -> None:
        """Stop every chunk of ``call`` in this pool (its other batches here included: a
        cancel or timeout ends the whole call); kill a child that does not stop in time."""
        with self._lock:
            relays = {id(r): r for cid, (r, _) in self._routes.items()
                      if cid.rsplit("/", 1)[0] == call}
        for relay in relays.values():
            relay.cancelled = True
            with relay.lock:
                running = list(relay.running.items())
            for cid, child in running:
                child.tell("interrupt", cid)
                timer = threading.Timer(GRACE, _kill_if_busy, (relay, cid, child))
                timer.daemon = True
                timer.start()

    def close(self) -> None:
        with self._lock:
            children, self._children = self._children, []
        for child in children:
            child.close()
        self.threads.shutdown(wait=False, cancel_futures=True)


def _kill_if_busy(relay: _Relay, cid: str, child: envexec.EnvExecutor) -> None:
    with relay.lock:
        still = relay.running.get(cid) is child
    if still and child.alive:
        child.proc.kill()


def _cancelled() -> tuple[Any, ...]:
    from jupyter_remote.exceptions import RemoteCancelledError
    from jupyter_remote.wire.failures import pack_exception

    return pack_exception(RemoteCancelledError("the map was cancelled")).args


_pool: ProcessPool | None = None
_pool_lock = threading.Lock()


def pool() -> ProcessPool:
    """This process's pool (sized to the worker's threads, in an environment's process
    too), started on first use."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ProcessPool(context.worker_threads())
            state.at_close(close)
        return _pool


def close() -> None:
    """Close this process's pool (the worker closes); a later batch starts a new one."""
    global _pool
    with _pool_lock:
        found, _pool = _pool, None
    if found is not None:
        found.close()


def run_items(fn: Any, args: Any, star: bool, start: int, spec: dict[str, Any],
              sink: capture.Sink) -> tuple[list[Any], dict[int, bytes]]:
    """The items of one batch in this process's pool (see :class:`ProcessPool`)."""
    return pool().run_batch(fn, args, star, start, spec, sink)
