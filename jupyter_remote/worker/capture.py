"""Output capture on the worker: each call's stdout, stderr, log records and warnings.

``sys.stdout``/``sys.stderr`` are replaced once per process (by the worker plugin when the
worker starts, or by an environment's process when it starts) with streams that send a write
to the sink of the call running in the writing thread, or, outside any call, to the original
stream; a ``logging`` handler does the same for log records, and ``warnings`` arrive through
stderr. A :class:`Sink` batches one call's lines and ships them as
:class:`~jupyter_remote.wire.events.LogEvent`s from the worker's event loop: one event per
loop turn, so a lone print leaves at once and a flood is grouped into large events.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from jupyter_remote.wire.events import LogEvent, LogLine, Stream, pack

_local = threading.local()
# The map item a thread or coroutine runs when a batch runs its items concurrently (the
# sink's own ``index`` is for the one item a plain batch runs at a time).
item_index: contextvars.ContextVar[int | None] = contextvars.ContextVar("item_index", default=None)
_install_lock = threading.Lock()
_installed = False


class _RoutedStream:
    """Stands in for sys.stdout/sys.stderr; sends writes to the current call's sink."""

    def __init__(self, name: Stream, original: TextIO):
        self._name = name
        self._original = original

    def write(self, text: str) -> int:
        sink = getattr(_local, "sink", None)
        if sink is None:
            return self._original.write(text)
        sink.write(self._name, text)
        return len(text)

    def flush(self) -> None:
        sink = getattr(_local, "sink", None)
        if sink is None:
            self._original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


class _RoutedHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        sink = getattr(_local, "sink", None)
        if sink is None:
            return
        try:
            text = self.format(record)
        except Exception:
            text = record.getMessage()
        for line in text.splitlines() or [""]:
            sink.add({"stream": "log", "text": line, "t": record.created, "level": record.levelname})


def install() -> None:
    """Route this process's stdout, stderr and log records to the sinks of its calls
    (once per process; writes outside any call still reach the original streams)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        sys.stdout = _RoutedStream("stdout", sys.stdout)
        sys.stderr = _RoutedStream("stderr", sys.stderr)
        handler = _RoutedHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))
        logging.getLogger().addHandler(handler)
        _installed = True


def installed() -> bool:
    """Whether this process's output is routed to its calls' sinks."""
    return _installed


class Sink:
    """Collects one call's output on the worker and ships it in batches.

    ``emit(event)`` is the transport: on a worker it is ``Worker.log_event`` bound to the
    client's topic. ``schedule(fn)`` runs ``fn`` soon on the transport's thread (the
    worker's event loop), which is where batches are cut.
    """

    def __init__(
        self,
        call: str,
        emit: Callable[[LogEvent], None],
        schedule: Callable[[Callable[[], Any]], None],
    ):
        self.call = call
        self._items: tuple[int, list[Any]] | None = None  # a plain batch's (start, values)
        self._emit = emit
        self._schedule = schedule
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._pending: list[LogLine] = []
        # Unfinished lines, per stream and per concurrent item (threads of one batch write
        # "text" and "\n" in separate calls: their halves must not meet).
        self._partial: dict[tuple[str, int | None], str] = {}
        self._scheduled = False
        self.closed = False
        self.wrote = False  # a line was written (a map batch sent past the stream waits for it)

    def write(self, stream: Stream, text: str) -> None:
        if not text:
            return
        now = time.time()
        with self._lock:
            key = (stream, item_index.get())
            head = self._partial.pop(key, "") + text
            *lines, rest = head.split("\n")
            if rest:
                self._partial[key] = rest
            for line in lines:
                self._pending.append(self._line(stream, line, now))
            self.wrote = True
            self._kick()

    def add(self, line: LogLine) -> None:
        with self._lock:
            index = self.index
            if index is not None:
                line["index"] = index
            self._pending.append(line)
            self.wrote = True
            self._kick()

    def state(self, state: str, **info: Any) -> None:
        self._emit({"call": self.call, "state": state, **info})  # type: ignore[typeddict-item]

    def result(self, value: Any, limit: int = 64 * 1024) -> bool:
        """Send a small, msgpack-able result after every line; False if it is too big."""
        import msgpack

        try:
            if len(msgpack.packb(value)) > limit:
                return False
        except Exception:
            return False
        self._emit({"call": self.call, "result": value})
        return True

    def batch_result(self, data: bytes, batch: int, done: int, failed: int) -> None:
        """Send a map batch's pickled results after every line (see ``result``), with its
        final progress (as ``state`` would send it) in the same event."""
        self._emit({"call": self.call, "state": "running", "batch": batch, "done": done,
                    "failed": failed, "result": {"batch": batch, "data": data}})

    def batch_end(self, batch: int, done: int, failed: int) -> None:
        """Mark the end of a map batch's lines whose results went to the notebook another
        way (:mod:`jupyter_remote.worker.lane`), with its final progress."""
        self._emit({"call": self.call, "state": "running", "batch": batch, "done": done,
                    "failed": failed, "result": {"batch": batch, "end": True}})

    def value(self, data: bytes) -> None:
        """Send a call's pickled value after every line (see ``result``; its size is
        bounded by whoever pickled it, so it is not measured again here)."""
        self._emit({"call": self.call, "result": {"value": data}})

    def state_soon(self, state: str, delay: float = 0.05, **info: Any) -> None:
        """Announce ``state`` after ``delay`` seconds, unless the sink is closed by then."""
        event: LogEvent = {"call": self.call, "state": state, **info}  # type: ignore[typeddict-item]

        async def later() -> None:
            await asyncio.sleep(delay)
            if not self.closed:
                self._emit(event)

        self._schedule(later)  # the worker's loop (and an env process's) runs coroutines too

    def close(self) -> None:
        """Ship what is left, partial lines included."""
        self.closed = True
        with self._lock:
            for (stream, index), rest in self._partial.items():
                line = self._line(stream, rest, time.time())  # type: ignore[arg-type]
                if index is not None:
                    line["index"] = index
                self._pending.append(line)
            self._partial.clear()
        self._flush()

    def _line(self, stream: Stream, text: str, t: float) -> LogLine:
        line: LogLine = {"stream": stream, "text": text, "t": t}
        index = self.index
        if index is not None:
            line["index"] = index
        return line

    def follow(self, start: int | None, values: list[Any] | None = None) -> None:
        """Tag lines with the item a plain batch runs: ``start + len(values)``, as the
        batch appends each item's value to ``values`` (None, None: no batch runs)."""
        self._items = None if start is None or values is None else (start, values)

    @property
    def index(self) -> int | None:
        """The map item that writes now (None: not a map's batch)."""
        concurrent = item_index.get()
        if concurrent is not None:
            return concurrent
        items = self._items
        return None if items is None else items[0] + len(items[1])

    def _kick(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            self._schedule(self._flush)

    def _flush(self) -> None:
        # One flush at a time, emit included: a flush on the transport's thread that has
        # taken lines but not yet sent them must not be overtaken by ``close`` and what the
        # caller sends after it (an environment's process replies on the same pipe).
        with self._flushing:
            with self._lock:
                lines, self._pending = self._pending, []
                self._scheduled = False
            if lines:
                self._emit({"call": self.call, "packed": pack(lines)})


class capture:
    """Route this thread's stdout, stderr and log records to ``sink`` while inside (and then
    ship what is left, unless ``close`` is false: a sink shared by several threads)."""

    def __init__(self, sink: Sink, close: bool = True):
        self.sink = sink
        self.close = close

    def __enter__(self) -> Sink:
        self._previous = getattr(_local, "sink", None)
        _local.sink = self.sink
        return self.sink

    def __exit__(self, *exc: object) -> None:
        _local.sink = self._previous
        if self.close:
            self.sink.close()


def worker_sink(call: str, topic: str, worker: Any) -> Sink:
    """A sink on the Dask ``worker`` that publishes to ``topic``.

    Its first batch of lines names the worker (one field per call), so the notebook can
    mark output printed again by a rerun on another worker before the first replayed line.
    """
    named = [False]

    def emit(event: LogEvent) -> None:
        if not named[0] and "packed" in event:
            named[0] = True
            event = {**event, "worker": worker.address}
        worker.log_event(topic, event)

    return Sink(call, emit, lambda fn: worker.loop.add_callback(fn))
