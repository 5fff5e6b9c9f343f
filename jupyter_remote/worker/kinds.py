"""Running each kind of payload, once it is opened on the worker.

- ``cell``: execute a cell's source as module-level code in a fresh namespace; keep the
  names it binds in this process (their ``take`` tasks collect them) and return a small,
  plain description of them;
- ``call``: call a function and return its value;
- ``batch``: call a function on many items, returning per-item values or errors.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import linecache
import time
import types
from typing import Any

from jupyter_remote._compat import parse
from jupyter_remote.exceptions import RemoteCancelledError
from jupyter_remote.wire import payload
from jupyter_remote.wire.failures import pack_exception
from jupyter_remote.worker import forms, state
from jupyter_remote.worker.capture import Sink


def dispatch(spec: dict[str, Any], sink: Sink, worker: str) -> Any:
    """Run an opened payload of any kind."""
    kind = spec["kind"]
    if kind == "cell":
        return run_cell(spec, worker)
    if kind == "call":
        return forms.awaited(spec["fn"](*spec["args"], **spec["kwargs"]))
    if kind == "batch":
        return run_batch(spec, sink)
    if kind == "job":
        from jupyter_remote.worker import jobs  # (imports yaml: only when a job runs)

        return jobs.run_job(spec, sink)
    form = _FORMS.get(kind)
    if form is None:
        raise ValueError(f"unknown payload kind {kind!r}")
    return form(spec)


_FORMS = {"cut": forms.run_cut, "piece": forms.run_piece, "concat": forms.run_concat, "post": forms.run_post,
          "length": forms.run_length}


# -- cells ---------------------------------------------------------------------------------
def run_cell(spec: dict[str, Any], worker: str) -> dict[str, Any]:
    """Execute a cell; keep its bound values here; describe them."""
    source, filename = spec["source"], spec["filename"]
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    ns: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    ns.update(spec["inputs"])

    tree = parse(source, filename=filename)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    exec(compile(tree, filename, "exec"), ns)
    display = None
    if last is not None:
        value = eval(compile(last, filename, "eval"), ns)
        if value is not None:
            display = mimebundle(value)

    wanted = spec["outputs"]
    values = {
        name: ns[name]
        for name in wanted
        if name in ns and not isinstance(ns[name], types.ModuleType)
    }
    missing = [n for n in spec.get("required", ()) if n not in values]
    if missing:
        raise NameError(
            f"--out names {', '.join(map(repr, missing))} that the cell never bound "
            "(modules cannot be outputs)"
        )
    result = {
        "outputs": {name: describe(value) for name, value in values.items()},
        "display": display,
        "worker": worker,
    }
    if spec.get("get"):
        result["values"] = values
    else:
        state.keep(spec["call"], {name: values.get(name, state.UNBOUND) for name in wanted})
    return result


def mimebundle(value: Any) -> dict[str, str]:
    """The rich representation of ``value``, computed here where the value lives."""
    bundle: dict[str, str] = {}
    method = getattr(value, "_repr_mimebundle_", None)
    if callable(method):
        try:
            got = method()
            data = got[0] if isinstance(got, tuple) else got
            bundle.update({k: v for k, v in (data or {}).items() if isinstance(v, str)})
        except Exception:
            pass
    for mime, attr in (("text/html", "_repr_html_"), ("text/markdown", "_repr_markdown_")):
        if mime not in bundle and callable(getattr(value, attr, None)):
            try:
                got = getattr(value, attr)()
                if isinstance(got, str):
                    bundle[mime] = got
            except Exception:
                pass
    bundle.setdefault("text/plain", repr(value))
    return bundle


def describe(value: Any) -> dict[str, Any]:
    """Type, shape, dtype and size of a value, for the ref's repr."""
    from dask.sizeof import sizeof

    info: dict[str, Any] = {"type": f"{type(value).__module__}.{type(value).__qualname__}"}
    if info["type"].startswith("builtins."):
        info["type"] = type(value).__qualname__
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and all(isinstance(s, int) for s in shape):
        info["shape"] = list(shape)
    dtype = getattr(value, "dtype", None)
    if dtype is not None and not callable(dtype):
        info["dtype"] = str(dtype)
    elif dtype is not None:
        info["dtype"] = getattr(dtype, "__name__", str(dtype))
    try:
        info["nbytes"] = int(sizeof(value))
    except Exception:
        pass
    info["callable"] = callable(value) and not isinstance(value, type)
    return info


# -- batches of a map ----------------------------------------------------------------------
def run_batch(spec: dict[str, Any], sink: Sink) -> payload.BatchResult:
    """Call the function on each item of a batch of a map, for at most ``seconds``.

    ``args`` holds the items (``star``: argument tuples), the first at position ``start`` of
    the map. The items run in strides of about 20 ms (measured as they go), each one a
    generator that only calls the function, consumed by ``list.extend`` (no per-item
    bookkeeping: a trivial item costs half of what a loop storing its position does); an
    item that raises leaves its packed exception in ``errors`` and the next stride starts
    after it. Log lines are tagged with the item's
    position. Between strides progress goes out (every 0.2 s), and once ``seconds`` have
    passed the batch ends early, its ``done`` items returned (the notebook sends the rest
    again): so a batch never holds a thread for long, however slow its items are.
    """
    fn, args, start, star = spec["fn"], spec["args"], spec["start"], spec["star"]
    if spec.get("slice"):  # the items of an ``init`` function, already on the cluster
        args = args[spec["slice"][0] : spec["slice"][1]]
    if spec.get("target"):
        began = time.monotonic()
        if spec["target"] == "processes":  # in this worker's pool of python processes
            from jupyter_remote.worker import procpool

            done, failed = procpool.run_items(fn, args, star, start, spec, sink)
        else:
            done, failed = forms.run_items(fn, args, star, start, spec["target"], sink)
        return payload.BatchResult(done, failed, time.monotonic() - began)
    if inspect.iscoroutinefunction(fn):  # ``async def``: each item awaited, one at a time
        fn = forms.sync(fn)
    limit = spec.get("seconds") or float("inf")
    n = len(args)
    values: list[Any] = []  # grows as the items run: its length is the running item's position
    errors: dict[int, bytes] = {}
    began = reported = time.monotonic()
    pos = 0
    stride = 1
    sink.follow(start, values)  # a line printed by an item is tagged start + len(values)
    try:
        while pos < n:
            now = time.monotonic()
            if now - began > limit and pos:
                break  # out of time: the rest goes back
            if now - reported > 0.2:
                reported = now
                sink.state("running", batch=spec["batch"], done=pos, failed=len(errors))
            try:  # extend keeps what it got if an item raises
                values.extend(_calls(fn, args, pos, min(n, pos + stride), star))
            except RemoteCancelledError:
                raise
            except Exception as exc:
                errors[len(values)] = pack_exception(_raised(exc)).args[0]
                values.append(None)
            pos = len(values)
            stride = max(1, int(pos / max(time.monotonic() - began, 1e-6) * 0.02))  # ~20 ms
    finally:
        sink.follow(None)
    if not (spec.get("stream") or spec.get("direct")):  # else its final count rides with
        # its results (runner.execute), or the notebook counts them as they arrive
        sink.state("running", batch=spec["batch"], done=pos, failed=len(errors))
    return payload.BatchResult(values, errors, time.monotonic() - began)


def _calls(fn: Any, args: Any, begin: int, end: int, star: bool) -> Any:
    """The calls of ``fn`` on items ``begin:end`` of ``args``, as a generator: as quick as a
    C ``map`` on 3.11 (the call is inlined), and unlike ``map`` it never takes an item's
    ``StopIteration`` for the end of the items (it raises it as a ``RuntimeError``)."""
    items: Any = args[begin:end] if isinstance(args, (list, tuple, range)) else map(
        args.__getitem__, range(begin, end))
    return (fn(*item) for item in items) if star else (fn(item) for item in items)


def _raised(exc: Exception) -> BaseException:
    """What an item raised: its ``StopIteration``, not the ``RuntimeError`` that the
    generator of :func:`_calls` made of it (PEP 479); any other exception as it is."""
    if type(exc) is RuntimeError and isinstance(exc.__cause__, StopIteration):
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if tb is not None and tb.tb_frame.f_code.co_filename == __file__:  # raised by _calls
            return exc.__cause__
    return exc
