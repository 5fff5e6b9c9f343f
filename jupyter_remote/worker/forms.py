"""The parallel forms of a map on the worker: split arrays, hooks around a map, and how the
items of one batch run (``target``).

- ``cut``: piece ``index`` of ``parts`` of a ref's value along ``axis``, cut where the value
  is (:mod:`jupyter_remote.wire.pieces`); ``piece``: the function called on one piece;
- ``concat``: paste the pieces' results back together along the same axis;
- ``post``: the per-item results of a map's batches, in order, handed to a function;
- ``length``: the number of items of a value (the items an ``init`` function made);
- :func:`run_items`: the items of one batch on a thread pool or an event loop (in a pool
  of processes: :mod:`jupyter_remote.worker.procpool`).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from jupyter_remote.exceptions import RemoteTaskError
from jupyter_remote.wire import pieces
from jupyter_remote.wire.failures import pack_exception
from jupyter_remote.wire.payload import BatchResult
from jupyter_remote.worker import capture, shared


def awaited(value: Any) -> Any:
    """The value of a call: a coroutine (an ``async def`` function's) is run to its end."""
    if inspect.iscoroutine(value):
        return asyncio.run(value)
    return value


def sync(fn: Any) -> Any:
    """``fn`` (an ``async def`` function) as a plain function that runs each call to its end."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(fn(*args, **kwargs))

    return call


# -- split ---------------------------------------------------------------------------------
def run_cut(spec: dict[str, Any]) -> Any:
    """One piece of a ref's value, cut where the value is. A numpy piece is a view: the
    piece that stays on this worker costs no copy, and one that moves is copied once, by
    Dask's serializer, which sends only the view's data (a function gets a view of the ref's
    value, as a plain call gets the value itself). Other pieces are copies."""
    piece = pieces.cut(spec["x"], spec["axis"], spec["index"], spec["parts"])
    if type(piece).__module__ == "numpy" and type(piece).__name__ == "ndarray":
        placed = shared.put(spec["share"], piece) if spec.get("share") else None
        return piece if placed is None else placed  # (for a worker of this host)
    copy = getattr(piece, "copy", None)
    return copy() if callable(copy) else piece


def run_piece(spec: dict[str, Any]) -> Any:
    """The function on one piece. Its result goes into the call's shared output when the
    split shares one (:mod:`jupyter_remote.worker.shared`) and it fits there; else it is
    the task's value, pasted by copy."""
    x = spec["x"]
    value = awaited(spec["fn"](shared.take(x) if isinstance(x, shared.Placed) else x))
    share = spec.get("share")
    if share is None:
        return value
    start, stop = pieces.bounds(share["total"], share["index"], share["parts"])
    written = shared.write(share["name"], value, share["axis"], start, stop, share["total"])
    return value if written is None else written


def run_concat(spec: dict[str, Any]) -> Any:
    parts = list(spec["pieces"])
    try:
        if any(isinstance(part, shared.Written) for part in parts):
            return shared.whole(parts)
        return pieces.concat(parts, spec["axis"])
    finally:
        if spec.get("share"):  # the pieces put in shared memory, and the output's file
            shared.discard(spec["share"], len(parts))


# -- hooks around a map --------------------------------------------------------------------
def results_of(batches: list[BatchResult], errors: str) -> list[Any]:
    """The per-item results of a map's batches, in order; failures in place (``errors=
    "return"``) or the first one raised."""
    from jupyter_remote.wire.failures import unpack_exception

    out: list[Any] = []
    for batch in batches:
        values = list(batch.values)
        for pos in sorted(batch.errors):
            if errors == "raise":
                raise RemoteTaskError(batch.errors[pos], f"item {len(out) + pos} failed")
            values[pos] = unpack_exception(RemoteTaskError(batch.errors[pos]),
                                           f"item {len(out) + pos}")
        out.extend(values)
    return out


def run_post(spec: dict[str, Any]) -> Any:
    return awaited(spec["post"](results_of(list(spec["batches"]), spec["errors"])))


def run_length(spec: dict[str, Any]) -> int:
    if "axis" in spec:
        return pieces.length_along(spec["x"], spec["axis"])
    return len(spec["x"])


# -- how the items of one batch run --------------------------------------------------------
def run_items(fn: Any, args: Any, star: bool, start: int, target: str,
              sink: capture.Sink) -> tuple[list[Any], dict[int, bytes]]:
    """The items of one batch, concurrently: on a thread pool (``threads``) or as
    coroutines on one event loop (``async``). Each item's lines carry its index."""
    n = len(args)
    values: list[Any] = [None] * n
    errors: dict[int, bytes] = {}

    def one(pos: int) -> Any:
        capture.item_index.set(start + pos)
        return fn(*args[pos]) if star else fn(args[pos])

    def keep(pos: int, outcome: Any, failure: BaseException | None) -> None:
        if failure is None:
            values[pos] = outcome
        else:
            errors[pos] = pack_exception(failure).args[0]

    if target == "threads":
        def in_thread(pos: int) -> None:
            with capture.capture(sink, close=False):
                try:
                    keep(pos, awaited(one(pos)), None)
                except Exception as exc:
                    keep(pos, None, exc)

        with ThreadPoolExecutor(max_workers=min(32, max(1, n))) as pool:
            list(pool.map(lambda pos: contextvars.copy_context().run(in_thread, pos), range(n)))
    elif target == "async":
        async def all_items() -> None:
            async def item(pos: int) -> None:
                try:
                    keep(pos, await one(pos), None)
                except Exception as exc:
                    keep(pos, None, exc)

            await asyncio.gather(*(item(pos) for pos in range(n)))

        asyncio.run(all_items())
    else:
        raise ValueError(f"target must be 'threads', 'async' or None, got {target!r}")
    return values, errors
