"""How a map's items are cut into batches: read as they go out, sized by what is left.

:class:`Source` reads the items a batch at a time (a ``range`` is cut into smaller ranges;
items a batch did not get to come back first); :class:`Sizer` sizes each batch: what is left,
one batch per worker thread, within :data:`MAX_BATCH` items and about :data:`BATCH_BYTES` of
items (a big array goes alone). Once an item's cost is known (measured by an earlier batch,
or by the function's last map) no batch carries less than :data:`SPLIT_SECONDS` of work: a
second task costs a few milliseconds, more than splitting cheaper work over threads saves.
"""

from __future__ import annotations

import collections
import itertools
import math
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

from jupyter_remote import config
from jupyter_remote.wire.payload import BatchResult

FIRST_BATCH = 10_000  # items in a batch of a map of unknown length, before any has come back
STREAM_BATCH = 100_000  # ... and at most, once the cost of an item is known
MAX_BATCH = 1_000_000  # items in one batch at most (its results are one object)
BATCH_BYTES = 16 * 2**20  # a batch's items weigh about this much at most (big items: one each)
# Work below this per batch goes as one batch. A task more costs a few ms, but the batches
# run side by side: 2 batches pay from about 5 ms of work (x + 1, one process, alternating:
# 100,000 items 16.9 ms against 18.8 in one batch, 150,000 20.0 against 21.9; 80,000 even).
SPLIT_SECONDS = 0.0025

# function -> worker seconds per item, measured by its last map (a hint for the next one)
_costs: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()


def remembered_cost(fn: Any) -> float | None:
    """What an item of ``fn`` cost in its last map (None: never measured, or not weakly
    referable)."""
    try:
        return _costs.get(fn)
    except TypeError:
        return None


def remember_cost(fn: Any, seconds: float) -> None:
    try:
        _costs[fn] = seconds
    except TypeError:  # not weakly referable (a builtin): nothing to remember it by
        pass


class Source:
    """The items of a map, read a batch at a time; items a batch did not get to (it ran out
    of time) come back first."""

    def __init__(self, iterable: Iterable[Any], star: bool):
        self.star = star
        self.total: int | None = None
        self._range: range | None = None
        if isinstance(iterable, range) and not star:
            self._range = iterable
            self.total = len(iterable)
            self._iter: Iterator[Any] = iter(())
        else:
            try:
                self.total = len(iterable)  # type: ignore[arg-type]
            except TypeError:
                self.total = None  # a generator: known once exhausted
            self._iter = iter(iterable)
        self.taken = 0  # items read from the input
        self.exhausted = self.total == 0
        self._back: collections.deque[tuple[int, Any]] = collections.deque()

    @property
    def finished(self) -> bool:
        return self.exhausted and not self._back

    @property
    def left(self) -> int | None:
        """Items not out on the cluster yet (None: not known yet)."""
        if self.total is None:
            return None
        return self.total - self.taken + sum(len(chunk) for _, chunk in self._back)

    def give_back(self, start: int, chunk: Any) -> None:
        """Items that went out but did not run: they go out again, first."""
        self._back.appendleft((start, chunk))

    def take(self, size: int) -> tuple[int, Any]:
        """The next ``size`` items at most and the position of the first."""
        if self._back:
            start, chunk = self._back.popleft()
        else:
            start, chunk = self._read(size)
        if len(chunk) > size:
            self._back.appendleft((start + size, chunk[size:]))
            chunk = chunk[:size]
        return start, chunk

    def _read(self, size: int) -> tuple[int, Any]:
        start = self.taken
        if self._range is not None:
            chunk: Any = self._range[start : start + size]
        else:
            chunk = list(itertools.islice(self._iter, size))
        self.taken += len(chunk)
        if len(chunk) < size or (self.total is not None and self.taken >= self.total):
            self.exhausted = True
            self.total = self.taken
        return start, chunk


class InitItems(Source):
    """The items an ``init`` function made on the cluster: positions only, here; each batch
    takes its slice of them there (``items`` is the future of the list)."""

    def __init__(self, items: Any, total: int):
        super().__init__(range(total), star=False)
        self.items = items


class Sizer:
    """Batch sizes: fixed, or one batch per thread of what is left, within the limits of
    :data:`MAX_BATCH` items and about :data:`BATCH_BYTES` of items. A batch also stops on
    the worker after ``map.batch-seconds`` (the rest comes back and goes out again), so a
    batch of slow items never holds a thread for long."""

    def __init__(self, fixed: int | None, threads: int, fn: Any = None):
        self.fixed = fixed
        self.threads = threads
        self.fn = fn
        self.item_bytes: float | None = None
        # worker time per item: measured by a batch of this map, or by fn's last map
        self.item_seconds: float | None = remembered_cost(fn)
        self.seconds = float(config.get("map.batch-seconds", 0.5) or 0.5)

    def measured(self, result: BatchResult) -> None:
        """Learn what an item costs on the worker from a batch that came back."""
        if result.values:
            self.item_seconds = result.seconds / len(result.values)
            remember_cost(self.fn, self.item_seconds)

    def weigh(self, chunk: Any) -> None:
        """Estimate an item's size from the first items read (a ``range``: nothing)."""
        if self.item_bytes is None and isinstance(chunk, list) and chunk:
            from dask.sizeof import sizeof

            sample = chunk[:16]
            self.item_bytes = max(1.0, sizeof(sample) / len(sample))

    def next(self, remaining: int | None, busy: int = 0) -> int:
        """The size of the next batch, with ``remaining`` items left (None: not known) and
        ``busy`` batches out: what is left is shared by the threads without a batch."""
        if self.fixed:
            return self.fixed
        free = max(1, self.threads - busy)
        if remaining is not None:
            if self.item_seconds is not None:  # cheap work is not worth another task
                free = min(free, max(1, int(remaining * self.item_seconds / SPLIT_SECONDS)))
            size = math.ceil(remaining / free)
        elif self.item_seconds is None:
            size = FIRST_BATCH
        else:  # a generator: as many as take about a batch's time, read as they go out
            size = int(self.seconds / max(self.item_seconds, 1e-9))
            size = max(FIRST_BATCH, min(size, STREAM_BATCH))
        if self.item_bytes is not None:
            size = min(size, int(BATCH_BYTES / self.item_bytes))
        return max(1, min(size, MAX_BATCH))
