"""A map's batches sent straight to the workers, past the scheduler: the notebook's side of
:mod:`jupyter_remote.worker.lane`.

A batch sent as a task costs about nine messages through the scheduler; sent here, two (the
batch, its results), which about halves the time of a small map (10,000 items of
``x + 1``: 5-6 ms against 8.5 as tasks, on the 2-core machine; see the README's performance
section).

Which batches (:func:`suits`): those of a map whose results come back here, cut short on
the worker after ``map.batch-seconds`` (no ``post``, ``init``, ``target`` or
``get=False``), without requirements or files, without placement or resources (Dask alone
places those), and whose items hold no refs (Dask must fetch those). ``map.direct: false``
sends every batch as a task. The scheduler does not see these batches; none holds a thread
longer than ``map.batch-seconds``.

Where: the worker with the fewest of the map's batches per thread. When a worker does not
take a batch (gone, paused for memory, its threads held by long items, unreachable from
here, an older jupyter_remote without the handler), that batch and the rest of the map go
as tasks, and a worker that failed (rather than was busy) is not tried again this way for
:data:`RETRY_AFTER` seconds. Nothing is lost: a batch goes again only when it did not run
to its end.
"""

from __future__ import annotations

import collections
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import dask

from jupyter_remote import config
from jupyter_remote._compat import call_worker
from jupyter_remote.worker.lane import HANDLER

CONNECT_TIMEOUT = 2.0  # seconds to reach a worker, after which its batches go as tasks
RETRY_AFTER = 600.0  # seconds before a worker that failed a batch is tried again this way
WORKERS_TTL = 2.0  # seconds the list of workers is trusted (asking costs a round trip)

_failed: dict[str, float] = {}  # worker address -> when it last failed a batch sent here
_workers: weakref.WeakKeyDictionary[Any, tuple[float, dict[str, tuple[int, str]]]] = (
    weakref.WeakKeyDictionary())


def suits(function: Any, options: Any, env: Any) -> bool:
    """Whether the batches of this map may go straight to the workers."""
    if not config.get("map.direct", True):
        return False
    if options.keep or options.target or options.init is not None or env is not None:
        return False
    if function.resources or getattr(function, "workers", None) or getattr(function, "gpu", None):
        return False
    annotations = dask.get_annotations()  # the caller's own `dask.annotate(workers=...)`
    return not any(k in annotations for k in ("workers", "resources", "allow_other_workers"))


class Sent:
    """One batch sent straight to a worker (the map keeps it where it keeps a task's future)."""

    __slots__ = ("address", "batch")

    def __init__(self, address: str, batch: int):
        self.address = address
        self.batch = batch


class Lane:
    """The batches of one map sent straight to workers: where, and how many are out."""

    def __init__(self, call: Any):
        self.call = call
        self.client = call.cluster.client
        self.busy: collections.Counter[str] = collections.Counter()
        self.off = False  # a worker failed a batch: the rest of the map goes as tasks
        self._ended: set[int] = set()  # batches whose last printed line has arrived
        self._held: dict[int, Callable[[], None]] = {}  # ... and those waiting for it
        self._lock = threading.Lock()

    def pick(self) -> str | None:
        """The worker for the next batch (None: send it as a task)."""
        if self.off:
            return None
        now = time.monotonic()
        workers = {a: n for a, (n, status) in workers_of(self.call.cluster).items()
                   if status == "running" and now - _failed.get(a, -RETRY_AFTER) >= RETRY_AFTER}
        if not workers:
            return None
        return min(workers, key=lambda a: (self.busy[a] / workers[a], self.busy[a]))

    def send(self, address: str, batch: int, data: Any, key: str,
             done: Callable[[Sent, bool | None, Any], None]) -> Sent:
        """Send one batch's payload to ``address``; ``done(sent, ok, value)`` is called on
        the client's loop with ``ok`` True (the ``BatchResult`` or its pickle, after the
        batch's last printed line), False (what it raised) or None (not run: send it as a
        task)."""
        from distributed.protocol import to_serialize

        sent = Sent(address, batch)
        self.busy[address] += 1
        # rebound, never changed in place: a Cancel from another thread reads it whole
        self.call.direct = self.call.direct | {address}

        async def go() -> None:
            try:
                answer = await call_worker(
                    self.client, address, HANDLER, CONNECT_TIMEOUT, key=key,
                    data=data if isinstance(data, bytes) else to_serialize(data))
            except Exception as exc:  # gone, unreachable, no such handler
                answer = {"status": "lost", "why": f"{type(exc).__name__}: {exc}"}
            status = answer.get("status") if isinstance(answer, dict) else None
            if status == "done":
                result = answer["result"]
                if answer.get("printed"):
                    self._after_lines(batch, lambda: done(sent, True, result))
                else:
                    done(sent, True, result)
            elif status == "failed":
                done(sent, False, answer["error"])
            else:
                if status != "busy":
                    _failed[address] = time.monotonic()
                done(sent, None, answer)

        self.client.loop.add_callback(go)
        return sent

    def returned(self, sent: Sent) -> None:
        """A batch's answer was taken (in the map's thread)."""
        self.busy[sent.address] -= 1
        if self.busy[sent.address] <= 0:
            del self.busy[sent.address]
            self.call.direct = self.call.direct - {sent.address}

    def ended(self, batch: int) -> None:
        """The mark after a batch's last printed line arrived (on the client's loop)."""
        with self._lock:
            release = self._held.pop(batch, None)
            if release is None:
                self._ended.add(batch)
        if release is not None:
            release()

    def _after_lines(self, batch: int, release: Callable[[], None]) -> None:
        with self._lock:
            if batch not in self._ended:
                self._held[batch] = release
                return
            self._ended.discard(batch)
        release()


def workers_of(cluster: Any) -> dict[str, tuple[int, str]]:
    """The cluster's workers: their threads and status (``running``, ``paused``, ...),
    asked at most every :data:`WORKERS_TTL` seconds (a map sizes its batches by them too)."""
    when, workers = _workers.get(cluster, (0.0, {}))
    if time.monotonic() - when > WORKERS_TTL or not workers:
        info = cluster.client.scheduler_info(n_workers=-1).get("workers", {})
        workers = {a: (int(w.get("nthreads") or 1), str(w.get("status", "running")))
                   for a, w in info.items()}
        _workers[cluster] = (time.monotonic(), workers)
    return workers
