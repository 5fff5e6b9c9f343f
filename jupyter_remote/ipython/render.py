"""How a remote call shows in the notebook.

The data comes from the call's :class:`~jupyter_remote.core.logs.CallLog`; this module only
chooses who draws it. In a kernel (whose frontend shows widgets) with ipywidgets
importable, the widgets of :mod:`jupyter_remote.widgets` draw, updated from the Dask
client's event-loop thread. Otherwise (terminal IPython, no ipywidgets, or
``jupyter-remote.widgets: false``) the text view prints the same information: the call's
state, worker and elapsed time on stderr, prefixed ``[remote]``, and its lines in the
waiting thread, so they land in the cell that waits.

Besides the cell view protocol, the magic tells a cell's view two things only it knows:
``connecting(cluster)`` before the first use of a cluster that is not connected (the first
cell of a kernel says "starting local cluster (2 workers)…" at once instead of waiting in
silence while it starts), and ``show_bound(bound, before)`` once the names are bound (what
the cell bound, and names that changed kind, worded by :mod:`.bound`). Exceptions a cell
raises pass through :func:`traceback_for`, so the user sees the remote traceback or our
one-line message, never the package's frames.

Importing this module is cheap (``%load_ext`` imports it): Dask and ipywidgets load when a
call first shows. ``CellView``/``WidgetCellView`` implement the cell view protocol
(:class:`jupyter_remote.core.views.CellView`), ``FunctionTextView``/``FunctionWidgetView``
the function view protocol (:class:`jupyter_remote.core.views.FunctionView`).
"""

from __future__ import annotations

import sys


def print_lines(lines) -> None:
    from jupyter_remote.core.views import print_lines as text

    text(lines)


def widgets_enabled(shell=None) -> bool:
    """True when calls should draw as widgets: a kernel shell, ipywidgets importable, and
    ``jupyter-remote.widgets`` not false."""
    from jupyter_remote import config

    setting = config.get("widgets", "auto")
    if setting is False or str(setting).lower() in ("false", "no", "off", "text"):
        return False
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return False  # terminal IPython or a plain InteractiveShell: nobody draws widgets
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


# -- text ----------------------------------------------------------------------------------
def _status(text: str) -> None:
    sys.stderr.write(f"[remote] {text}\n")
    sys.stderr.flush()


class _TextLog:
    """Lines and state of one call, printed in the waiting thread."""

    def __init__(self) -> None:
        self.call = None
        self._announced = False

    def begin(self, call) -> None:
        self.call = call

    def lines(self, lines) -> None:
        self._announce()
        print_lines(lines)

    def _announce(self) -> None:
        log = self.call.log if self.call is not None else None
        if log is None or self._announced or log.state == "queued":
            return
        self._announced = True
        where = f" on {log.worker}" if log.worker else ""
        _status(f"{self.call.label} {log.state}{where} (cluster {self.call.cluster.name}, call {self.call.id})")

    def end(self) -> None:
        if self.call is None:
            return
        log = self.call.log
        text = f"{self.call.label} {log.summary()}"
        hidden = "" if log.state == "done" else f"; `%remote logs {self.call.id}` replays its log"
        _status(text + hidden)


def starting_words(cluster) -> str:
    """What a cell says while its cluster starts or connects (the first cell waits for it:
    2 to 13 s for the embedded cluster, in silence until now)."""
    if not cluster.embedded:
        return f"connecting to cluster {cluster.name}…"
    from jupyter_remote import config

    workers = config.get("local.n-workers")
    if not workers:  # sized to the machine, as Dask sizes it
        threads = config.get("local.threads-per-worker")
        from dask.system import CPU_COUNT
        from distributed.deploy.utils import nprocesses_nthreads

        workers = max(1, CPU_COUNT // int(threads)) if threads else nprocesses_nthreads()[0]
    return f"starting {cluster.name} cluster ({workers} worker{'s' if workers != 1 else ''})…"


def traceback_for(error: BaseException) -> BaseException:
    """Make IPython show only what helps the user for an exception a cell raised.

    A remote exception already renders as its remote traceback (see
    :class:`jupyter_remote.wire.failures.RenderedTraceback`). Our own errors (a cancelled
    call, an unknown name, a lost worker, a timeout) say everything in their message: one
    line, no frames of the package. Anything else (a bug) keeps IPython's full traceback.
    """
    from jupyter_remote.exceptions import JupyterRemoteError

    if isinstance(error, JupyterRemoteError) and not hasattr(error, "_render_traceback_"):
        line = f"{type(error).__name__}: {error}"
        try:
            error._render_traceback_ = lambda: [line]  # type: ignore[attr-defined]
        except AttributeError:
            pass
    return error


def reused_note(result, short: bool = False) -> str:
    """What a ``--cache`` cell that did not run says instead."""
    text = (f"reused the result of call {result.reused} (same code and inputs); "
            f"`%remote logs {result.reused}` replays its output")
    return text if short else f"{result.call.label} {text}"


class CellView:
    """The text view of one ``%%remote`` cell.

    ``start(call)`` runs once the call is submitted, ``on_lines(lines)`` in the waiting
    thread as log lines arrive, then ``finish(result, bound)`` or ``fail(exc)``.
    """

    def __init__(self, wait: bool = True):
        self.wait = wait
        self.call = None
        self._text = _TextLog()

    def connecting(self, cluster) -> None:
        """Runs before the first use of a cluster that is not connected yet."""
        _status(starting_words(cluster))

    def start(self, call) -> None:
        self.call = call
        self._text.begin(call)

    def on_lines(self, lines) -> None:
        self._text.lines(lines)

    def fail(self, exc: BaseException) -> None:
        self._text.end()

    def show_bound(self, bound: dict, before: dict) -> None:
        """Say what the cell bound, and warn of names that changed kind (see :mod:`.bound`)."""
        from jupyter_remote.ipython import bound as words

        if self.wait and bound:
            _status("bound " + "; ".join(words.summary(bound)))
        for warning in words.replaced(bound, before):
            _status(f"warning: {warning}")

    def finish(self, result, bound: dict) -> None:
        if self.call is None:
            return
        if result.reused:
            _status(reused_note(result))
            return
        if self.wait:
            self._text.end()
            return
        names = ", ".join(bound) or "no names"
        print(
            f"{self.call.label} runs in the background on {self.call.cluster.name} "
            f"(call {self.call.id}); bound {names} as pending refs. "
            f"`%remote logs {self.call.id}` shows its output."
        )


class FunctionTextView:
    """Text view of ``RemoteFunction`` calls and maps: lines, then state and progress."""

    def __init__(self) -> None:
        self._text = _TextLog()

    def connecting(self, cluster) -> None:
        """Runs before the first use of a cluster that is not connected yet."""
        _status(starting_words(cluster))

    def start(self, call) -> None:
        self._text.begin(call)

    def on_lines(self, lines) -> None:
        self._text.lines(lines)

    def finish(self, call) -> None:
        self._text.end()


# -- widgets -------------------------------------------------------------------------------
class WidgetCellView(CellView):
    """The widget view of one ``%%remote`` cell: displayed in the cell when submitted, then
    updated by the widget itself from the call's log (also after a ``--no-wait`` cell ends)."""

    def __init__(self, wait: bool = True):
        super().__init__(wait)
        self.widget = None
        self._placeholder = None  # the "starting…" line shown until the call's widget

    def connecting(self, cluster) -> None:
        from IPython.display import display

        self._placeholder = display(_line_bundle(starting_words(cluster)), raw=True,
                                    display_id=True)

    def start(self, call) -> None:
        from jupyter_remote.widgets import CallWidget

        self.call = call
        self.widget = CallWidget(call, waiting=self.wait)
        # The widget takes the place of the "starting…" line, if there is one.
        self.widget.show(record_when_done=not self.wait,
                         handle=self._placeholder)

    def on_lines(self, lines) -> None:
        pass  # the widget draws them as they arrive

    def fail(self, exc: BaseException) -> None:
        if self.widget is not None and self.wait:
            self.widget.record()  # the traceback follows
        elif self.widget is None and self._placeholder is not None:
            # the error follows
            self._placeholder.update(_line_bundle("not started"), raw=True)

    def show_bound(self, bound: dict, before: dict) -> None:
        from jupyter_remote.ipython import bound as words

        if self.widget is not None:
            self.widget.set_bound(words.summary(bound) if self.wait else [],
                                  words.replaced(bound, before))

    def finish(self, result, bound: dict) -> None:
        if self.widget is None:
            return
        if result.reused:
            self.widget.set_note(reused_note(result, short=True))
            self.widget.record()
        elif self.wait:
            self.widget.record()
        else:
            names = ", ".join(bound) or "no names"
            self.widget.set_note(f"bound {names} as pending refs")


def _line_bundle(words: str) -> dict:
    """A one-line output in both forms (the text one is what nbconvert and GitHub show)."""
    import html

    return {"text/plain": words,
            "text/html": f"<div class='jupyter-remote-starting'><i>{html.escape(words)}</i></div>"}


class FunctionWidgetView:
    """Widget view of ``RemoteFunction`` calls: status, log and (for maps) progress bar."""

    def __init__(self) -> None:
        self.widget = None
        self._placeholder = None  # the "starting…" line shown until the call's widget

    def connecting(self, cluster) -> None:
        from IPython.display import display

        self._placeholder = display(_line_bundle(starting_words(cluster)), raw=True,
                                    display_id=True)

    def start(self, call) -> None:
        from jupyter_remote.widgets import CallWidget

        self.widget = CallWidget(call, waiting=True)
        self.widget.show(handle=self._placeholder)  # in place of the "starting…" line

    def on_lines(self, lines) -> None:
        pass

    def finish(self, call) -> None:
        if self.widget is not None:
            self.widget.record()


def cell_view(wait: bool = True) -> CellView:
    """The view of a ``%%remote`` cell in this frontend."""
    return WidgetCellView(wait) if widgets_enabled() else CellView(wait)


def function_view():
    """The view of a waiting ``RemoteFunction`` call in this frontend."""
    return FunctionWidgetView() if widgets_enabled() else FunctionTextView()


def _ref_html(ref) -> str:
    from jupyter_remote.widgets.refs import ref_card_html

    return ref_card_html(ref)


def _ref_bundle(ref) -> dict | None:
    if not widgets_enabled():
        return None
    from jupyter_remote.widgets.refs import live_card_bundle

    return live_card_bundle(ref)


def install(shell) -> None:
    """On ``%load_ext``: views for remote functions, and the compact card of refs (a live
    one for pending refs where widgets show)."""
    from jupyter_remote.core import views

    views.set_function_view(function_view)
    html = shell.display_formatter.formatters.get("text/html")
    if html is not None:
        html.for_type_by_name("jupyter_remote.core.refs", "RemoteRef", _ref_html)
    bundle = getattr(shell.display_formatter, "mimebundle_formatter", None)
    if bundle is not None:
        bundle.for_type_by_name("jupyter_remote.core.refs", "RemoteRef", _ref_bundle)


def uninstall(shell) -> None:
    from jupyter_remote.core import views

    views.set_function_view(None)
    html = shell.display_formatter.formatters.get("text/html")
    if html is not None:
        html.pop("jupyter_remote.core.refs.RemoteRef", None)
    bundle = getattr(shell.display_formatter, "mimebundle_formatter", None)
    if bundle is not None:
        bundle.pop("jupyter_remote.core.refs.RemoteRef", None)
