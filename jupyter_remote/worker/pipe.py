"""The pipe between a worker and an environment's process: length-prefixed pickles.

Both ends are this package's own code (the worker's :mod:`~.envexec` and the child's
:mod:`~.envchild`); user values inside messages are bytes already (cloudpickled by the
sender), so plain pickle is enough here.
"""

from __future__ import annotations

import pickle
import struct
import threading
from typing import IO, Any

_HEADER = struct.Struct("<Q")


def send(stream: IO[bytes] | None, lock: threading.Lock, message: Any) -> None:
    """Write one message (one writer at a time: ``lock``)."""
    if stream is None:
        raise OSError("the pipe is closed")
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    with lock:
        stream.write(_HEADER.pack(len(data)) + data)
        stream.flush()


def receive(stream: IO[bytes]) -> Any:
    """Read one message; None at the end of the stream (the other end has gone)."""
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        return None
    size = _HEADER.unpack(head)[0]
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)
