"""Let a widget's clicks reach the kernel while a cell runs.

A kernel handles a frontend's widget messages on its main shell, between cells: while a
cell waits for a remote call, a click on that call's Cancel button would only be seen
once the cell has ended, too late to matter. ipykernel 7 runs *subshells*, each on its own
thread with its own queue, and routes a comm's messages to the subshell its comm names
(private hooks, see :func:`jupyter_remote._compat.route_comm`). This module starts one subshell per kernel for
jupyter_remote and routes the chosen widgets' messages to it, so their handlers run at once
even while the main shell is busy.

Handlers routed here run on the subshell's thread: they must be thread-safe (the Cancel
button's handler only talks to the Dask client and pokes the view's redraw).

While the main shell runs a cell, the subshell's own busy/idle statuses are held back
(:func:`jupyter_remote._compat.hold_subshell_status`): JupyterLab shows the last status of
any shell message as the kernel's, and the notebook must read Busy until the cell ends.

With an older ipykernel, or outside a kernel, nothing is routed and :func:`respond_while_busy`
returns False: the widget then works between cells only, as every widget does.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import weakref

from jupyter_remote._compat import (
    can_route_comm,
    create_subshell,
    hold_subshell_status,
    route_comm,
    subshell_manager,
)

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_subshells: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # kernel -> subshell id


def respond_while_busy(widget) -> bool:
    """Handle the frontend's messages for ``widget`` on jupyter_remote's subshell.

    Returns whether that worked; when it did not, the widget still works between cells.
    """
    comm = getattr(widget, "comm", None)
    kernel = getattr(comm, "kernel", None)
    if comm is None or kernel is None or not can_route_comm(comm):
        return False
    subshell = _subshell_of(kernel)
    if subshell is None:
        return False
    route_comm(comm, subshell)
    return True


def _subshell_of(kernel) -> str | None:
    with _lock:
        if kernel in _subshells:
            return _subshells[kernel]
        subshell = None
        try:
            subshell = _start_subshell(kernel)
        except Exception:
            _log.debug("could not start a subshell; widgets answer between cells", exc_info=True)
        _subshells[kernel] = subshell  # a failure is not retried for every widget
        return subshell


def _start_subshell(kernel) -> str | None:
    found = subshell_manager(kernel, threading.current_thread())
    if found is None:
        return None
    channel, manager = found
    made: concurrent.futures.Future = concurrent.futures.Future()

    def create() -> None:  # subshells are made on the shell-channel thread
        try:
            made.set_result(create_subshell(manager))
        except BaseException as exc:
            made.set_exception(exc)

    channel.io_loop.add_callback(create)
    subshell = made.result(timeout=10)
    # The notebook must read Busy until a waiting cell ends: a click handled here during
    # the cell must not publish its own idle status (JupyterLab would show it as the kernel's).
    hold_subshell_status(kernel, subshell)
    return subshell
