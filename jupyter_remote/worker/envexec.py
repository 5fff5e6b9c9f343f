"""Running calls in a process of their environment: the worker's half.

A Nanny's worker is daemonic, so ``multiprocessing`` cannot start children there; an
:class:`EnvExecutor` is a plain ``subprocess`` of the environment's python running
``python -m jupyter_remote.worker.envchild``, long-lived (one per environment and working
directory on a worker), speaking length-prefixed pickles over its stdin/stdout
(:mod:`jupyter_remote.worker.pipe`). Several calls run in it at once, one thread each.

The child opens the payload (so only the environment's python ever imports what the
requirements provide), runs it and sends its log events up the pipe; the worker forwards
them to the call's topic, so the notebook sees them as from any call. Values stay as
:class:`~jupyter_remote.wire.payload.Opaque` bytes on the worker: only the notebook or
another call of the environment opens them. A cell's bound names stay in the child until
their ``take`` tasks collect them (the executor is their :class:`~.state.Holder`).
"""

from __future__ import annotations

import itertools
import os
import pickle
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from jupyter_remote import config
from jupyter_remote.exceptions import RemoteTaskError, SerializationError, WorkerLostError
from jupyter_remote.wire import envspec, payload
from jupyter_remote.wire.failures import pack_exception
from jupyter_remote.worker import capture, context, envbuild, envstore, state
from jupyter_remote.worker.pipe import receive, send


class _Pending:
    __slots__ = ("done", "reply")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.reply: dict[str, Any] | None = None


class EnvExecutor:
    """One long-lived process of an environment's python on this worker."""

    def __init__(self, env: envstore.Env, cwd: str | None,
                 forward: Callable[[str, Any], None]):
        self.env = env
        self.cwd = cwd
        self._forward = forward  # (topic, event) -> None: to the notebook
        self._lock = threading.Lock()  # one writer at a time on the pipe
        self._count_lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._ids = itertools.count()
        self.busy = 0
        self.last_used = time.monotonic()
        self.proc = subprocess.Popen(
            [env.python, "-u", "-m", "jupyter_remote.worker.envchild", env.path or ""],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=cwd or None,
            env={**os.environ, context.THREADS_VARIABLE: str(context.worker_threads())},
        )
        self.exit_code: int | None = None
        threading.Thread(target=self._read, name=f"env-{env.key}-reader", daemon=True).start()

    @property
    def alive(self) -> bool:
        return self.exit_code is None and self.proc.poll() is None

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            try:
                message = receive(self.proc.stdout)
            except Exception:
                message = None
            if message is None:
                break
            if message["op"] == "event":
                self._forward(message["topic"], message["event"])
            else:
                waiter = self._pending.pop(message["id"], None)
                if waiter is not None:
                    waiter.reply = message
                    waiter.done.set()
        self.exit_code = self.proc.wait()
        lost = {"op": "lost", "code": self.exit_code}
        for waiter in list(self._pending.values()):
            waiter.reply = lost
            waiter.done.set()
        self._pending.clear()

    def request(self, message: dict[str, Any],
                on_interrupt: Callable[[], None] | None = None) -> dict[str, Any]:
        """Send ``message`` and wait for its reply (async interrupts land while waiting)."""
        req = next(self._ids)
        waiter = _Pending()
        self._pending[req] = waiter
        with self._count_lock:
            self.busy += 1
        try:
            try:
                send(self.proc.stdin, self._lock, {**message, "id": req})
            except OSError:  # it has just exited: the reader reports how
                self.proc.wait()
            while not waiter.done.wait(0.05):
                if self.exit_code is not None and not waiter.done.is_set():
                    waiter.reply = {"op": "lost", "code": self.exit_code}
                    break
        except BaseException:
            self._pending.pop(req, None)
            if on_interrupt is not None and self.alive:
                on_interrupt()
            raise
        finally:
            with self._count_lock:
                self.busy -= 1
            self.last_used = time.monotonic()
        reply = waiter.reply
        assert reply is not None
        if reply["op"] == "lost":
            raise WorkerLostError(
                f"the process of environment {self.env.key} ({envspec.describe(self.env.record)}) "
                f"exited with code {reply['code']} while running this call; the next call starts "
                "a new one"
            )
        return reply

    def tell(self, op: str, call: str) -> None:
        """Send ``op`` ("interrupt", "drop") about ``call``; no reply (gone if it exited)."""
        try:
            send(self.proc.stdin, self._lock, {"op": op, "call": call})
        except OSError:
            pass

    def close(self) -> None:
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()  # the child exits on end of input
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    # -- a Holder of the values of cells that ran here -----------------------------------
    def take(self, call: str, name: str, label: str) -> Any:
        """The value ``name`` that ``call`` bound in this process (see ``runner.take``)."""
        reply = self.request({"op": "take", "call": call, "name": name, "label": label})
        if not reply.get("remaining"):
            state.release_holder(call)
        if not reply["ok"]:
            raise RemoteTaskError(*reply["error"])
        return pickle.loads(reply["value"]) if reply["plain"] else payload.Opaque(reply["value"])

    def drop(self, call: str) -> None:
        self.tell("drop", call)

    def hold(self) -> None:
        """Count as busy until ``let_go()`` (see :func:`executor`)."""
        with self._count_lock:
            self.busy += 1

    def let_go(self) -> None:
        with self._count_lock:
            self.busy -= 1

    def pickled(self, call: str) -> dict[str, bytes]:
        """The values ``call`` bound in this process, as bytes, left there for their takes."""
        reply = self.request({"op": "pickled", "call": call})
        if not reply["ok"]:
            raise RemoteTaskError(*reply["error"])
        return dict(reply["value"])


_executors: dict[tuple[str, str | None], EnvExecutor] = {}
_executors_lock = threading.Lock()


def executor(env: envstore.Env, cwd: str | None) -> EnvExecutor:
    """This worker's process for ``env`` in ``cwd``, started if needed, counted busy for the
    caller (who calls ``let_go()`` after its request): between here and the request, another
    thread closing idle processes (max-processes, the size cap) must not close it."""
    key = (env.key, cwd)
    with _executors_lock:
        found = _executors.get(key)
        if found is None or not found.alive:
            worker = context.current_worker()
            found = EnvExecutor(env, cwd, lambda topic, event: worker.log_event(topic, event))
            _executors[key] = found
            state.at_close(close_all)
            _retire_idle(keep=key)
        found.hold()
        return found


def _retire_idle(keep: tuple[str, str | None]) -> None:
    """Keep at most ``environments.max-processes`` processes; close the longest idle (never
    ``keep``, the one just started for a call: it has not sent its request yet)."""
    limit = int(config.get("environments.max-processes", 8) or 8)
    idle = sorted((e.last_used, k) for k, e in _executors.items()
                  if k != keep and e.busy == 0 and not state.holds(e))
    while len(_executors) > limit and idle:
        _, key = idle.pop(0)
        _executors.pop(key).close()


def close_idle(envs: list[str] | None = None) -> None:
    """On a worker: close its environment processes that run nothing and hold no cell's
    values (only those of the environments ``envs``, if given)."""
    with _executors_lock:
        for key, ex in list(_executors.items()):
            if (envs is None or ex.env.key in envs) and ex.busy == 0 and not state.holds(ex):
                _executors.pop(key).close()


def prune_here() -> list[str]:
    """On a worker: close idle environment processes, then remove unused environments."""
    close_idle()
    return envstore.prune()


def close_all() -> None:
    with _executors_lock:
        for ex in _executors.values():
            ex.close()
        _executors.clear()


def run_in_env(data: bytes, dependencies: tuple[Any, ...]) -> Any:
    """The worker's half of ``runner.run`` for a payload with requirements or files."""
    meta, body = payload.split_env(data)
    call, spec = meta["call"], meta["env"]
    if meta.get("blobs"):  # big local files came as the last dependencies
        n = meta["blobs"]
        spec = envspec.attach(spec, dependencies[-n:])
        dependencies = dependencies[:-n]
    worker = context.current_worker()
    sink = capture.worker_sink(call, meta["topic"], worker)
    state.started(call)
    ex: EnvExecutor | None = None
    try:
        env = _prepare(spec, sink, worker.address)
        cwd = envstore.workdir(spec)
        ex = executor(env, cwd)
        try:
            reply = ex.request(
                {"op": "run", "meta": meta, "body": body, "deps": _pickled(dependencies),
                 "info": _info(spec, env, cwd, worker.address)},
                on_interrupt=lambda: ex.tell("interrupt", call) if ex is not None else None,
            )
        finally:
            ex.let_go()
        state.stopped(call)
    except RemoteTaskError as exc:
        state.stopped(call)
        exc.__context__ = None
        raise
    except BaseException as exc:  # a failed build, a lost process, an interrupt
        state.stopped(call)
        if meta.get("kind") == "cell" and ex is not None and ex.alive:
            # Interrupted while its process runs it: a cell that ignores the interrupt may
            # still bind names there, which `drop` must reach once the task is forgotten.
            state.hold_elsewhere(call, ex)
        error = pack_exception(exc)
        error.__context__ = None
        raise error from None
    if not reply["ok"]:
        raise RemoteTaskError(*reply["error"])
    value = pickle.loads(reply["value"]) if reply["plain"] else payload.Opaque(reply["value"])
    if reply["plain"] and isinstance(value, dict) and value.get("outputs"):
        state.hold_elsewhere(call, ex)  # a cell's bound names wait in the process
    return value


def _pickled(dependencies: tuple[Any, ...]) -> bytes:
    import cloudpickle

    try:
        return bytes(cloudpickle.dumps(tuple(dependencies)))
    except Exception as exc:
        raise SerializationError("a remote input", dependencies, exc) from None


def _info(spec: dict[str, Any], env: envstore.Env, cwd: str | None, worker: str) -> dict[str, Any]:
    """What ``get_env()`` tells the call (see :mod:`jupyter_remote.worker.context`)."""
    return {
        "requirements": list(spec["requirements"]),
        "files": list((spec.get("files") or {}).get("names", [])),
        "workdir": cwd or None,
        "hash": None if env.key == "base" else env.key,
        "path": env.path,
        "python": env.python,
        "workers": context.worker_addresses(),
        "worker": worker,
    }


def _prepare(spec: dict[str, Any], sink: capture.Sink, worker: str) -> envstore.Env:
    """The environment of ``spec``, built now if needed, the build's lines in the call's log."""
    building = []

    def on_building() -> None:
        building.append(True)
        sink.state("building", worker=worker)

    tool = None

    def on_line(text: str) -> None:
        nonlocal tool
        tool = tool or envbuild.installer_name()
        sink.add({"stream": "log", "text": f"[{tool}] {text}", "t": time.time(), "level": "INFO"})

    try:
        return envstore.ensure(spec, on_line=on_line, on_building=on_building, free=close_idle)
    finally:
        if building:
            sink.close()
