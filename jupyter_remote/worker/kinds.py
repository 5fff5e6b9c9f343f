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
import linecache
import time
import types
from typing import Any

from jupyter_remote.exceptions import RemoteCancelledError
from jupyter_remote.wire.failures import pack_exception
from jupyter_remote.worker import state
from jupyter_remote.worker.capture import Sink


def dispatch(spec: dict[str, Any], sink: Sink, worker: str) -> Any:
    """Run an opened payload of any kind."""
    kind = spec["kind"]
    if kind == "cell":
        return run_cell(spec, worker)
    if kind == "call":
        return spec["fn"](*spec["args"], **spec["kwargs"])
    if kind == "batch":
        return run_batch(spec, sink)
    raise ValueError(f"unknown payload kind {kind!r}")


# -- cells ---------------------------------------------------------------------------------
def run_cell(spec: dict[str, Any], worker: str) -> dict[str, Any]:
    """Execute a cell; keep its bound values here; describe them."""
    source, filename = spec["source"], spec["filename"]
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    ns: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    ns.update(spec["inputs"])

    tree = ast.parse(source, filename=filename)
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
def run_batch(spec: dict[str, Any], sink: Sink) -> list[tuple[bool, Any]]:
    """Call the function on each item; per item ``(True, value)`` or ``(False, error)``."""
    fn = spec["fn"]
    results: list[tuple[bool, Any]] = []
    done = failed = 0
    last = time.monotonic()
    for index, args, kwargs in spec["items"]:
        sink.index = index
        try:
            results.append((True, fn(*args, **kwargs)))
        except RemoteCancelledError:
            raise
        except Exception as exc:
            failed += 1
            results.append((False, pack_exception(exc).args[0]))
        done += 1
        now = time.monotonic()
        if now - last > 0.2:
            last = now
            sink.state("running", batch=spec["batch"], done=done, failed=failed)
    sink.index = None
    sink.state("running", batch=spec["batch"], done=done, failed=failed)
    return results
