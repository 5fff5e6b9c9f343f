"""A split's pasted result in shared memory, on a cluster whose workers share one host.

Pasting a split's results on one worker costs, for an array of N bytes, moving N/2 bytes
there and writing N bytes of fresh memory, all after the last piece is done. Instead each
piece writes its own result into one file in ``/dev/shm`` (a ``tmpfs``, so the file is
memory), at its place in the whole, on its own worker and at the same time as the others,
and the paste only maps the file: the whole is a numpy array backed by that memory.

- :func:`write` (a piece's worker): the result's blocks go into the call's segment at their
  offsets, with ``os.pwrite`` (a full ``/dev/shm`` is then an ``OSError``, never the
  ``SIGBUS`` that writing through a map would raise); the first piece to come creates the
  segment, under a lock, and writes the whole's shape and dtype in its header. Returns a
  :class:`Written` (which says where), or ``None`` when the result cannot go there (not a
  numpy array, another shape or dtype than the segment's, no room): the piece then returns
  its result as before and the paste copies.
- :func:`whole` (the paste's worker): maps the segment and returns the array over it, once
  every piece wrote its part, then unlinks the file (the map keeps the memory until the
  array is freed).
- :func:`put` and :func:`take`: a piece of a ref's value that runs on another worker of
  the host goes the same way: the worker holding the value writes the piece into a segment
  of its own (one copy), the piece's worker maps it (none), instead of a copy to send, a
  socket, and a copy received.
- :func:`discard`: unlinks a call's segment and keeps its pieces from writing there again
  (a tombstone file, so a piece in a requirements environment's process sees it too); the
  paste calls it, and the notebook on every worker when a split fails or is cancelled.
- :func:`identity`: what tells two workers they see the same ``/dev/shm`` (the notebook
  compares it across the cluster's workers before sharing; a common network address is
  not enough: ``docker --network host`` without ``--ipc host``).

Not cleaned when a worker closes: a worker retired while a split runs (adaptive scaling)
may have made the file other pieces still write into.

Why not when the pieces' tasks leave memory: Dask's active memory manager drops extra
replicas of a piece's (tiny) result while the paste still waits for it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import json
import mmap
import os
import time
from dataclasses import dataclass
from typing import Any

DIR = "/dev/shm"
PREFIX = "jupyter-remote-split-"
HEADER = 4096  # bytes before the data: the whole's shape and dtype, as JSON
MAX_BLOCKS = 65536  # more contiguous runs than this in a piece: paste by copy instead
MIN_RUN = 4096  # ... or runs of fewer bytes than this
ROOM = 64 * 2**20  # bytes /dev/shm must keep free beyond the segment


_LOST = (
    "split: {path}, the shared memory this split's pieces go through, is not there for this "
    "worker: it runs in another container or on another host than the pieces, or the split "
    "already ended (a lost worker's work being redone). Run the split again; if this "
    "cluster's workers do not share /dev/shm, set jupyter-remote.split.shared-memory to "
    "false.")


_gone: set[str] = set()  # segments discarded in this process: never written again
GONE = ".gone"  # ... and in any process of the host: an empty file, the split's tombstone
TOMBSTONE_SECONDS = 3600  # tombstones older than this go at the next discard


@dataclass(frozen=True)
class Written:
    """Where a piece's result went: ``[start, stop)`` along ``axis`` of the segment ``name``
    (file inode ``inode``, so the paste knows it maps the same file)."""

    name: str
    inode: int
    axis: int
    start: int
    stop: int


def path_of(name: str) -> str:
    return os.path.join(DIR, PREFIX + name)


def write(name: str, value: Any, axis: int, start: int, stop: int, total: int) -> Written | None:
    """Write ``value`` (the result of the piece ``[start, stop)`` of ``total`` along
    ``axis``) into the segment ``name``; ``None`` when it cannot go there."""
    import numpy

    if not shareable(value) or value.ndim == 0:
        return None
    ax = axis % value.ndim if -value.ndim <= axis < value.ndim else None
    if ax is None or value.shape[ax] != stop - start:
        return None
    shape = list(value.shape)
    shape[ax] = total
    runs = 1
    for size in shape[:ax]:
        runs *= size
    run_bytes = value.dtype.itemsize * _product(list(value.shape[ax:]))
    if runs > MAX_BLOCKS or (runs > 1 and run_bytes < MIN_RUN) or _over(name):
        return None  # (many small writes cost more than the paste's copy)
    header = {"shape": shape, "dtype": value.dtype.str}
    nbytes = value.dtype.itemsize * _product(shape)
    path = path_of(name)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:  # another user's file (workers of other users on one host)
        return None
    try:
        try:
            inode = _claim(fd, path, header, nbytes)
        except OSError:  # no room for the header, say: this piece is pasted by copy
            return None
        if inode is None:
            return None
        block = value.dtype.itemsize * _product(shape[ax + 1:])
        flat = numpy.ascontiguousarray(value).reshape(runs, -1) if value.size else ()
        row = block * total
        try:
            for run in range(len(flat)):
                _pwrite_all(fd, memoryview(flat[run]).cast("B"), HEADER + run * row + block * start)
        except OSError:  # no room after all: this piece is pasted by copy
            return None
    finally:
        os.close(fd)
    if _over(name):  # discarded while this piece wrote: the split is over
        discard(name)
        return None
    return Written(name, inode, ax, start, stop)


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    """All of ``data`` at ``offset``: a write that runs out of room stops short first."""
    while len(data):
        done = os.pwrite(fd, data, offset)
        if done <= 0:
            raise OSError(errno.ENOSPC, "no room left in " + DIR)
        data, offset = data[done:], offset + done


def _claim(fd: int, path: str, header: dict[str, Any], nbytes: int) -> int | None:
    """Make the segment (the first piece) or check that it is the one this piece needs:
    its inode, or ``None``. The file is sparse (``ftruncate``): its memory is taken as the
    pieces write, so ``/dev/shm`` must have room for it now, and some to spare."""
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        info = os.fstat(fd)
        try:
            linked = os.stat(path).st_ino == info.st_ino
        except FileNotFoundError:
            linked = False
        if not linked:  # unlinked since it was opened (no room for another piece, or the
            return None  # split is over): writing there would be lost
        if info.st_size == 0:
            if not _room(nbytes):
                os.unlink(path)  # still empty: no piece's part is in it
                return None
            os.ftruncate(fd, HEADER + nbytes)
            os.pwrite(fd, json.dumps(header).encode(), 0)
        elif _header(fd) != header:
            return None
        return info.st_ino
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _header(fd: int) -> Any:
    raw = os.pread(fd, HEADER, 0).rstrip(b"\0")
    try:
        return json.loads(raw)
    except ValueError:
        return None


def whole(parts: list[Any]) -> Any:
    """The pasted array over the segment when every part is a :class:`Written` of the same
    segment, covering it; else ``None``. Unlinks the segment either way."""
    import numpy

    written = [part for part in parts if isinstance(part, Written)]
    if not written:
        return None
    name = written[0].name
    try:
        array = _mapped(path_of(name), {part.inode for part in written}, mmap.ACCESS_WRITE)
    finally:  # every piece has ended: no late writer, so no tombstone
        discard(name, len(parts), tombstone=False)
    if len(written) == len(parts):
        return array
    # Some pieces could not write theirs: paste by copy, the written ones from the segment.
    axis = written[0].axis
    pieces = [array[_along(axis, part.start, part.stop)] if isinstance(part, Written) else part
              for part in parts]
    return numpy.concatenate(pieces, axis=axis)


# -- a ref's piece, to a worker of the same host ------------------------------------------
@dataclass(frozen=True)
class Placed:
    """A piece of a ref's value put in the segment ``name`` (file inode ``inode``), for the
    piece's function on another worker of this host: it maps it instead of receiving a
    copy over a socket."""

    name: str
    inode: int


def put(name: str, value: Any) -> Placed | None:
    """Write ``value`` (a numpy piece, a view of the ref's value) into a new segment of its
    own; ``None`` (send it as usual) when it is not such an array or there is no room."""
    import numpy

    if not shareable(value) or _over(name.split("-in-")[0]):
        return None
    lead = _lead(value)
    runs = _product(list(value.shape[:lead]))
    if runs > MAX_BLOCKS or (runs > 1 and value[(0,) * lead].nbytes < MIN_RUN):
        return None
    if not _room(value.nbytes):
        return None
    path = path_of(name)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:  # made already (a cut run again: a piece may map it), or not ours
        return None
    try:
        os.pwrite(fd, json.dumps({"shape": list(value.shape), "dtype": value.dtype.str}).encode(), 0)
        offset = HEADER
        for index in numpy.ndindex(*value.shape[:lead]):
            block = numpy.ascontiguousarray(value[index]).data.cast("B")
            _pwrite_all(fd, block, offset)
            offset += len(block)
        inode = os.fstat(fd).st_ino
    except OSError:  # no room after all: the piece travels as usual
        _unlink(path)
        return None
    finally:
        os.close(fd)
    return Placed(name, inode)


def _lead(value: Any) -> int:
    """How many leading dimensions to step through so that each step is one contiguous
    block (a cut along axis ``k`` of a C-ordered array: ``k``)."""
    for lead in range(value.ndim):
        if value[(0,) * lead].flags.c_contiguous:
            return lead
    return int(value.ndim)


def take(placed: Placed) -> Any:
    """The piece :func:`put` wrote, mapped copy-on-write: the function may change it."""
    return _mapped(path_of(placed.name), {placed.inode}, mmap.ACCESS_COPY)


def _mapped(path: str, inodes: set[int], access: int) -> Any:
    """The array in the segment at ``path``, mapped, once it is checked to be the file
    (``inodes``) the pieces wrote."""
    import numpy

    try:
        fd = os.open(path, os.O_RDWR if access == mmap.ACCESS_WRITE else os.O_RDONLY)
    except FileNotFoundError:
        raise RuntimeError(_LOST.format(path=path)) from None
    try:
        info = os.fstat(fd)
        if inodes != {info.st_ino}:
            raise RuntimeError(_LOST.format(path=path))
        header = _header(fd)
        buffer = mmap.mmap(fd, info.st_size, access=access)
    finally:
        os.close(fd)
    return numpy.frombuffer(buffer, dtype=header["dtype"], offset=HEADER).reshape(header["shape"])


def _along(axis: int, start: int, stop: int) -> tuple[slice, ...]:
    return (slice(None),) * axis + (slice(start, stop),)


def discard(name: str, parts: int | None = None, tombstone: bool = True) -> None:
    """Unlink the segment ``name`` and the pieces put for it (its ``parts``, or all there
    are: a listing of ``/dev/shm``), if they are there; with ``tombstone`` (a split that
    failed or was cancelled), no process of this host writes them again.

    The tombstone (``<segment>.gone``, made before anything is unlinked) is what a late
    piece in another process sees: one in a requirements environment's process, which this
    process's ``_gone`` does not reach, checks it before and after it writes, and unlinks
    what it wrote if the split ended meanwhile. Tombstones go an hour later (at a discard)."""
    _gone.add(name)
    if tombstone:
        with contextlib.suppress(OSError):
            os.close(os.open(path_of(name) + GONE, os.O_WRONLY | os.O_CREAT, 0o600))
    puts = (glob.glob(glob.escape(path_of(name)) + "-in-*") if parts is None
            else [f"{path_of(name)}-in-{index}" for index in range(parts)])
    for path in [path_of(name), *puts]:
        _unlink(path)
    if tombstone:
        _sweep_tombstones()


def tombstones() -> list[str]:
    """The paths of the tombstones of this host's failed splits."""
    return glob.glob(os.path.join(glob.escape(DIR), PREFIX + "*" + GONE))


def _sweep_tombstones() -> None:
    """Unlink the tombstones older than :data:`TOMBSTONE_SECONDS`."""
    now = time.time()
    for path in tombstones():
        with contextlib.suppress(OSError):
            if now - os.stat(path).st_mtime > TOMBSTONE_SECONDS:
                os.unlink(path)


def _over(name: str) -> bool:
    """Whether the split ``name`` was discarded, here or by another process of the host."""
    return name in _gone or os.path.exists(path_of(name) + GONE)


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _room(nbytes: int) -> bool:
    """Whether ``/dev/shm`` has room for ``nbytes`` and :data:`ROOM` to spare."""
    try:
        space = os.statvfs(DIR)
    except OSError:
        return False
    return space.f_bavail * space.f_frsize >= nbytes + ROOM


def identity() -> tuple[int, int, str]:
    """``/dev/shm``'s device and inode and the machine's boot id: equal on two workers
    when they share the same ``/dev/shm``."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as file:
            boot = file.read().strip()
    except OSError:
        boot = ""
    try:
        info = os.stat(DIR)
    except OSError:
        return (0, 0, "no " + DIR)
    return (info.st_dev, info.st_ino, boot)


def shareable(value: Any) -> bool:
    """A numpy array whose bytes mean the same written and read back: plain numbers in
    native byte order (not objects, dates, records or sub-arrays)."""
    import numpy

    return (type(value) is numpy.ndarray and value.dtype.kind in "biufc"
            and value.dtype.isnative and value.size > 0)


def _product(sizes: list[int]) -> int:
    out = 1
    for size in sizes:
        out *= size
    return out
