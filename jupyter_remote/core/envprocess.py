"""Running calls in a process of their environment: the worker's half and the child's half.

A Nanny's worker is daemonic, so ``multiprocessing`` cannot start children there; an
:class:`EnvExecutor` is a plain ``subprocess`` of the environment's python running
``python -m jupyter_remote.core.envprocess``, long-lived (one per environment and working
directory on a worker), speaking length-prefixed pickles over its stdin/stdout. Several calls
run in it at once, one thread each.

The child opens the payload (so only the environment's python ever imports what the
requirements provide), runs it with :func:`jupyter_remote.core.runner.execute` and sends its
log events up the pipe; the worker forwards them to the call's topic, so the notebook sees
them as from any call. Values stay as :class:`~jupyter_remote.core.payload.Opaque` bytes on
the worker: only the notebook or another call of the environment opens them. A cell's bound
names stay in the child until their ``take`` tasks collect them.
"""

from __future__ import annotations

import itertools
import os
import pickle
import struct
import subprocess
import sys
import threading
import time
from typing import Any

from jupyter_remote import config
from jupyter_remote.core import environments, envstore, payload
from jupyter_remote.exceptions import RemoteTaskError, WorkerLostError

_HEADER = struct.Struct("<Q")


def _send(stream, lock: threading.Lock, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    with lock:
        stream.write(_HEADER.pack(len(data)) + data)
        stream.flush()


def _receive(stream) -> Any:
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        return None
    size = _HEADER.unpack(head)[0]
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


# -- worker side ---------------------------------------------------------------------------
class _Pending:
    __slots__ = ("done", "reply")

    def __init__(self):
        self.done = threading.Event()
        self.reply: dict | None = None


class EnvExecutor:
    """One long-lived process of an environment's python on this worker."""

    def __init__(self, env: envstore.Env, cwd: str | None, forward):
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
            [env.python, "-u", "-m", "jupyter_remote.core.envprocess", env.path or ""],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=cwd or None,
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
                message = _receive(self.proc.stdout)
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

    def request(self, message: dict, on_interrupt=None) -> dict:
        """Send ``message`` and wait for its reply (async interrupts land while waiting)."""
        req = next(self._ids)
        waiter = _Pending()
        self._pending[req] = waiter
        with self._count_lock:
            self.busy += 1
        try:
            try:
                _send(self.proc.stdin, self._lock, {**message, "id": req})
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
                f"the process of environment {self.env.key} ({environments.describe(self.env.record)}) "
                f"exited with code {reply['code']} while running this call; the next call starts "
                "a new one"
            )
        return reply

    def tell(self, op: str, call: str) -> None:
        """Send ``op`` ("interrupt", "drop") about ``call``; no reply (gone if it exited)."""
        try:
            _send(self.proc.stdin, self._lock, {"op": op, "call": call})
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


_executors: dict[tuple[str, str | None], EnvExecutor] = {}
_executors_lock = threading.Lock()
# Cells whose bound names wait in an env process: {call: executor}
_kept_in: dict[str, EnvExecutor] = {}


def executor(env: envstore.Env, cwd: str | None) -> EnvExecutor:
    """This worker's process for ``env`` in ``cwd``, started if needed."""
    key = (env.key, cwd)
    with _executors_lock:
        found = _executors.get(key)
        if found is not None and found.alive:
            return found
        from distributed import get_worker

        worker = get_worker()
        found = EnvExecutor(env, cwd, lambda topic, event: worker.log_event(topic, event))
        _executors[key] = found
        _retire_idle()
        return found


def _retire_idle() -> None:
    """Keep at most ``environments.max-processes`` processes; close the longest idle."""
    limit = int(config.get("environments.max-processes", 8) or 8)
    idle = sorted((e.last_used, k) for k, e in _executors.items() if e.busy == 0 and not _holds_cells(e))
    while len(_executors) > limit and idle:
        _, key = idle.pop(0)
        _executors.pop(key).close()


def _holds_cells(ex: EnvExecutor) -> bool:
    return any(e is ex for e in list(_kept_in.values()))


def close_idle() -> None:
    """On a worker: close its environment processes that run nothing and hold no cell's
    values."""
    with _executors_lock:
        for key, ex in list(_executors.items()):
            if ex.busy == 0 and not _holds_cells(ex):
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


def run_in_env(data: bytes, dependencies: tuple) -> Any:
    """The worker's half of ``runner.run`` for a payload with requirements or files."""
    from jupyter_remote.core import logs, runner

    meta, body = payload.split_env(data)
    call, spec = meta["call"], meta["env"]
    if meta.get("blobs"):  # big local files came as the last dependencies
        n = meta["blobs"]
        spec = environments.attach(spec, dependencies[-n:])
        dependencies = dependencies[:-n]
    sink = logs.worker_sink(call, meta["topic"])
    with runner._running_lock:
        runner._running[call] = threading.get_ident()
    ex: EnvExecutor | None = None
    try:
        env = _prepare(spec, sink)
        cwd = envstore.workdir(spec)
        ex = executor(env, cwd)
        info = {
            "requirements": list(spec["requirements"]),
            "files": list((spec.get("files") or {}).get("names", [])),
            "workdir": cwd or None,
            "hash": None if env.key == "base" else env.key,
            "path": env.path,
            "python": env.python,
            "workers": environments.worker_addresses(),
            "worker": runner._worker_address(),
        }
        import cloudpickle

        try:
            deps = cloudpickle.dumps(tuple(dependencies))
        except Exception as exc:
            from jupyter_remote.exceptions import SerializationError

            raise SerializationError("a remote input", dependencies, exc) from None
        reply = ex.request(
            {"op": "run", "meta": meta, "body": body, "deps": deps, "info": info},
            on_interrupt=lambda: ex.tell("interrupt", call),
        )
        runner._stop_interrupts(call)
    except RemoteTaskError as exc:
        runner._stop_interrupts(call)
        exc.__context__ = None
        raise
    except BaseException as exc:  # a failed build, a lost process, an interrupt
        runner._stop_interrupts(call)
        if meta.get("kind") == "cell" and ex is not None and ex.alive:
            # Interrupted while its process runs it: a cell that ignores the interrupt may
            # still bind names there, which `drop` must reach once the task is forgotten.
            _kept_in[call] = ex
        error = payload.pack_exception(exc)
        error.__context__ = None
        raise error from None
    if not reply["ok"]:
        raise RemoteTaskError(*reply["error"])
    value = pickle.loads(reply["value"]) if reply["plain"] else payload.Opaque(reply["value"])
    if reply["plain"] and isinstance(value, dict) and value.get("outputs"):  # a cell's bound names wait in the process
        _kept_in[call] = ex
    return value


def _prepare(spec: dict, sink) -> envstore.Env:
    building = []

    def on_building() -> None:
        building.append(True)
        sink.state("building", worker=runner_address())

    tool = None

    def on_line(text: str) -> None:
        nonlocal tool
        tool = tool or envstore.installer_name()
        sink.add({"stream": "log", "text": f"[{tool}] {text}", "t": time.time(), "level": "INFO"})

    try:
        return envstore.ensure(spec, on_line=on_line, on_building=on_building)
    finally:
        if building:
            sink.close()


def runner_address() -> str:
    from jupyter_remote.core import runner

    return runner._worker_address()


def drop(call: str) -> None:
    """``runner.drop`` for a cell that ran in an env process."""
    ex = _kept_in.pop(call, None)
    if ex is not None:
        ex.tell("drop", call)


def take(call: str, name: str, label: str) -> Any:
    """``runner.take`` for a cell that ran in an env process; None if it did not."""
    ex = _kept_in.get(call)
    if ex is None:
        return None
    reply = ex.request({"op": "take", "call": call, "name": name, "label": label})
    if not reply.get("remaining"):
        _kept_in.pop(call, None)
    if not reply["ok"]:
        raise RemoteTaskError(*reply["error"])
    return (pickle.loads(reply["value"]) if reply["plain"] else payload.Opaque(reply["value"])),


# -- child side ----------------------------------------------------------------------------
def _child(env_path: str) -> None:
    import asyncio
    import fcntl

    import cloudpickle

    from jupyter_remote.core import logs, runner

    # The pipes are the protocol: user code's prints must never reach them.
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    sys.stdin = open(os.devnull)
    sys.stdout = sys.stderr
    lock = threading.Lock()
    if env_path:  # held while this process lives: pruning skips environments in use
        in_use = open(os.path.join(env_path, ".in-use"), "a+")
        fcntl.flock(in_use, fcntl.LOCK_SH)

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="env-events", daemon=True).start()

    def schedule(fn) -> None:
        def go() -> None:
            result = fn()
            if asyncio.iscoroutine(result):
                loop.create_task(result)

        loop.call_soon_threadsafe(go)

    def reply(message: dict) -> None:
        _send(proto_out, lock, message)

    def value_reply(req: int, value: Any, plain: bool, **extra) -> None:
        try:
            blob = pickle.dumps(value) if plain else cloudpickle.dumps(value)
        except Exception as exc:
            reply({"op": "done", "id": req, "ok": False, "error": payload.pack_exception(exc).args, **extra})
            return
        reply({"op": "done", "id": req, "ok": True, "value": blob, "plain": plain, **extra})

    def serve_run(message: dict) -> None:
        req, meta, info = message["id"], message["meta"], message["info"]
        topic = meta["topic"]
        try:
            deps = tuple(payload.unwrap(d) for d in cloudpickle.loads(message["deps"]))
            spec = payload.loads(message["body"], deps)
        except Exception as exc:
            reply({"op": "done", "id": req, "ok": False, "error": payload.pack_exception(exc).args})
            return
        sink = logs.Sink(
            meta["call"], lambda event: reply({"op": "event", "topic": topic, "event": event}), schedule
        )
        environments._current.info = info
        try:
            result = runner.execute(spec, sink, info["worker"])
        except RemoteTaskError as exc:
            reply({"op": "done", "id": req, "ok": False, "error": exc.args})
            return
        finally:
            environments._current.info = None
        value_reply(req, result, spec["kind"] == "cell" and not spec.get("get"))

    def serve_take(message: dict) -> None:
        call = message["call"]
        try:
            value = runner.take(call, message["name"], message["label"])
        except Exception as exc:
            reply({"op": "done", "id": message["id"], "ok": False,
                   "error": payload.pack_exception(exc).args, "remaining": 0})
            return
        with runner._kept_lock:  # names the cell did not bind are never taken: not counted
            remaining = sum(v is not runner._UNBOUND for v in runner._kept.get(call, {}).values())
        value_reply(message["id"], value, isinstance(value, runner.Unbound), remaining=remaining)

    from concurrent.futures import ThreadPoolExecutor

    # Threads are reused: a call does not pay for starting one. As many as the worker may
    # run at once (each waits for its call here), and then some.
    pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="env-call")
    while True:
        message = _receive(proto_in)
        if message is None:
            os._exit(0)
        op = message["op"]
        if op == "run":
            pool.submit(serve_run, message)
        elif op == "take":
            serve_take(message)
        elif op == "interrupt":
            runner.interrupt(message["call"])
        elif op == "drop":
            runner.drop(message["call"])


if __name__ == "__main__":
    _child(sys.argv[1] if len(sys.argv) > 1 else "")
