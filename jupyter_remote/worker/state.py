"""Per-call state in a worker process (or an environment's process): which calls run in
which thread, the values cells bound until their refs collect them, and interrupts.

- A call registers its thread while it runs (:func:`started` / :func:`stopped`), so
  :func:`interrupt` can raise in it; once stopped, an interrupt can never land in later work
  of that thread (both hold one lock).
- A cell's bound names wait here (:func:`keep`) until their ``take`` tasks collect them
  (:func:`take_kept`); :func:`drop` forgets what no take will collect.
- A cell that ran in an environment's process keeps its values there: the worker records a
  :class:`Holder` for it (:func:`hold_elsewhere`) that takes and drops over the pipe.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Any, Protocol

from jupyter_remote._compat import async_raise
from jupyter_remote.exceptions import RemoteCancelledError


class Holder(Protocol):
    """Where the values of a cell wait when not in this process (an environment's process)."""

    def take(self, call: str, name: str, label: str) -> Any:
        """The value ``name`` bound by ``call``, handed over (raises if it failed)."""

    def drop(self, call: str) -> None:
        """Forget what ``call`` bound there."""

    def pickled(self, call: str) -> dict[str, bytes]:
        """The values ``call`` bound there, each as its cloudpickled bytes, left in place."""


UNBOUND = object()  # kept for a name the cell did not bind on this run

_lock = threading.Lock()  # kept values
_kept: dict[str, dict[str, Any]] = {}
_elsewhere: dict[str, Holder] = {}
_dropped: collections.deque[str] = collections.deque(maxlen=1000)  # a late keep keeps nothing

_running_lock = threading.Lock()
_running: dict[str, set[int]] = {}  # call -> the threads running it (a map's batches: several)
_ended: collections.deque[str] = collections.deque(maxlen=1000)  # "finished" vs "not started"
_stopped: collections.deque[str] = collections.deque(maxlen=1000)  # interrupted: start no more

_closers: list[Callable[[], None]] = []  # what closes with the worker


# -- running calls -------------------------------------------------------------------------
def started(call: str) -> None:
    """``call`` runs in this thread from now on: :func:`interrupt` can stop it."""
    with _running_lock:
        _running.setdefault(call, set()).add(threading.get_ident())


def stopped(call: str) -> None:
    """After this, :func:`interrupt` can no longer target this thread for ``call``.

    Taken under the lock ``interrupt`` holds, so an interrupt is either raised inside the
    call (and reported as a cancellation) or not at all: never in later work of the thread.
    """
    with _running_lock:
        threads = _running.get(call)
        if threads is not None:
            threads.discard(threading.get_ident())
            if not threads:
                del _running[call]
        _ended.append(call)


def interrupt(call: str) -> str:
    """Stop a running call by raising in its thread.

    Returns ``"interrupted"``, ``"finished"`` (it had ended here) or ``"not started"``.
    Python checks for the exception between bytecodes: pure-Python work stops at once,
    a long call into C (``time.sleep``, a big numpy operation) stops when it returns.
    """
    with _running_lock:
        _stopped.append(call)  # its batches still queued here never start (see `interrupted`)
        threads = _running.get(call)
        if not threads:
            return "finished" if call in _ended else "not started"
        hits = [async_raise(ident, RemoteCancelledError) for ident in threads]
    return "interrupted" if any(hits) else "finished"


def running() -> dict[str, int]:
    """The calls running in this process now, and in how many threads each."""
    with _running_lock:
        return {call: len(threads) for call, threads in _running.items()}


def interrupted(call: str) -> bool:
    """Whether ``call`` was interrupted here (its work that has not started must not)."""
    return call in _stopped


# -- values cells bound --------------------------------------------------------------------
def keep(call: str, values: dict[str, Any]) -> None:
    """Keep a cell's bound values until their takes collect them (unless already dropped)."""
    with _lock:
        if call not in _dropped:  # (an environment's process can hear of a drop first)
            _kept[call] = values


def take_kept(call: str, name: str) -> tuple[bool, Any]:
    """``(True, value)`` and forget it, or ``(False, None)`` if not kept in this process."""
    with _lock:
        kept = _kept.get(call)
        if kept is None or name not in kept:
            return False, None
        value = kept.pop(name)
        if not kept:
            del _kept[call]
    return True, value


def peek(call: str) -> dict[str, Any]:
    """The values ``call`` bound and kept here (names it did not bind left out), left in
    place for their takes."""
    with _lock:
        return {n: v for n, v in _kept.get(call, {}).items() if v is not UNBOUND}


def remaining(call: str) -> int:
    """How many of ``call``'s bound values wait here (names it did not bind never will)."""
    with _lock:
        return sum(v is not UNBOUND for v in _kept.get(call, {}).values())


def drop(call: str) -> None:
    """Forget the values a cell bound here that no ``take`` will collect (and, should the
    cell still be running, the ones it will bind), wherever they wait."""
    with _lock:
        _kept.pop(call, None)
        _dropped.append(call)
        holder = _elsewhere.pop(call, None)
    if holder is not None:
        holder.drop(call)


def hold_elsewhere(call: str, holder: Holder) -> None:
    """``call``'s values wait in ``holder`` (an environment's process)."""
    with _lock:
        _elsewhere[call] = holder


def holder_of(call: str) -> Holder | None:
    with _lock:
        return _elsewhere.get(call)


def release_holder(call: str) -> None:
    """Every value of ``call`` in its holder was taken."""
    with _lock:
        _elsewhere.pop(call, None)


def holds(holder: Holder) -> bool:
    """Whether any cell's values wait in ``holder``."""
    with _lock:
        return any(h is holder for h in _elsewhere.values())


# -- closing -------------------------------------------------------------------------------
def at_close(fn: Callable[[], None]) -> None:
    """Run ``fn`` when the worker closes (the environment processes register their close)."""
    if fn not in _closers:
        _closers.append(fn)


def close() -> None:
    """The worker closes: run what :func:`at_close` registered."""
    for fn in list(_closers):
        fn()
