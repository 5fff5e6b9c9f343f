"""How an exception raised by user code on a worker travels back to the notebook.

The worker wraps it in :class:`~jupyter_remote.exceptions.RemoteTaskError`, whose first
argument is plain bytes (so the scheduler holds it without importing user code), with the
traceback formatted where the cell's source is known; the notebook turns it back into the
original exception, the remote traceback as its cause.

The notebook shows such an exception through IPython's ``_render_traceback_`` protocol (the
one ipyparallel uses for its engines' errors): the remote frames, with the cell's lines,
then the exception; none of the local frames the exception was re-raised through, which
are the package's plumbing. :class:`RenderedTraceback` is that renderer: a plain picklable
object set on the exception, so nothing here imports IPython.
"""

from __future__ import annotations

import linecache
import os
import pickle
import re
import sys
import traceback
from typing import Any

import cloudpickle

from jupyter_remote.exceptions import RemoteError, RemoteTaskError, RemoteTraceback

# Frames of the package itself are plumbing, never the user's code.
_INTERNAL = (os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,)


def pack_exception(exc: BaseException) -> RemoteTaskError:
    """Wrap an exception raised by user code on the worker for the trip back.

    The traceback is formatted here, where the cell's source is known, leaving out the
    frames of jupyter_remote and of the worker machinery.
    """
    tb = traceback.TracebackException.from_exception(exc)
    tb.stack = traceback.StackSummary.from_list(
        [f for f in tb.stack if not os.path.abspath(f.filename).startswith(_INTERNAL)]
    )
    text = "".join(tb.format())
    try:
        blob = cloudpickle.dumps(exc.with_traceback(None))
        cloudpickle.loads(blob)  # what cannot round-trip here will not do it there either
    except Exception:
        blob = b""
    info = {
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "message": str(exc),
        "traceback": text,
        "exception": blob,
    }
    return RemoteTaskError(pickle.dumps(info), f"{info['type']}: {info['message']}"[:200])


_RED, _BOLD_RED, _RESET = "\x1b[0;31m", "\x1b[1;31m", "\x1b[0m"


class RenderedTraceback:
    """What IPython shows for an exception raised remotely (its ``_render_traceback_``).

    ``text`` is the remote traceback as the worker formatted it (it ends with the
    exception line); ``where`` says which call raised it. IPython calls the object and
    prints the lines it returns instead of a traceback of local frames.
    """

    def __init__(self, type_name: str, text: str, where: str = "") -> None:
        self.type_name = type_name
        self.text = text
        self.where = where

    def __call__(self) -> list[str]:
        lines = _with_local_source(self.text.rstrip().splitlines())
        if lines and lines[0].startswith("Traceback"):
            lines = lines[1:]  # our own header below says it once
        where = f" in {self.where}" if self.where else ""
        head = f"{_RED}{'-' * 75}{_RESET}"
        title = f"{_BOLD_RED}{self.type_name}{_RESET}".ljust(42 + len(_BOLD_RED) + len(_RESET))
        out = [head, f"{title} Remote traceback{where} (most recent call last)"]
        if lines:
            last = lines[-1]
            name, sep, rest = last.partition(":")
            if sep and " " not in name:
                lines[-1] = f"{_BOLD_RED}{name}{_RESET}:{rest}"
        return out + lines


_DYNAMIC = re.compile(r'^  File "<dynamic-code>", line (\d+), in (\w+)$')


def _with_local_source(lines: list[str]) -> list[str]:
    """Add the source line under a frame of a notebook function that travelled by value.

    cloudpickle drops a function's file name (``<dynamic-code>``), so the worker cannot show
    its lines; the notebook can, when the frame's function is a notebook global of that name
    whose code spans that line (IPython keeps every cell's source in ``linecache``).
    """
    main = sys.modules.get("__main__")
    out = []
    for i, line in enumerate(lines):
        out.append(line)
        found = _DYNAMIC.match(line)
        if found is None or (i + 1 < len(lines) and lines[i + 1].startswith("    ")):
            continue
        code = getattr(getattr(main, found.group(2), None), "__code__", None)
        lineno = int(found.group(1))
        if code is not None and lineno in {n for _, _, n in code.co_lines()}:
            text = linecache.getline(code.co_filename, lineno).strip()
            if text:
                out.append(f"    {text}")
    return out


def unpack_exception(error: BaseException, where: str = "") -> BaseException:
    """Turn a :class:`RemoteTaskError` into the original exception, remote traceback attached.

    Any other exception is returned unchanged.
    """
    if not isinstance(error, RemoteTaskError) or not error.args:
        return error
    info: dict[str, Any] = pickle.loads(error.args[0])
    exc: BaseException | None = None
    if info["exception"]:
        try:
            exc = cloudpickle.loads(info["exception"])
        except Exception:
            exc = None
    if exc is None:
        exc = RemoteError(info["type"], info["message"])
    header = f"Remote traceback{f' ({where})' if where else ''}:\n"
    exc.__cause__ = RemoteTraceback(header + info["traceback"].rstrip())
    exc.__traceback__ = None
    short = info["type"].rpartition(".")[2] or info["type"]
    try:  # an exception type that refuses attributes keeps IPython's usual rendering
        exc._render_traceback_ = RenderedTraceback(  # type: ignore[attr-defined]
            short, info["traceback"], where
        )
    except (AttributeError, TypeError):
        pass
    return exc
