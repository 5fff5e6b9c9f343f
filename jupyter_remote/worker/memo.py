"""Memoized calls and cells on the worker: answer from the result store, or run and store.

The notebook computes the key (a digest of code, requirements and inputs:
:mod:`jupyter_remote.core.digest`) and submits ``run(payload, info, *dependencies)`` in place
of :func:`jupyter_remote.worker.runner.run`. Here, on a worker:

- a hit loads the value from the store and returns it as this task's result, so the
  notebook's ``RemoteRef`` is an ordinary Dask key holding it, and the value never passes
  through the notebook; the user's code does not run;
- a miss runs the payload as usual and then stores the result; a failure raises before
  anything is stored, so failures are never kept;
- a cell's values are handed to its ``take`` tasks as if it had run here (:mod:`.state`),
  and its description (names, types, trailing display) is stored with them;
- a value that cannot be pickled (a lock, an open file) is returned but not stored;
- a cell that ran in a requirements environment keeps its values in that environment's
  process: they are stored as the bytes that process pickles, and a hit hands them to the
  cell's takes as ``Opaque`` values, opened by the next call in that environment (or by the
  notebook on download), as a function's value made there is.

An entry's body opens with one byte saying what follows: ``P`` a value pickled here, ``O``
the bytes of a value made in a requirements environment (returned as ``Opaque``, so this
process never opens what it may lack the packages for), ``C`` a cell's record.
"""

from __future__ import annotations

import pickle
from typing import Any

import cloudpickle

from jupyter_remote.wire import payload
from jupyter_remote.worker import context, runner, state
from jupyter_remote.worker.store import Store, open_store


def run(data: bytes, info: dict[str, Any], *dependencies: Any) -> Any:
    """A memoized call or cell (``info``: ``store``, ``key``, ``kind``, ``call``, ``meta``)."""
    store = open_store(info["store"])
    body = _get(store, info["key"])
    if body is not None:
        found, value = _hit(body, info)
        if found:
            return value
    result = runner.run(data, *dependencies)  # a failure raises here: nothing is stored
    try:
        store.put(info["key"], _entry(result, info), dict(info.get("meta") or {}))
    except Exception:  # unpicklable, or the store is unreachable: the result still counts
        pass
    return result


def _get(store: Store, key: str) -> bytes | None:
    try:
        return store.get(key)
    except Exception:  # an unreachable store is a miss: the call runs
        return None


def _hit(body: bytes, info: dict[str, Any]) -> tuple[bool, Any]:
    tag, rest = body[:1], body[1:]
    try:
        if tag == b"P" and info["kind"] == "call":
            return True, cloudpickle.loads(rest)
        if tag == b"O" and info["kind"] == "call":
            return True, payload.Opaque(rest)
        if tag == b"C" and info["kind"] == "cell":
            return True, _cell_hit(pickle.loads(rest), info)
    except Exception:  # written by an incompatible version, or a class gone: a miss
        return False, None
    return False, None


def _cell_hit(record: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = dict(record["meta"])
    meta["worker"] = context.worker_address()
    opened = payload.Opaque if record.get("opaque") else cloudpickle.loads
    values = {name: opened(blob) for name, blob in record["values"].items()}
    if "values" in meta:  # a --get cell: the values travel in the description
        meta["values"] = values
    else:
        state.keep(info["call"], {n: values.get(n, state.UNBOUND) for n in info["outputs"]})
    return meta


def _entry(result: Any, info: dict[str, Any]) -> bytes:
    if info["kind"] == "call":
        if type(result) is payload.Opaque:
            return b"O" + bytes(result.data)
        return b"P" + bytes(cloudpickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    holder = state.holder_of(info["call"])
    opaque = False
    if holder is not None and "values" not in result:
        # the values wait in an environment's process: it pickles them, they stay there
        blobs, opaque = holder.pickled(info["call"]), True
    else:
        values = dict(result["values"]) if "values" in result else state.peek(info["call"])
        blobs = {n: cloudpickle.dumps(v, protocol=pickle.HIGHEST_PROTOCOL)
                 for n, v in values.items()}
    meta = {k: v for k, v in result.items() if k != "worker"}
    meta["reused"] = info["call"]  # what a hit says it reused
    if "values" in meta:
        meta["values"] = {}
    record = {"meta": meta, "values": blobs, "opaque": opaque}
    return b"C" + pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)


def listing(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The store's entries, least recently used first (for ``%remote cache``)."""
    return open_store(spec).list()


def clear(spec: dict[str, Any], kinds: tuple[str, ...] = ("function", "cell")) -> int:
    """Remove the store's memoized entries (saved functions stay); how many."""
    store = open_store(spec)
    gone = 0
    for record in store.list():
        if record.get("kind") in kinds:
            gone += store.delete(str(record["key"]))
    return gone
