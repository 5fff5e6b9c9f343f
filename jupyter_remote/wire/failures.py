"""How an exception raised by user code on a worker travels back to the notebook.

The worker wraps it in :class:`~jupyter_remote.exceptions.RemoteTaskError`, whose first
argument is plain bytes (so the scheduler holds it without importing user code), with the
traceback formatted where the cell's source is known; the notebook turns it back into the
original exception, the remote traceback as its cause.
"""

from __future__ import annotations

import os
import pickle
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
    return exc
