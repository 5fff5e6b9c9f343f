"""One file lock for every process that shares a folder: kernels and the Jupyter server
(the cluster registry), workers of one host (environment builds and their use).

``fcntl.flock`` on POSIX; on Windows (the notebook side only: workers need POSIX) a byte
lock with ``msvcrt``, exclusive only.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover (Windows)
    fcntl = None  # type: ignore[assignment]
    import msvcrt


@contextlib.contextmanager
def file_lock(path: str, *, shared: bool = False) -> Iterator[None]:
    """Hold a lock on ``path`` (created if missing, mode 0600) while inside.

    Exclusive by default; ``shared`` takes a shared lock (POSIX only), which an exclusive
    lock then waits for (see :func:`is_locked`).
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _lock(fd, True, shared)
        try:
            yield
        finally:
            _lock(fd, False, shared)
    finally:
        os.close(fd)


def hold_shared(path: str) -> int:
    """Take a shared lock on ``path`` for as long as this process lives; the descriptor."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    _lock(fd, True, True)
    return fd


def is_locked(path: str) -> bool:
    """Whether another process holds a lock on ``path`` now (never waits)."""
    if fcntl is None:  # pragma: no cover (Windows)
        return False
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _lock(fd: int, take: bool, shared: bool) -> None:
    if fcntl is not None:
        if not take:
            fcntl.flock(fd, fcntl.LOCK_UN)
        else:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
    else:  # pragma: no cover (Windows)
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_LOCK if take else msvcrt.LK_UNLCK, 1)
