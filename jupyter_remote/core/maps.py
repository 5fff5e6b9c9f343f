"""``RemoteFunction.map``/``starmap``: many items in few tasks, at the speed of the wire.

Items are cut into batches as they are read (a generator is never read ahead of what is in
flight; a ``range`` is cut into smaller ranges, so its items are never built here), and at
most ``map.tasks-per-thread`` batches per worker thread are on the cluster at once (lower
priority than other calls, so another call or notebook is never queued behind a long map).
Each batch's results come back as one object (:class:`~jupyter_remote.wire.payload.
BatchResult`) and go into the result list as they arrive.

Batch sizes adapt (unless ``map.batch-size`` or ``batch_size=`` fixes them): what is left goes
out as one batch per worker thread (:mod:`jupyter_remote.core.batches`: a big array goes
alone), and a batch stops on its worker after
``map.batch-seconds`` (default 0.5 s), its remaining items sent again: a map of cheap items
takes one round trip, and a map of slow items is cut into pieces of about half a second,
which balances the workers and never holds a thread long enough to keep other calls
waiting. ``max_parallel``, ``target``, ``post``, ``init`` and ``get=False`` shape a map
further (:class:`Options`; the hooks are in :mod:`jupyter_remote.core.forms`).
"""

from __future__ import annotations

import functools
import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import cloudpickle
import dask

from jupyter_remote import config
from jupyter_remote._compat import when_done
from jupyter_remote.core import calls, lane, views
from jupyter_remote.core.batches import InitItems, Sizer, Source
from jupyter_remote.core.refs import translate
from jupyter_remote.exceptions import RemoteTaskError, RemoteTimeoutError
from jupyter_remote.wire.failures import unpack_exception
from jupyter_remote.wire.payload import BatchResult


@dataclass
class Options:
    """How a map runs (see ``RemoteFunction.map``)."""

    errors: str = "raise"
    timeout: float | None = None
    batch_size: int | None = None
    max_parallel: int | None = None  # items running at once, at most
    target: str | None = None  # a batch's items: None (in turn), threads, async, processes
    post: Callable[[list[Any]], Any] | None = None  # run on the cluster over the results
    get: bool = True  # False: a RemoteRef to the results (or to post's value)
    init: Callable[[], Any] | None = None  # makes the items, on the cluster

    def check(self) -> None:
        check_errors(self.errors)
        if self.batch_size is not None and (not isinstance(self.batch_size, int)
                                            or self.batch_size < 1):
            raise ValueError(f"batch_size must be a positive whole number, got {self.batch_size!r}")
        if self.max_parallel is not None and (not isinstance(self.max_parallel, int)
                                              or self.max_parallel < 1):
            raise ValueError(f"max_parallel must be a positive whole number, got {self.max_parallel!r}")
        if self.target not in (None, "threads", "async", "processes"):
            raise ValueError(f"target must be 'threads', 'async' or 'processes' (or None: one "
                             f"item after another), got {self.target!r}")
        for name in ("post", "init"):
            if getattr(self, name) is not None and not callable(getattr(self, name)):
                raise TypeError(f"{name}= takes a function, got {type(getattr(self, name)).__name__}")

    @property
    def keep(self) -> bool:
        """The batches' results stay on the cluster (for ``post`` or a ref)."""
        return self.post is not None or not self.get


def run(function: Any, iterable: Iterable[Any] | None, *, star: bool, options: Options,
        view: Any) -> Any:
    """Map ``function`` (a ``RemoteFunction``) over ``iterable`` (or over what ``init``
    makes on the cluster); the results in order, or what ``options`` ask for instead."""
    options.check()
    cluster = function.cluster
    views.announce(view, cluster)
    call = calls.Call(cluster, function._label("map"), "map")
    if options.init is not None:
        from jupyter_remote.core import forms

        source: Source = forms.init_source(call, options.init, function)
    else:
        source = Source(iterable if iterable is not None else (), star)
    if source.exhausted and not options.keep:
        call.finish("done")
        return []
    call.log.total = source.total
    runner = _Runner(function, call, source, options, view)
    view.start(call)
    try:
        results = runner.run()
    except BaseException:
        call.finish("failed")
        view.finish(call)
        raise
    if not options.get:
        call.finish_when_done()
    else:
        call.finish("done")
    view.finish(call)
    return results


class _Runner:
    """Keeps a bounded number of batches in flight and collects their results in order."""

    def __init__(self, function: Any, call: calls.Call, source: Source, options: Options,
                 view: Any):
        self.function = function
        self.call = call
        self.source = source
        self.options = options
        self.view = view
        threads = min(_threads(call.cluster), options.max_parallel or 1 << 30)
        configured = config.get("map.batch-size", "auto")
        fixed = options.batch_size or (None if configured in (None, "auto") else max(1, int(configured)))
        self.sizer = Sizer(fixed, threads, function.fn)
        self.in_flight_max = max(1, threads * int(config.get("map.tasks-per-thread", 4) or 4))
        if options.max_parallel:  # a batch runs its items one at a time: N batches, N items
            self.in_flight_max = min(self.in_flight_max, options.max_parallel)
        # a batch cut short on its worker comes back to the notebook; kept results do not
        cut_short = not (options.keep or options.target)
        self.seconds = self.sizer.seconds if cut_short else None
        self.kept: dict[int, Any] = {}  # start -> the batch's future, kept on the cluster
        self.env = function._env()
        self.lane = lane.Lane(call) if lane.suits(function, options, self.env) else None
        self.inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.pending: dict[Any, tuple[int, Any]] = {}  # future -> (start, items)
        self.results: list[Any] = []
        self.arrived: dict[int, BatchResult] = {}  # out of order, waiting for earlier ones
        self.batches = 0
        self.streamed: dict[int, tuple[Any, threading.Event]] = {}  # batch -> (future, sent)
        self.packed: tuple[Any, list[Any]] | None = None  # the next task's payload, if made

    def submit_more(self) -> None:
        while len(self.pending) < self.in_flight_max and not self.source.finished:
            source = self.source
            remaining = source.left
            busy = len(self.pending)
            start, chunk = source.take(self.sizer.next(remaining, busy))
            if not len(chunk):
                continue
            self.sizer.weigh(chunk)
            if len(chunk) > self.sizer.next(remaining, busy):  # heavier items than it seemed
                source.give_back(start, chunk)
                start, chunk = source.take(self.sizer.next(remaining, busy))
            if source.exhausted:
                self.call.log.total = source.total
            spec = {"kind": "batch", "fn": self.function.fn, "args": chunk, "start": start,
                    "star": source.star, "batch": self.batches, "seconds": self.seconds,
                    "target": self.options.target, "stream": not self.options.keep}
            if isinstance(source, InitItems):  # the items are on the cluster: a slice of them
                spec.update(args=source.items, slice=(chunk.start, chunk.stop))
            key = f"remote-map-{self.call.id}-{self.batches}"
            direct = self._send_direct(spec, key)
            if direct is not None:
                self.pending[direct] = (start, chunk)
                self.batches += 1
                continue
            with dask.annotate(priority=-1):  # other calls go first when a thread frees up
                future = self.call.submit(spec, resources=self.function.resources, env=self.env,
                                          key=key, packed=self.packed)
            self.packed = None
            self.batches += 1
            self.pending[future] = (start, chunk)
            if self.options.keep:  # only its end matters here: its value stays there
                when_done(future, lambda f: self.inbox.put((calls.DONE, f, None, None)))
            else:  # its results come on the call's stream, or are fetched if they don't
                sent = threading.Event()
                self.streamed[self.batches - 1] = (future, sent)
                when_done(future, functools.partial(self._fetch_unless_streamed, sent))

    def _send_direct(self, spec: dict[str, Any], key: str) -> lane.Sent | None:
        """Send a batch straight to a worker (:mod:`jupyter_remote.core.lane`), if the map
        may; None: it goes as a task (its payload kept in ``packed``)."""
        address = self.lane.pick() if self.lane is not None else None
        if address is None:
            return None
        assert self.lane is not None
        data, deps = self.call.pack({**spec, "stream": False, "direct": True})
        if deps:  # refs among the items: Dask fetches them, so this map goes as tasks
            self.lane.off = True
            self.packed = self.call.pack(spec)
            return None
        return self.lane.send(address, spec["batch"], data, key, self._answered)

    def _answered(self, sent: lane.Sent, ok: bool | None, value: Any) -> None:
        self.inbox.put((calls.DONE, sent, ok, value))

    def _streamed(self, result: Any) -> None:
        """On the client's loop: a batch's results, sent on the call's stream."""
        if isinstance(result, dict) and result.get("end") and self.lane is not None:
            self.lane.ended(result.get("batch", -1))  # its lines are all here
            return
        if not isinstance(result, dict) or "data" not in result:
            return
        found = self.streamed.pop(result.get("batch", -1), None)
        if found is None or found[1].is_set():
            return
        future, sent = found
        try:
            value = cloudpickle.loads(result["data"])
        except Exception:  # fetched from the worker instead, once the task is done
            return
        sent.set()
        self.inbox.put((calls.DONE, future, True, value))

    def _fetch_unless_streamed(self, sent: threading.Event, future: Any) -> None:
        if not sent.is_set():  # failed, cancelled, or results too big for the stream
            self.call.cluster.client.loop.add_callback(calls.fetch_value, future, future,
                                                       self.inbox, sent)

    def run(self) -> Any:
        options = self.options
        self.call.log.on_result = self._streamed
        self.call.log.listen(lambda _log, lines: self.inbox.put(lines) if lines else None,
                             replay=True)
        deadline = None if options.timeout is None else time.monotonic() + options.timeout
        try:
            self.submit_more()
            while self.pending or not self.source.finished:
                self._one(options.errors, deadline)
                self.submit_more()
            if options.keep:
                from jupyter_remote.core import forms

                return forms.after_map(self.call, self.function,
                                       [self.kept[s] for s in sorted(self.kept)], options,
                                       self.view.on_lines, deadline)
            calls.drain(self.inbox, self.view.on_lines)
        except _Timeout:
            self.call.cancel()
            calls.drain(self.inbox, self.view.on_lines)
            raise RemoteTimeoutError(
                f"{self.call.label} did not finish within {options.timeout:g} s; the remote "
                "work was cancelled. Raise timeout= if it needs longer."
            ) from None
        except BaseException:
            self.call.cancel()
            raise
        return self.results

    def _one(self, errors: str, deadline: float | None) -> None:
        """Wait for the next event: log lines (to the view) or a finished batch."""
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise _Timeout
        try:
            item = self.inbox.get(timeout=left if left is not None else 3600)
        except queue.Empty:
            return
        if not (isinstance(item, tuple) and item and item[0] is calls.DONE):
            self.view.on_lines(item)
            return
        _, future, ok, value = item
        start, chunk = self.pending.pop(future)
        if isinstance(future, lane.Sent):
            ran, value = self._direct_answer(future, start, chunk, ok, value)
            if not ran:
                return
        elif self.options.keep:
            if future.status != "finished":  # its error (or cancellation) is all we fetch
                raise translate(_error_of(future), self.call.label)
            self.kept[start] = future
            return
        else:
            self._forget(future)
        if not ok:
            calls.drain(self.inbox, self.view.on_lines)
            raise translate(value, self.call.label)
        if value.errors and errors == "raise":
            calls.drain(self.inbox, self.view.on_lines)
            raise self._failure(start, value)
        self.sizer.measured(value)
        done = len(value.values)
        if done < len(chunk):  # it ran out of time: the rest goes out again
            self.source.give_back(start + done, chunk[done:])
        self.arrived[start] = value
        self._assemble(errors)

    def _direct_answer(self, sent: lane.Sent, start: int, chunk: Any, ok: bool | None,
                       value: Any) -> tuple[bool, Any]:
        """Take the answer of a batch sent straight to a worker: whether it ran (if not, its
        items and the rest of the map go as tasks) and its results or error."""
        assert self.lane is not None
        self.lane.returned(sent)
        if ok is None:
            self.lane.off = True
            self.source.give_back(start, chunk)
            return False, None
        if ok:  # its progress and worker, as a task's events would carry them
            if isinstance(value, bytes):
                value = cloudpickle.loads(value)
            self.call.log.feed({"call": self.call.id, "state": "running", "batch": sent.batch,
                                "done": len(value.values), "failed": len(value.errors),
                                "worker": sent.address})
        return True, value

    def _forget(self, future: Any) -> None:
        """A batch's data leaves the cluster as soon as it is here."""
        try:
            self.call.futures.remove(future)
        except ValueError:
            pass
        future.release()

    def _assemble(self, errors: str) -> None:
        """Append the batches that are next in order."""
        while len(self.results) in self.arrived:
            start = len(self.results)
            batch = self.arrived.pop(start)
            values = batch.values
            for pos, packed in batch.errors.items():
                values[pos] = unpack_exception(
                    RemoteTaskError(packed), f"{self.function.name}() item {start + pos}")
            self.results.extend(values)

    def _failure(self, start: int, batch: BatchResult) -> BaseException:
        pos = min(batch.errors)
        index = start + pos
        exc = unpack_exception(RemoteTaskError(batch.errors[pos]),
                               f"{self.function.name}() item {index}")
        total = "?" if self.source.total is None else self.source.total  # (a generator's: once read)
        exc.add_note(
            f"item {index} of {total} failed; pass errors='return' to get the other results "
            "with the exceptions in place"
        )
        return exc


class _Timeout(Exception):
    pass


def _error_of(future: Any) -> BaseException:
    try:
        future.result(timeout=30)
    except BaseException as exc:
        return exc
    return RuntimeError(f"{future.key} did not finish")


def _threads(cluster: Any) -> int:
    """The cluster's worker threads, from the list of workers the map also sends its batches
    by (asked at most every 2 s: a scheduler round trip costs as much as a small map)."""
    return sum(n for n, _ in lane.workers_of(cluster).values()) or 1


def any_failed(results: Iterable[Any]) -> bool:
    """Whether any item of a map's ``errors="return"`` results failed (is an exception)."""
    return any(isinstance(r, BaseException) for r in results)


def check_errors(errors: str) -> None:
    if errors not in ("raise", "return"):
        raise ValueError(f"errors must be 'raise' or 'return', got {errors!r}")


def items_of(iterables: tuple[Iterable[Any], ...]) -> tuple[Iterable[Any], bool]:
    """What ``map(*iterables)`` maps over: the one iterable as is, or their ``zip`` as
    argument tuples."""
    if len(iterables) == 1:
        return iterables[0], False
    if not iterables:
        raise TypeError("map() needs at least one iterable")
    return _zipped(iterables), True


def _zipped(iterables: tuple[Iterable[Any], ...]) -> Iterable[Any]:
    try:
        n = min(len(it) for it in iterables)  # type: ignore[arg-type]
    except TypeError:
        return zip(*iterables)
    return list(itertools.islice(zip(*iterables), n))


__all__ = ["Options", "any_failed", "check_errors", "items_of", "run"]
