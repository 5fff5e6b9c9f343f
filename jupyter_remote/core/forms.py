"""The parallel forms beside a plain map, in the notebook: split arrays, and the hooks around a
map (``init`` makes the items on the cluster, ``post`` reduces the results there).

They are forms of the same call machinery as every call (one :class:`~jupyter_remote.core.
calls.Call`, payload kinds run by :mod:`jupyter_remote.worker.forms`): logs, Cancel,
timeouts, errors and the status view behave as for any call.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable
from typing import Any

import dask

from jupyter_remote._compat import when_done
from jupyter_remote.core import calls, views
from jupyter_remote.core.refs import RemoteRef
from jupyter_remote.wire import pieces
from jupyter_remote.wire.events import LogLine
from jupyter_remote.wire.payload import as_future


# -- hooks around a map --------------------------------------------------------------------
def init_source(call: calls.Call, init: Callable[[], Any], function: Any) -> Any:
    """Run ``init()`` on the cluster; the items it made, as a source of a map (only their
    number comes here)."""
    from jupyter_remote.core.batches import InitItems

    items = call.submit({"kind": "call", "fn": _listed(init), "args": (), "kwargs": {}},
                        resources=function.resources, env=function._env(),
                        key=f"remote-map-{call.id}-init")
    length = call.submit({"kind": "length", "x": items}, key=f"remote-map-{call.id}-length")
    [total] = calls.wait(call, [], fetch=[length])
    call.futures.remove(length)
    length.release()
    return InitItems(items, int(total))


def _listed(init: Callable[[], Any]) -> Callable[[], list[Any]]:
    def items() -> list[Any]:
        return list(init())

    return items


def after_map(call: calls.Call, function: Any, batches: list[Any], options: Any,
              on_lines: Callable[[list[LogLine]], None], deadline: float | None) -> Any:
    """The results of a map whose batches stayed on the cluster: ``post`` (or ``list``)
    over them, run there; its value, or a ref to it (``get=False``)."""
    post = call.submit({"kind": "post", "post": options.post or list, "batches": batches,
                        "errors": options.errors}, key=f"remote-map-{call.id}-post")
    for batch in batches:  # the post task holds them now
        call.futures.remove(batch)
        batch.release()
    if not options.get:
        return RemoteRef(post, call.cluster, name=f"{function.name}.map(...)", call=call)
    left = None if deadline is None else max(0.001, deadline - time.monotonic())
    [value] = calls.wait(call, [], fetch=[post], timeout=left, on_lines=on_lines)
    call.futures.remove(post)
    post.release()
    return value


# -- split ---------------------------------------------------------------------------------
# A smaller split pastes by copy: its copies cost less than the shared output's few ms.
SHARED_BYTES = 4 * 2**20

def split(function: Any, x: Any, *, axis: int = -1, parts: int | None = None, get: bool = True,
          max_parallel: int | None = None, timeout: float | None = None, view: Any) -> Any:
    """``function`` over ``parts`` contiguous pieces of ``x`` along ``axis``, pasted back in
    order (see ``RemoteFunction.split``)."""
    remote = as_future(x) is not None
    if not remote:
        pieces.length_along(x, axis)  # a clear error now for what cannot be split
    cluster = function.cluster
    parts = cluster.total_threads() if parts is None else parts
    if not isinstance(parts, int) or parts < 1:
        raise ValueError(f"parts must be a positive whole number, got {parts!r}")
    if not remote:
        parts = max(1, min(parts, pieces.length_along(x, axis)))
    views.announce(view, cluster)
    call = calls.Call(cluster, function._label("split"), "split")
    view.start(call)
    try:
        value = _split(call, function, x, axis, parts, remote, get, max_parallel, timeout, view)
    except BaseException:
        call.finish("failed")
        view.finish(call)
        raise
    if get:
        call.finish("done")
    else:
        call.finish_when_done()
    view.finish(call)
    return value


def _split(call: calls.Call, function: Any, x: Any, axis: int, parts: int, remote: bool,
           get: bool, max_parallel: int | None, timeout: float | None, view: Any) -> Any:
    deadline = None if timeout is None else time.monotonic() + timeout
    workers = functools.cache(lambda: call.cluster.client.scheduler_info(n_workers=-1)["workers"])
    homes = _homes(call.cluster, parts, as_future(x) if remote else None, function, workers)
    share = _shared_output(call, x, axis, parts, remote, workers)
    cuts = _cuts(call, x, axis, parts, homes, share) if remote else []
    env = function._env()
    results: list[Any] = []
    try:
        for index in range(parts):
            if max_parallel and index >= max_parallel:  # at most N pieces run at once
                calls.wait(call, [results[index - max_parallel]],
                           timeout=_left(call, deadline), on_lines=view.on_lines)
            piece = cuts[index] if remote else _sent(call, pieces.cut(x, axis, index, parts),
                                                     homes, index)
            spec = {"kind": "piece", "fn": function.fn, "x": piece}
            if share is not None:
                spec["share"] = dict(share, index=index)
            with _placed_on(homes[index] if homes else None):
                results.append(call.submit(spec, resources=function.resources, env=env,
                                           key=f"remote-split-{call.id}-{index}"))
        whole = call.submit({"kind": "concat", "pieces": results, "axis": axis,
                             "share": share and share["name"]},
                            key=f"remote-split-{call.id}-concat")
        if share is not None:  # a split that fails or is cancelled later (a ref's) too
            when_done(whole, functools.partial(_discard_unless_done, call, share["name"]))
        if not get:
            return RemoteRef(whole, call.cluster, name=f"{function.name}.split(...)",
                             call=call)
        [value] = calls.wait(call, [], fetch=[whole], timeout=_left(call, deadline),
                             on_lines=view.on_lines)
    except BaseException:
        if share is not None:
            _discard(call, share["name"])
        raise
    return value


def _shared_output(call: calls.Call, x: Any, axis: int, parts: int, remote: bool,
                   workers: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
    """How the pieces write their results into one shared output (see :mod:`jupyter_remote.
    worker.shared`), or ``None`` to paste by copy: only when every worker of the cluster is
    on one host (the same ``/dev/shm``), for values that may be numpy arrays of at least
    :data:`SHARED_BYTES` (a ref of unknown size included). A ref's length along ``axis`` is
    measured where it is, by a task the pieces depend on."""
    from jupyter_remote import config

    if parts < 2 or not config.get("split.shared-memory", True):
        return None
    nbytes = x.info.get("nbytes") if remote and isinstance(x, RemoteRef) else getattr(
        x, "nbytes", None)
    if isinstance(nbytes, int) and nbytes < SHARED_BYTES:
        return None
    if not _one_dev_shm(call.cluster.client, workers()):
        return None
    if remote:
        with dask.annotate(priority=1):
            total = call.submit({"kind": "length", "x": x, "axis": axis},
                                key=f"remote-split-{call.id}-length")
    elif type(x).__module__ == "numpy":
        total = pieces.length_along(x, axis)
    else:
        return None
    return {"name": call.id, "axis": axis, "parts": parts, "total": total}


_SAME_SHM: dict[tuple[str, tuple[str, ...]], bool] = {}  # per scheduler and set of workers


def _one_dev_shm(client: Any, workers: dict[str, Any]) -> bool:
    """Whether the cluster's workers all see one ``/dev/shm``: one host address, then asked
    once per set of workers (``docker --network host`` shares the address, not the
    memory)."""
    from jupyter_remote.worker import shared

    if len({info.get("host") for info in workers.values()}) != 1:
        return False
    key = (str(client.scheduler.address), tuple(sorted(workers)))
    if key not in _SAME_SHM:
        try:
            seen = client.run(shared.identity, workers=list(workers))
        except Exception:  # a worker went away meanwhile: no sharing this time
            return False
        _SAME_SHM[key] = len({tuple(found) for found in seen.values()}) == 1
    return _SAME_SHM[key]


def _discard_unless_done(call: calls.Call, name: str, future: Any) -> None:
    if future.status != "finished":
        _discard(call, name)


def _discard(call: calls.Call, name: str) -> None:
    """Unlink a failed split's shared output, on every worker (any of them on the host
    reaches it; each also stops its late pieces from writing there). In a thread of its
    own, so a lost cluster never holds the cell (or Dask's one callback thread) up; best
    effort: a worker unlinks what it made when it closes."""
    from jupyter_remote.worker import shared

    def run() -> None:
        with contextlib.suppress(Exception):
            call.cluster.client.run(shared.discard, name)

    threading.Thread(target=run, name=f"jupyter-remote-discard-{name}", daemon=True).start()


def _cuts(call: calls.Call, x: Any, axis: int, parts: int, homes: list[str] | None,
          share: dict[str, Any] | None) -> list[Any]:
    """The pieces of a ref's value, cut where the value is (the piece, not the whole, goes
    to its worker). All cuts go first and before any piece's work: they run on the worker
    holding the value, and a cut queued behind a piece's work there would hold every other
    worker's piece back until that work is done. With a shared output, a piece for another
    worker (``homes[0]`` is the holder's) goes through shared memory too."""
    specs = [{"kind": "cut", "x": x, "axis": axis, "index": index, "parts": parts}
             for index in range(parts)]
    if share is not None and homes:
        for index, spec in enumerate(specs):
            if homes[index] != homes[0]:
                spec["share"] = f"{share['name']}-in-{index}"
    with dask.annotate(priority=1):
        return [call.submit(spec, key=f"remote-split-{call.id}-cut-{index}")
                for index, spec in enumerate(specs)]


def _homes(cluster: Any, parts: int, holder: Any, function: Any,
           workers: Callable[[], dict[str, Any]]) -> list[str] | None:
    """A worker for each piece: the worker threads in turn, those of the worker holding
    ``x`` (a ref's future) first, so its share of the pieces never moves. Left to Dask when
    the call is placed otherwise (``workers=``, resources, ``gpu=``).

    Without this, Dask runs every piece of a ref where the ref is: the cut pieces are there,
    and moving one looks dearer than waiting for that worker.
    """
    if function.resources or dask.get_annotations().get("workers"):
        return None
    client = cluster.client
    listed = workers()
    first = set(client.who_has([holder]).get(holder.key, ())) if holder is not None else set()
    slots = [address for address in sorted(listed, key=lambda a: (a not in first, a))
             for _ in range(max(1, int(listed[address].get("nthreads", 1))))]
    if len(slots) < 2:
        return None
    return [slots[index * len(slots) // parts] for index in range(parts)]


def _sent(call: calls.Call, piece: Any, homes: list[str] | None, index: int) -> Any:
    """A big piece of a local value, sent straight to its worker (as ``share_large`` sends a
    call's big arguments), not inside its task through the scheduler; a small one as is."""
    from dask.sizeof import sizeof

    from jupyter_remote.core import share

    limit = share.threshold()
    if limit is None or sizeof(piece) <= limit:
        return piece
    key = f"remote-split-{call.id}-in-{index}"
    workers = [homes[index]] if homes else None
    [future] = call.cluster.client.scatter({key: piece}, workers=workers, hash=False).values()
    call.futures.append(future)  # released with the call (and cancelled with it)
    return future


def _placed_on(worker: str | None) -> Any:
    """Submissions inside prefer ``worker`` (any other may run them if it is gone)."""
    if worker is None:
        return contextlib.nullcontext()
    return dask.annotate(workers=[worker], allow_other_workers=True)


def _left(call: calls.Call, deadline: float | None) -> float | None:
    if deadline is None:
        return None
    return max(0.001, deadline - time.monotonic())
