"""The kernel's memory budget for log lines, and the files the overflow is spilled to.

Every call's log is kept whole (``%remote logs CALL`` replays it), and a 200,000-line flood
holds tens of MB: kept in memory for each of the last 200 calls, logs alone could take
gigabytes. So all logs of this process share one :class:`Budget` of bytes
(``jupyter-remote.logs.max-bytes``, 64 MB): past it, the oldest chunks of the biggest log
held are written to that log's :class:`SpillFile` (one JSON record per chunk, in a private
folder of this process) and dropped from memory. Reading them back is by chunk, so a view's
tail never touches the disk and a replay reads each chunk once. A spill file goes when its
log is dropped, and the folder when the process exits.
"""

from __future__ import annotations

import array
import atexit
import json
import os
import shutil
import tempfile
import threading
import weakref
from typing import Any, Protocol

import dask.utils

from jupyter_remote import config
from jupyter_remote.wire.events import PackedLines

LINE_OVERHEAD = 64  # bytes a kept line costs beyond its text (str header, list slot, dt)
_folder: str | None = None
_folder_lock = threading.Lock()


def chunk_bytes(packed: PackedLines) -> int:
    """About what ``packed`` costs in memory."""
    return sum(len(t) for t in packed["text"]) + LINE_OVERHEAD * len(packed["text"])


class Spillable(Protocol):
    """What the budget asks of a log it may spill (``LogLines``)."""

    held: list[int]  # [bytes in memory], a box shared with the budget's finalizer

    def spill_oldest(self, nbytes: int) -> int:
        """Move at least ``nbytes`` of the oldest in-memory lines to disk; bytes freed."""
        ...


class Budget:
    """Bytes of log lines held in memory by every log of this process, against the cap."""

    def __init__(self) -> None:
        self.held = 0
        self._logs: weakref.WeakSet[Any] = weakref.WeakSet()
        self._lock = threading.Lock()

    @staticmethod
    def cap() -> int:
        return int(dask.utils.parse_bytes(config.get("logs.max-bytes", "64MB")))

    def track(self, log: Spillable) -> None:
        """Count ``log`` from now on; its bytes are given back when it is dropped."""
        with self._lock:
            self._logs.add(log)
        weakref.finalize(log, self._release, log.held)

    def _release(self, box: list[int]) -> None:
        with self._lock:
            self.held -= box[0]
            box[0] = 0

    def add(self, log: Spillable, nbytes: int) -> None:
        """``log`` keeps ``nbytes`` more; spill the biggest logs while over the cap."""
        with self._lock:
            log.held[0] += nbytes
            self.held += nbytes
            over = self.held - self.cap()
            if over <= 0:
                return
            logs = sorted(self._logs, key=lambda x: x.held[0], reverse=True)
        for victim in logs:  # outside the budget's lock: spilling writes files
            if over <= 0:
                break
            freed = victim.spill_oldest(over)
            with self._lock:
                self.held -= freed
                over -= freed


BUDGET = Budget()


class SpillFile:
    """Chunks of one log on disk: ``write`` returns where a chunk went, ``read`` brings it
    back. Removed when its log is dropped."""

    def __init__(self, owner: object, name: str) -> None:
        self.path = os.path.join(_spill_folder(), f"{name}-{id(owner):x}.jsonl")
        self._lock = threading.Lock()
        weakref.finalize(owner, _remove, self.path)

    def write(self, packed: PackedLines) -> tuple[int, int]:
        record = json.dumps({**packed, "dt": list(packed["dt"])}).encode() + b"\n"
        with self._lock, open(self.path, "ab") as f:
            offset = f.seek(0, os.SEEK_END)
            f.write(record)
        return offset, len(record)

    def read(self, offset: int, length: int) -> PackedLines:
        with self._lock, open(self.path, "rb") as f:
            f.seek(offset)
            packed: PackedLines = json.loads(f.read(length))
        packed["dt"] = array.array("q", packed["dt"])  # type: ignore[typeddict-item]
        return packed


def _spill_folder() -> str:
    global _folder
    with _folder_lock:
        if _folder is None:
            _folder = tempfile.mkdtemp(prefix=f"jupyter-remote-logs-{os.getpid()}-")
            atexit.register(shutil.rmtree, _folder, ignore_errors=True)
        return _folder


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
