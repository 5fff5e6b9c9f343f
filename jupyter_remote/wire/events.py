"""The log events of a remote call, as the worker sends them and the notebook reads them.

A worker publishes a call's output with ``Worker.log_event`` on the topic of the client that
made the call (:func:`topic_for`); each event is a :class:`LogEvent`. Lines travel packed
(:class:`PackedLines`): a flood costs the scheduler and the client per object, so many lines
go as a few lists.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

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
    runs: list[list[Any]]


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
    """Many lines as one :class:`PackedLines`."""
    t0 = lines[0].get("t", 0.0) if lines else 0.0
    runs: list[list[Any]] = []
    key: tuple[Any, ...] | None = None
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


def topic_for(client_id: str) -> str:
    """The event topic of one client: only that client subscribes to it."""
    return f"jupyter-remote-logs-{client_id}"
