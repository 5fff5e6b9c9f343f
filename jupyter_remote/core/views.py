"""The view protocols: how a remote call shows while the notebook waits for it.

Core owns the data (a call's :class:`~jupyter_remote.core.logs.CallLog`); views only draw.
Two protocols, for the two things that wait: a ``RemoteFunction`` call or map
(:class:`FunctionView`) and a ``%%remote`` cell (:class:`CellView`). The text views live
here (:class:`TextFunctionView`) and in :mod:`jupyter_remote.ipython.render`; the widget views
in :mod:`jupyter_remote.widgets`. The IPython extension chooses the function view with
:func:`set_function_view` when it loads; without it, calls print as text.

Importing this module is cheap (the extension imports it on ``%load_ext``): no Dask.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from jupyter_remote.wire.events import LogLine

if TYPE_CHECKING:
    from jupyter_remote.core.calls import Call


class FunctionView(Protocol):
    """How a ``RemoteFunction`` call or map that the caller waits on shows meanwhile."""

    def start(self, call: Call) -> None:
        """Runs in the calling thread once the call is submitted."""

    def on_lines(self, lines: list[LogLine]) -> None:
        """Runs in the waiting thread as log lines arrive."""

    def finish(self, call: Call) -> None:
        """Runs in the calling thread once the call has ended (``call.log.state`` says how)."""


class CellView(Protocol):
    """How a ``%%remote`` cell shows: submitted, its lines, then its end."""

    def start(self, call: Call) -> None:
        """Runs once the cell's call is submitted."""

    def on_lines(self, lines: list[LogLine]) -> None:
        """Runs in the waiting thread as log lines arrive."""

    def fail(self, exc: BaseException) -> None:
        """The cell failed (before or after it was submitted); ``exc`` follows."""

    def finish(self, result: Any, bound: dict[str, Any]) -> None:
        """The cell's ``CellResult`` and the names it bound in the notebook."""


class TextFunctionView:
    """The plain-text function view: remote lines printed in the waiting thread."""

    def start(self, call: Call) -> None:
        pass

    def on_lines(self, lines: list[LogLine]) -> None:
        print_lines(lines)

    def finish(self, call: Call) -> None:
        pass


_function_view: Callable[[], FunctionView] | None = None


def announce(view: Any, cluster: Any) -> None:
    """Before a cluster's first use: a view that can say so (``connecting(cluster)``) tells
    at once that it starts or connects, which can take seconds."""
    connecting = getattr(view, "connecting", None)
    if connecting is not None and not cluster.connected:
        connecting(cluster)


def set_function_view(factory: Callable[[], FunctionView] | None) -> None:
    """Use ``factory()`` as the view of waiting calls; ``None`` restores the text view."""
    global _function_view
    _function_view = factory


def function_view() -> FunctionView:
    """A view for a waiting call: the extension's if it set one, else text."""
    return (_function_view or TextFunctionView)()


def print_lines(lines: list[LogLine]) -> None:
    """The plain-text view: remote stdout to stdout; stderr and log records to stderr."""
    from jupyter_remote.core.logs import format_line

    run: list[str] = []
    out: Any = None
    for line in lines:  # one write per run of same-stream lines: a flood stays cheap
        text = format_line(line)
        stream = sys.stdout if line.get("stream") == "stdout" else sys.stderr
        level = line.get("level", "") if line.get("stream") == "log" else ""
        if level and not line.get("text", "").startswith(level):  # the formatter may name it
            text = f"{level}: {text}"
        if stream is not out and run:
            out.write("\n".join(run) + "\n")
            run = []
        out = stream
        run.append(text)
    if run:
        out.write("\n".join(run) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
