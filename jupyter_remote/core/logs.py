"""The log stream of remote calls, on the notebook's side: routing and keeping.

One :class:`LogRouter` per client subscribes to its own topic (events go only to the client
that made the call, see :mod:`jupyter_remote.wire.events`) and hands each event to the
:class:`CallLog` of its call. A ``CallLog`` keeps the whole log (packed, :class:`LogLines`)
and tells its listeners (the views) about new lines and state changes; views only draw.
All logs share one memory budget (:mod:`jupyter_remote.core.spill`): past it, their oldest
lines live in files, still read back by replays, and the cell says so once.
The worker's half, which captures and sends, is :mod:`jupyter_remote.worker.capture`.
"""

from __future__ import annotations

import array
import bisect
import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, overload

from jupyter_remote import on_scheduler
from jupyter_remote._compat import run_on_scheduler_async
from jupyter_remote.core import spill
from jupyter_remote.wire.events import LogEvent, LogLine, PackedLines, pack, topic_for, unpack

logger = logging.getLogger(__name__)


class LogLines(Sequence[LogLine]):
    """A call's whole log, kept packed (a 200,000-line flood costs the kernel about a
    quarter of what as many ``LogLine`` dicts would); reads as a sequence of ``LogLine``.

    Appends come from one thread at a time (under the ``CallLog``'s lock); reads from any
    thread see a consistent prefix. Chunks spilled to disk by the budget (the oldest first)
    are ``(offset, length, n)`` tuples in ``_chunks``, read back when a read reaches them.
    """

    def __init__(self, lines: list[LogLine] | None = None, name: str = "log"):
        self._starts: list[int] = []
        self._chunks: list[PackedLines | tuple[int, int, int]] = []
        self._sizes: list[int] = []  # bytes of each chunk in memory (0 once spilled)
        self._n = 0
        self._name = name
        self._file: spill.SpillFile | None = None
        self._spill_lock = threading.Lock()
        self.held = [0]  # bytes in memory, shared with the budget
        self.spilled = 0  # lines moved to disk
        spill.BUDGET.track(self)
        if lines:
            self.extend(lines)

    def append_packed(self, packed: PackedLines) -> None:
        n = len(packed["text"])
        if not n:
            return
        packed = {**packed, "dt": array.array("q", packed["dt"])}  # type: ignore[typeddict-item]
        size = spill.chunk_bytes(packed)
        with self._spill_lock:
            self._starts.append(self._n)
            self._chunks.append(packed)
            self._sizes.append(size)
            self._n += n  # last: readers only look at lines below it
        spill.BUDGET.add(self, size)

    def spill_oldest(self, nbytes: int) -> int:
        """Move the oldest in-memory chunks (never the newest) to disk until ``nbytes`` are
        freed; the bytes freed."""
        freed = 0
        with self._spill_lock:
            for c in range(len(self._chunks) - 1):
                if freed >= nbytes:
                    break
                chunk = self._chunks[c]
                if isinstance(chunk, tuple):
                    continue
                if self._file is None:
                    self._file = spill.SpillFile(self, self._name)
                offset, length = self._file.write(chunk)
                self._chunks[c] = (offset, length, len(chunk["text"]))
                freed += self._sizes[c]
                self.held[0] -= self._sizes[c]
                self._sizes[c] = 0
                self.spilled += len(chunk["text"])
        return freed

    def _chunk(self, c: int) -> PackedLines:
        chunk = self._chunks[c]
        if isinstance(chunk, tuple):
            assert self._file is not None
            return self._file.read(chunk[0], chunk[1])
        return chunk

    def extend(self, lines: Iterable[LogLine]) -> None:
        lines = list(lines)
        if lines:
            self.append_packed(pack(lines))

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> LogLine: ...
    @overload
    def __getitem__(self, i: slice) -> list[LogLine]: ...
    def __getitem__(self, i: int | slice) -> LogLine | list[LogLine]:
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
            base, chunk = self._starts[c], self._chunk(c)
            end = min(len(chunk["text"]), stop - base)
            out.extend(unpack(chunk, start - base, end))
            start = base + end
            c += 1
        return out

    def __iter__(self) -> Iterator[LogLine]:
        n = self._n
        for c, base in enumerate(list(self._starts)):
            if base >= n:
                return
            chunk = self._chunk(c)
            yield from unpack(chunk, 0, min(len(chunk["text"]), n - base))

    def __repr__(self) -> str:
        return f"<LogLines {self._n} lines>"


Listener = Callable[["CallLog", list[LogLine]], None]


class CallLog:
    """Everything one remote call wrote, plus its state; the data source of the views."""

    def __init__(self, call: str, label: str = ""):
        self.call = call
        self.label = label
        self.lines = LogLines(name=call)
        self.state = "queued"
        self.worker: str | None = None
        self.started = time.time()
        self.finished: float | None = None
        self.total: int | None = None  # items of a map
        self.batches: dict[int, tuple[int, int]] = {}  # map batch -> (done, failed)
        self.cancel: Callable[[], str] | None = None  # set by the call: stops it
        self.result: Any = None  # a small result sent on the stream (a cell's description)
        # a map's batch results sent on the stream go here instead (not kept in the log)
        self.on_result: Callable[[Any], None] | None = None
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._told_spill = False
        self.one_task = False  # a cell or a call (not a map): set by its Call
        self.attempt = 1  # a task rerun after its worker was lost is attempt 2, 3, ...

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
            if self._another_attempt(event.get("worker")):
                note = self._attempt_note(event["worker"])
                self.lines.extend([note])
                lines = [note, *lines]  # before what the new attempt prints again
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
            on_result = self.on_result if "result" in event else None
            if "result" in event and on_result is None:
                self.result = event["result"]
            if "batch" in event:
                self.batches[event["batch"]] = (event.get("done", 0), event.get("failed", 0))
            if self.lines.spilled and not self._told_spill:
                lines = [*lines, self._spill_note()]
                self.lines.extend(lines[-1:])
            listeners = list(self._listeners)
        if on_result is not None:
            on_result(event["result"])
        for listener in listeners:
            try:
                listener(self, lines)
            except Exception:  # a broken view must not break the stream
                logger.exception("log listener failed")

    def _another_attempt(self, worker: str | None) -> bool:
        """Did the one task of this call start again on another worker (its worker lost)?"""
        return bool(worker and self.one_task and self.worker and worker != self.worker
                    and self.state not in FINAL_STATES)

    def _attempt_note(self, worker: str) -> LogLine:
        """The line that marks the output of a new attempt, after its worker was lost."""
        import dask

        self.attempt += 1
        most = int(dask.config.get("distributed.scheduler.allowed-failures", 3)) + 1
        return {"stream": "log", "t": time.time(), "text": (
            f"— worker {self.worker} was lost; attempt {self.attempt} of {most} on {worker}: "
            "the output below starts again from the top —\n")}

    def _spill_note(self) -> LogLine:
        """The line that tells the cell its log outgrew the kernel's memory budget."""
        self._told_spill = True
        return {"stream": "log", "t": time.time(), "text": (
            f"— the kernel keeps at most jupyter-remote.logs.max-bytes of log lines in memory; "
            f"earlier lines of this call are on disk: `%remote logs {self.call}` replays them "
            "all —\n")}

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

    def __init__(self, client: Any):
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

    def _on_event(self, event: tuple[float, LogEvent]) -> None:
        _, msg = event
        with self._lock:
            call = msg.get("call") or ""
            log = self._active.get(call) or self._finished.get(call)
        if log is not None:
            log.feed(msg)
        packed = msg.get("packed")
        self._since_trim += len(packed["text"]) if packed else len(msg.get("lines") or ())
        result = msg.get("result")
        if isinstance(result, dict):  # a map batch's results, a call's value: bytes held
            blob = result.get("data") or result.get("value")
            if isinstance(blob, bytes):
                self._since_trim += len(blob) // 64
        if self._since_trim >= self.trim_lines and not self._trimming:
            self._trimming = True  # this runs on the client's event loop
            self._since_trim = 0
            self.client.loop.add_callback(self._trim)

    async def _trim(self) -> None:
        try:
            await run_on_scheduler_async(self.client, on_scheduler.truncate_topic, self.topic)
        except Exception:  # an older or stricter scheduler: the events just stay there
            logger.debug("could not trim %s", self.topic, exc_info=True)
        finally:
            self._trimming = False

    def close(self) -> None:
        try:
            self.client.unsubscribe_topic(self.topic)
        except Exception:
            pass
