"""Memoization that outlives the kernel: ``function(fn, cache=True)`` and ``%%remote --cache``.

The notebook only computes keys and submits; the workers read and write the result store
(:mod:`jupyter_remote.worker.store`, at ``jupyter-remote.store.url``), so a stored value never
passes through the notebook and the notebook needs no credentials for the store. The URL,
cap and options are read here, at each call, and travel with it (as ``pip-options`` do).

A key is a digest (:mod:`jupyter_remote.core.digest`) of

- the code: a function's source and the code and values of the globals it uses, or a
  cell's source (not its file name, which holds the execution count);
- the requirements: the environment's hash (which covers wheel contents and pip options);
- the inputs by content; a ``RemoteRef`` by its key, which for a value that came from the
  store or from ``share`` is itself a content digest;
- for a cell, also its ``--out`` names and ``--get``. Resources and timeouts are not part
  of it: they change where and how long, not what.

So an identical call from another kernel, with another cluster, hits as long as both use the
same store; a change of code or of an input misses. A memoized call's Dask key is
``remote-memo-<store key>-<call id>``: unique per call (a Dask key reused soon after a failure
could be answered by the failed task still on the scheduler), and as an input to later work
it counts by its store key alone (:mod:`.digest`), so a chain of memoized calls hits
end to end in another kernel.
"""

from __future__ import annotations

import time
from typing import Any

from jupyter_remote import config
from jupyter_remote.core import calls, digest
from jupyter_remote.worker import memo as worker_memo


def store_spec() -> dict[str, Any]:
    """Where the workers keep results: read in the notebook now, sent with the call."""
    url = config.get("store.url") or "~/.cache/jupyter_remote/store"
    return {
        "url": str(url),
        "max_size": config.get("store.max-size"),
        "options": dict(config.get("store.options") or {}),
    }


def call_key(fn: Any, args: tuple, kwargs: dict, env: dict | None) -> str:
    """The store key of calling ``fn(*args, **kwargs)`` with requirements ``env``."""
    code = digest.function_digest(fn)
    inputs = digest.value_digest((args, dict(sorted(kwargs.items()))))
    return "call-" + digest.digest(code, inputs, env["hash"] if env else "")


def cell_key(source: str, inputs: dict, outputs: list[str], get: bool, env: dict | None) -> str:
    """The store key of a cell's run."""
    values = digest.value_digest(dict(sorted(inputs.items())))
    shape = f"{sorted(outputs)}|{bool(get)}"
    return "cell-" + digest.digest(source, values, shape, env["hash"] if env else "")


def submit_call(call: calls.Call, fn: Any, args: tuple, kwargs: dict, *, label: str,
                names: dict, resources: dict | None, env: dict | None) -> Any:
    """Submit a memoized function call; the future of its value (stored, or computed)."""
    key = call_key(fn, args, kwargs, env)
    info = _info(call, key, "call", label, summary(args, kwargs))
    spec = {"kind": "call", "fn": fn, "args": args, "kwargs": kwargs}
    return call.submit(spec, names=names, resources=resources, env=env,
                       fn=worker_memo.run, extra=[info], key=f"remote-memo-{key}-{call.id}")


def submit_cell(call: calls.Call, spec: dict, inputs: dict, *, label: str,
                resources: dict | None, env: dict | None) -> Any:
    """Submit a memoized cell: its main task, as :func:`calls.Call.submit` would."""
    key = cell_key(spec["source"], inputs, spec["outputs"], spec["get"], env)
    first = spec["source"].strip().splitlines()[0][:60]
    info = _info(call, key, "cell", first, summary((), inputs))
    info["outputs"] = list(spec["outputs"])
    digest.alias_cell(call.id, key)  # its names count by this key as inputs of later calls
    return call.submit(spec, names=inputs, resources=resources, env=env,
                       fn=worker_memo.run, extra=[info])


def _info(call: calls.Call, key: str, kind: str, label: str, inputs: str) -> dict[str, Any]:
    return {
        "store": store_spec(), "key": key, "kind": kind, "call": call.id, "outputs": [],
        "meta": {"kind": "function" if kind == "call" else kind, "label": label,
                 "inputs": inputs, "call": call.id},
    }


def summary(args: tuple, kwargs: dict, width: int = 60) -> str:
    """A short description of inputs, for listings: ``3, x=ndarray(1000,) float64``."""
    parts = [_short(a) for a in args] + [f"{k}={_short(v)}" for k, v in kwargs.items()]
    text = ", ".join(parts)
    return text if len(text) <= width else text[: width - 1] + "…"


def _short(value: Any) -> str:
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple):
        dtype = getattr(value, "dtype", "")
        return f"{type(value).__name__}{shape} {dtype}".strip()
    if isinstance(value, (int, float, bool, type(None))) or (isinstance(value, str) and len(value) < 20):
        return repr(value)
    key = getattr(value, "key", None)
    if type(value).__name__ == "RemoteRef" and key:
        return f"ref {str(key)[:20]}"
    size = len(value) if hasattr(value, "__len__") else None
    return f"{type(value).__name__}" + (f"[{size}]" if size is not None else "")


def entries(cluster: Any) -> list[dict[str, Any]]:
    """The store's entries as a worker of ``cluster`` sees them, least recently used first."""
    client = cluster.client
    return client.submit(worker_memo.listing, store_spec(), pure=False).result()


def clear(cluster: Any) -> int:
    """Remove every memoized result from the store (saved functions stay); how many."""
    client = cluster.client
    return client.submit(worker_memo.clear, store_spec(), pure=False).result()


def age(seconds_since_epoch: float) -> str:
    """``12 s ago``, ``3 min ago``, ``2 h ago``, ``4 d ago``."""
    ago = max(0.0, time.time() - seconds_since_epoch)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if ago >= size:
            return f"{ago / size:.0f} {unit} ago"
    return f"{ago:.0f} s ago"


def map_calls(function: Any, items: Any, *, errors: str, plain: bool) -> list:
    """``map``/``starmap`` of a ``cache=True`` function: one memoized call per item (tuples
    of arguments), each answered from the store or run and stored, results in order.

    ``plain`` says the map asked for nothing but ``errors``/``timeout``/``shared``/
    ``batch_size``: the batch forms (``post``, ``init``, ``target``, ``max_parallel``,
    ``get=False``) run whole batches and cannot answer single items from the store.
    """
    if not plain:
        raise ValueError(
            f"{function.name} has cache=True: its map answers each item from the result store, "
            "so post=, init=, target=, max_parallel= and get=False do not apply. Use "
            "function.to(...) with cache=False for those, or drop them."
        )
    refs = [function.remote(*args) for args in items]
    results: list = []
    for index, ref in enumerate(refs):
        try:
            results.append(ref.get())
        except Exception as exc:
            if errors == "return":
                results.append(exc)
                continue
            for rest in refs[index + 1:]:
                rest.cancel()
            exc.add_note(f"item {index} of {len(refs)} failed; pass errors='return' to get the "
                         "other results with the exceptions in place")
            raise
    return results
