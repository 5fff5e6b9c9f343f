"""The log stream of remote calls: capture on the worker, routing on the client.

Worker side: ``sys.stdout``/``sys.stderr`` are replaced once per worker process by streams
that send a write to the sink of the call running in the writing thread (or, outside any
call, to the original stream); a ``logging`` handler does the same for log records, and
``warnings`` arrive through stderr. A sink batches lines and ships them with
``Worker.log_event`` from the worker's event loop: one event per loop turn, so a lone print
leaves at once and a flood is grouped into large events.

Client side: one :class:`LogRouter` per client subscribes to its own topic (events go only
to the client that made the call) and hands each event to the :class:`CallLog` of its call.
A ``CallLog`` keeps the whole log and tells its listeners (the views) about new lines and
state changes; views only draw.
"""

from __future__ import annotations

import array
import asyncio
import bisect
import collections
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, TypedDict, overload

# -- wire format ---------------------------------------------------------------------------
Stream = Literal["stdout", "stderr", "log"]


class LogLine(TypedDict, total=False):
    stream: Stream
    text: str  # one line, without its newline
    t: float  # worker time.time() of the write
    level: str  # for stream == "log": the record's level name
    index: int  # for map items: the item's position


class PackedLines(TypedDict):
    """Many lines in a few objects (a flood costs the scheduler and client per object).

    ``text[i]`` was written at ``t0 + dt[i] / 1e6``; each run ``[start, stream, level,
    index]`` describes the lines from ``start`` to the next run's start.
    """

    text: list[str]
    t0: float
    dt: list[int]
    runs: list[list]


class LogEvent(TypedDict, total=False):
    call: str
    lines: list[LogLine]  # as plain lines (few), or:
    packed: PackedLines  # as packed lines (what sinks send)
    state: str  # "running" | "building" | ...
    worker: str
    result: Any  # a cell's description (outputs, display), sent after its last line
    batch: int  # map progress: this batch has `done` items finished, `failed` of them failed
    done: int
    failed: int


def pack(lines: list[LogLine]) -> PackedLines:
    t0 = lines[0].get("t", 0.0) if lines else 0.0
    runs: list[list] = []
    key = None
    for i, line in enumerate(lines):
        this = (line.get("stream", "stdout"), line.get("level"), line.get("index"))
        if this != key:
            key = this
            runs.append([i, *this])
    return {
        "text": [line.get("text", "") for line in lines],
        "t0": t0,
        "dt": [int((line.get("t", t0) - t0) * 1e6) for line in lines],
        "runs": runs,
    }


def unpack(packed: PackedLines, lo: int = 0, hi: int | None = None) -> list[LogLine]:
    """The lines ``lo`` to ``hi`` of ``packed`` as plain lines."""
    text, dt, t0, runs = packed["text"], packed["dt"], packed["t0"], packed["runs"]
    hi = len(text) if hi is None else hi
    out: list[LogLine] = []
    for r, (start, stream, level, index) in enumerate(runs):
        end = runs[r + 1][0] if r + 1 < len(runs) else len(text)
        if end <= lo or start >= hi:
            continue
        extra: dict[str, Any] = {}
        if level is not None:
            extra["level"] = level
        if index is not None:
            extra["index"] = index
        for i in range(max(start, lo), min(end, hi)):
            out.append({"stream": stream, "text": text[i], "t": t0 + dt[i] / 1e6, **extra})  # type: ignore[typeddict-item]
    return out


class LogLines(Sequence):
    """A call's whole log, kept packed (a 200,000-line flood costs the kernel about a
    quarter of what as many ``LogLine`` dicts would); reads as a sequence of ``LogLine``.

    Appends come from one thread at a time (under the ``CallLog``'s lock); reads from any
    thread see a consistent prefix.
    """

    def __init__(self, lines: list[LogLine] | None = None):
        self._starts: list[int] = []
        self._chunks: list[PackedLines] = []
        self._n = 0
        if lines:
            self.extend(lines)

    def append_packed(self, packed: PackedLines) -> None:
        n = len(packed["text"])
        if not n:
            return
        packed = {**packed, "dt": array.array("q", packed["dt"])}  # type: ignore[typeddict-item]
        self._starts.append(self._n)
        self._chunks.append(packed)
        self._n += n  # last: readers only look at lines below it

    def extend(self, lines) -> None:
        lines = list(lines)
        if lines:
            self.append_packed(pack(lines))

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> LogLine: ...
    @overload
    def __getitem__(self, i: slice) -> list[LogLine]: ...
    def __getitem__(self, i):
        n = self._n
        if isinstance(i, slice):
            start, stop, step = i.indices(n)
            if step != 1:
                return [self[j] for j in range(start, stop, step)]
            return self._range(start, stop)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("log line index out of range")
        return self._range(i, i + 1)[0]

    def _range(self, start: int, stop: int) -> list[LogLine]:
        out: list[LogLine] = []
        c = max(0, bisect.bisect_right(self._starts, start) - 1)
        while start < stop and c < len(self._chunks):
            base, chunk = self._starts[c], self._chunks[c]
            end = min(len(chunk["text"]), stop - base)
            out.extend(unpack(chunk, start - base, end))
            start = base + end
            c += 1
        return out

    def __iter__(self) -> Iterator[LogLine]:
        n = self._n
        for base, chunk in zip(list(self._starts), list(self._chunks)):
            if base >= n:
                return
            yield from unpack(chunk, 0, min(len(chunk["text"]), n - base))

    def __repr__(self) -> str:
        return f"<LogLines {self._n} lines>"


def topic_for(client_id: str) -> str:
    """The event topic of one client: only that client subscribes to it."""
    return f"jupyter-remote-logs-{client_id}"


# -- worker side ---------------------------------------------------------------------------
_local = threading.local()
_install_lock = threading.Lock()
_installed = False


class _RoutedStream:
    """Stands in for sys.stdout/sys.stderr; sends writes to the current call's sink."""

    def __init__(self, name: Stream, original):
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

    def __getattr__(self, name: str):
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


def _install() -> None:
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
        schedule: Callable[[Callable[[], None]], None],
    ):
        self.call = call
        self.index: int | None = None
        self._emit = emit
        self._schedule = schedule
        self._lock = threading.Lock()
        self._pending: list[LogLine] = []
        self._partial: dict[str, str] = {}
        self._scheduled = False
        self.closed = False

    def write(self, stream: Stream, text: str) -> None:
        if not text:
            return
        now = time.time()
        with self._lock:
            head = self._partial.pop(stream, "") + text
            *lines, rest = head.split("\n")
            if rest:
                self._partial[stream] = rest
            for line in lines:
                self._pending.append(self._line(stream, line, now))
            self._kick()

    def add(self, line: LogLine) -> None:
        with self._lock:
            if self.index is not None:
                line["index"] = self.index
            self._pending.append(line)
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

    def state_soon(self, state: str, delay: float = 0.05, **info: Any) -> None:
        """Announce ``state`` after ``delay`` seconds, unless the sink is closed by then."""
        event = {"call": self.call, "state": state, **info}

        async def later() -> None:
            await asyncio.sleep(delay)
            if not self.closed:
                self._emit(event)  # type: ignore[arg-type]

        self._schedule(later)  # type: ignore[arg-type]  # tornado runs coroutines too

    def close(self) -> None:
        """Ship what is left, partial lines included."""
        self.closed = True
        with self._lock:
            for stream, rest in self._partial.items():
                self._pending.append(self._line(stream, rest, time.time()))  # type: ignore[arg-type]
            self._partial.clear()
        self._flush()

    def _line(self, stream: Stream, text: str, t: float) -> LogLine:
        line: LogLine = {"stream": stream, "text": text, "t": t}
        if self.index is not None:
            line["index"] = self.index
        return line

    def _kick(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            self._schedule(self._flush)

    def _flush(self) -> None:
        with self._lock:
            lines, self._pending = self._pending, []
            self._scheduled = False
        if lines:
            self._emit({"call": self.call, "packed": pack(lines)})


class capture:
    """Route this thread's stdout, stderr and log records to ``sink`` while inside."""

    def __init__(self, sink: Sink):
        self.sink = sink

    def __enter__(self) -> Sink:
        _install()
        self._previous = getattr(_local, "sink", None)
        _local.sink = self.sink
        return self.sink

    def __exit__(self, *exc) -> None:
        _local.sink = self._previous
        self.sink.close()


def worker_sink(call: str, topic: str) -> Sink:
    """A sink on the current Dask worker that publishes to ``topic``."""
    from distributed import get_worker

    worker = get_worker()

    def emit(event: LogEvent) -> None:
        worker.log_event(topic, event)

    return Sink(call, emit, lambda fn: worker.loop.add_callback(fn))


# -- client side ---------------------------------------------------------------------------
Listener = Callable[["CallLog", list[LogLine]], None]


class CallLog:
    """Everything one remote call wrote, plus its state; the data source of the views."""

    def __init__(self, call: str, label: str = ""):
        self.call = call
        self.label = label
        self.lines = LogLines()
        self.state = "queued"
        self.worker: str | None = None
        self.started = time.time()
        self.finished: float | None = None
        self.total: int | None = None  # items of a map
        self.batches: dict[int, tuple[int, int]] = {}  # map batch -> (done, failed)
        self.cancel: Callable[[], str] | None = None  # set by the call: stops it
        self.result: Any = None  # a small result sent on the stream (a cell's description)
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def listen(self, listener: Listener, replay: bool = False) -> None:
        """Call ``listener(call_log, new_lines)`` on every new batch or state change.

        With ``replay``, first call it with the lines that arrived before now (a fast call's
        first lines can arrive before whoever submitted it starts listening).
        """
        with self._lock:
            self._listeners.append(listener)
            if replay:  # under the lock: no newer batch can reach the listener first
                listener(self, list(self.lines))

    def feed(self, event: LogEvent) -> None:
        packed = event.get("packed")
        lines = event.get("lines") or (unpack(packed) if packed else [])
        with self._lock:
            if packed:
                self.lines.append_packed(packed)
            else:
                self.lines.extend(lines)
            if "state" in event and (self.state not in FINAL_STATES or event["state"] in FINAL_STATES):
                self.state = event["state"]  # a late 'running' never revives a finished call
            elif lines and self.state == "queued":
                self.state = "running"  # its lines prove it runs ('running' is sent late)
            if event.get("worker"):
                self.worker = event["worker"]
            if "result" in event:
                self.result = event["result"]
            if "batch" in event:
                self.batches[event["batch"]] = (event.get("done", 0), event.get("failed", 0))
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(self, lines)
            except Exception:  # a broken view must not break the stream
                logging.getLogger(__name__).exception("log listener failed")

    def set_state(self, state: str) -> None:
        if state in ("done", "failed", "cancelled"):
            self.finished = time.time()
        self.feed({"call": self.call, "state": state})

    @property
    def done(self) -> int:
        """Items of a map that have finished (failed ones included)."""
        return sum(d for d, _ in self.batches.values())

    @property
    def failed(self) -> int:
        return sum(f for _, f in self.batches.values())

    @property
    def elapsed(self) -> float:
        return (self.finished or time.time()) - self.started

    @property
    def rate(self) -> float:
        """Items of a map finished per second so far."""
        return self.done / max(self.elapsed, 1e-9)

    def tail(self, n: int) -> tuple[list[LogLine], int]:
        """The last ``n`` lines and how many earlier lines that leaves out (for views)."""
        total = len(self.lines)  # then one slice: consistent while another thread appends
        start = max(0, total - max(0, n))
        return self.lines[start:total], start

    def summary(self) -> str:
        """One line for the views: state, worker, elapsed time and map progress."""
        state = STATE_WORDS.get(self.state, self.state)
        parts = [f"{state} on {self.worker}" if self.worker else state]
        parts.append(f"{self.elapsed:.1f} s")
        if self.total is not None:
            parts.append(self.progress())
        return " · ".join(parts)

    def progress(self) -> str:
        """Map progress: done of total, failed count, rate."""
        text = f"{self.done} of {self.total} done"
        if self.failed:
            text += f", {self.failed} failed"
        return text + f", {self.rate:.1f}/s"


STATE_WORDS = {"building": "building environment"}
FINAL_STATES = ("done", "failed", "cancelled")


def format_line(line: LogLine) -> str:
    prefix = f"[{line['index']}] " if "index" in line else ""
    return prefix + line.get("text", "")


class LogRouter:
    """Subscribes one client to its topic and routes events to the right :class:`CallLog`.

    The scheduler keeps the last events of every topic (``distributed.admin.log-length``,
    10,000 by default) for late subscribers; this router subscribed before its first call,
    so it empties its topic there after every ``trim_lines`` lines: a flood then leaves
    nothing behind in the scheduler (a 200,000-line one left 3.5 MB).
    """

    history = 200  # finished calls kept for `%remote logs`
    trim_lines = 50_000

    def __init__(self, client):
        self.client = client
        self.topic = topic_for(client.id)
        self._active: dict[str, CallLog] = {}
        self._finished: collections.OrderedDict[str, CallLog] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._since_trim = 0
        self._trimming = False
        client.subscribe_topic(self.topic, self._on_event)

    def open(self, call: str, label: str = "") -> CallLog:
        log = CallLog(call, label)
        with self._lock:
            self._active[call] = log
        return log

    def finish(self, log: CallLog, state: str) -> None:
        log.set_state(state)
        if self._since_trim >= 1000 and not self._trimming:  # a big call's tail
            self._trimming = True
            self._since_trim = 0
            self.client.loop.add_callback(self._trim)
        with self._lock:
            self._active.pop(log.call, None)
            self._finished[log.call] = log
            while len(self._finished) > self.history:
                self._finished.popitem(last=False)

    def calls(self) -> list[CallLog]:
        with self._lock:
            return list(self._finished.values()) + list(self._active.values())

    def _on_event(self, event) -> None:
        _, msg = event
        with self._lock:
            call = msg.get("call")
            log = self._active.get(call) or self._finished.get(call)
        if log is not None:
            log.feed(msg)
        packed = msg.get("packed")
        self._since_trim += len(packed["text"]) if packed else len(msg.get("lines") or ())
        if self._since_trim >= self.trim_lines and not self._trimming:
            self._trimming = True  # this runs on the client's event loop
            self._since_trim = 0
            self.client.loop.add_callback(self._trim)

    async def _trim(self) -> None:
        topic = self.topic

        def truncate(dask_scheduler=None) -> None:  # travels by value: no import needed there
            dask_scheduler._broker.truncate(topic)

        try:
            await self.client._run_on_scheduler(truncate)
        except Exception:  # an older or stricter scheduler: the events just stay there
            logging.getLogger(__name__).debug("could not trim %s", topic, exc_info=True)
        finally:
            self._trimming = False

    def close(self) -> None:
        try:
            self.client.unsubscribe_topic(self.topic)
        except Exception:
            pass
