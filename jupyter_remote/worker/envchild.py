"""Running calls in a process of their environment: the child's half.

Started by :class:`jupyter_remote.worker.envexec.EnvExecutor` as
``python -m jupyter_remote.worker.envchild ENV_PATH`` with the environment's python. It reads
requests from stdin and answers on stdout (:mod:`jupyter_remote.worker.pipe`); user code's
prints never reach those pipes (they go to the call's log, or to stderr). Each ``run``
request runs in a thread of a pool, with :func:`jupyter_remote.worker.runner.execute`, its
log events sent up the pipe; ``take``, ``interrupt`` and ``drop`` act on the per-call state
of this process.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

from jupyter_remote.exceptions import RemoteTaskError
from jupyter_remote.wire import payload
from jupyter_remote.wire.failures import pack_exception
from jupyter_remote.worker import capture, context, runner, state
from jupyter_remote.worker.pipe import receive, send


class Child:
    """This process: the protocol pipes, an event loop for the sinks, a pool for calls."""

    def __init__(self, proto_in: IO[bytes], proto_out: IO[bytes]):
        self.proto_in = proto_in
        self.proto_out = proto_out
        self.lock = threading.Lock()  # one writer at a time on the pipe
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="env-events", daemon=True).start()
        # Threads are reused: a call does not pay for starting one. As many as the worker
        # may run at once (each waits for its call here), and then some.
        self.pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="env-call")

    def serve(self) -> None:
        """Answer requests until the worker closes the pipe, then exit."""
        while True:
            message = receive(self.proto_in)
            if message is None:
                os._exit(0)
            op = message["op"]
            if op == "run":
                self.pool.submit(self.run, message)
            elif op == "take":
                self.take(message)
            elif op == "interrupt":
                state.interrupt(message["call"])
            elif op == "drop":
                state.drop(message["call"])
            elif op == "pickled":
                self.pickled(message)

    def reply(self, message: dict[str, Any]) -> None:
        send(self.proto_out, self.lock, message)

    def schedule(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` (or the coroutine it returns) soon on this process's event loop."""

        def go() -> None:
            result = fn()
            if asyncio.iscoroutine(result):
                self.loop.create_task(result)

        self.loop.call_soon_threadsafe(go)

    def run(self, message: dict[str, Any]) -> None:
        req, meta, info = message["id"], message["meta"], message["info"]
        topic = meta["topic"]
        try:
            import cloudpickle

            deps = tuple(payload.unwrap(d) for d in cloudpickle.loads(message["deps"]))
            spec = payload.loads(message["body"], deps)
        except Exception as exc:
            self.reply({"op": "done", "id": req, "ok": False, "error": pack_exception(exc).args})
            return
        sink = capture.Sink(
            meta["call"],
            lambda event: self.reply({"op": "event", "topic": topic, "event": event}),
            self.schedule,
        )
        try:
            with context.given(info):
                result = runner.execute(spec, sink, info["worker"])
        except RemoteTaskError as exc:
            self.reply({"op": "done", "id": req, "ok": False, "error": exc.args})
            return
        self.value_reply(req, result, spec["kind"] == "cell" and not spec.get("get"))

    def take(self, message: dict[str, Any]) -> None:
        call = message["call"]
        try:
            value = runner.take(call, message["name"], message["label"])
        except Exception as exc:
            self.reply({"op": "done", "id": message["id"], "ok": False,
                        "error": pack_exception(exc).args, "remaining": 0})
            return
        self.value_reply(message["id"], value, isinstance(value, payload.Unbound),
                         remaining=state.remaining(call))

    def pickled(self, message: dict[str, Any]) -> None:
        """The values a cell bound here, as bytes, left in place (to store a memoized run)."""
        import cloudpickle

        try:
            blobs = {n: bytes(cloudpickle.dumps(v)) for n, v in state.peek(message["call"]).items()}
        except Exception as exc:
            self.reply({"op": "done", "id": message["id"], "ok": False,
                        "error": pack_exception(exc).args})
            return
        self.reply({"op": "done", "id": message["id"], "ok": True, "value": blobs})

    def value_reply(self, req: int, value: Any, plain: bool, **extra: Any) -> None:
        """Send ``value`` back: plain-pickled (a cell's description), else cloudpickled bytes
        that the worker keeps unopened."""
        import cloudpickle

        try:
            blob = pickle.dumps(value) if plain else cloudpickle.dumps(value)
        except Exception as exc:
            self.reply({"op": "done", "id": req, "ok": False,
                        "error": pack_exception(exc).args, **extra})
            return
        self.reply({"op": "done", "id": req, "ok": True, "value": blob, "plain": plain, **extra})


def main(env_path: str) -> None:
    # The pipes are the protocol: user code's prints must never reach them.
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    sys.stdin = open(os.devnull)
    sys.stdout = sys.stderr
    capture.install()
    if env_path:  # held while this process lives: pruning skips environments in use
        from jupyter_remote.wire.locks import hold_shared

        hold_shared(os.path.join(env_path, ".in-use"))
    Child(proto_in, proto_out).serve()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "")
