"""The widget of one remote call: status line, Cancel button, map progress bar, live log.

Everything drawn comes from the call's :class:`~jupyter_remote.core.logs.CallLog`. The
widget listens to it and redraws on the Dask client's event-loop thread (comm messages
route by widget, not by cell, so that is safe there, unlike printing). Redraws are
coalesced: a lone line is drawn at once, a flood at most once per ``interval``, and only the
last ``max_lines`` lines are ever sent to the frontend; the ``CallLog`` keeps the whole log
for ``%remote logs``.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Callable

import ipywidgets as w

from jupyter_remote import config
from jupyter_remote.core.logs import FINAL_STATES, STATE_WORDS, LogLine, format_line
from jupyter_remote.widgets import theme
from jupyter_remote.widgets.subshell import respond_while_busy

log = logging.getLogger(__name__)

class Coalescer:
    """Run ``draw`` on an event loop: a lone poke at once, a stream of pokes at most once
    per ``interval`` seconds (the drawer may change it). ``poke`` may be called from any
    thread."""

    def __init__(self, loop, interval: float, draw: Callable[[], None]):
        self._loop = loop
        self.interval = interval
        self._draw = draw
        self._lock = threading.Lock()
        self._pending = False
        self._last = 0.0

    def poke(self, now: bool = False) -> None:
        """Ask for a draw; ``now`` skips the wait (a final state is drawn at once)."""
        if now:
            self._loop.add_callback(self._fire)
            return
        with self._lock:
            if self._pending:
                return
            self._pending = True
        self._loop.add_callback(self._due)

    def _due(self) -> None:
        wait = self._last + self.interval - time.monotonic()
        if wait > 0:
            self._loop.call_later(wait, self._fire)
        else:
            self._fire()

    def _fire(self) -> None:
        with self._lock:
            self._pending = False
        self._last = time.monotonic()
        try:
            self._draw()
        except Exception:  # a broken view must not break the client's event loop
            log.exception("drawing a remote call's widget failed")


def line_html(line: LogLine) -> str:
    """One log line, with stderr and log levels told apart by style."""
    text = html.escape(format_line(line))
    stream = line.get("stream", "stdout")
    if stream == "stderr":
        return f"<span class='jr-stderr' style='{theme.STDERR}'>{text}</span>"
    if stream == "log":
        level = line.get("level", "INFO")
        style = theme.LEVEL.get(level, "")
        return f"<span class='jr-log jr-{level.lower()}' style='{style}'>{text}</span>"
    return text


def log_html(lines: list[LogLine]) -> str:
    body = "\n".join(line_html(line) for line in lines)
    # column-reverse keeps the box scrolled to its newest line without any JavaScript
    return (
        "<div class='jupyter-remote-log' style='max-height:22em;overflow-y:auto;"
        "display:flex;flex-direction:column-reverse'>"
        "<pre style='margin:0;flex:none;overflow:visible;font-size:12px;line-height:1.35;"
        "white-space:pre-wrap'>"
        f"{body}</pre></div>"
    )


def progress_words(log_, final: bool = False) -> str:
    """A map's progress in words: percent, done of total, failures, rate, time left."""
    total = max(1, log_.total or 0)
    done = min(log_.done, total)
    text = f"{100 * done / total:.0f}% · {log_.progress()}"
    rate = log_.rate
    if not final and 0 < done < total and rate > 0:
        text += f" · about {_duration((total - done) / rate)} left"
    return text


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{max(seconds, 1):.0f} s"


_TIP = "Cancel this call: queued work never starts, running work is interrupted"
# Clicks reach a busy kernel through jupyter_remote's subshell (ipykernel 7). Without one
# the kernel handles a click only between cells; a cell that waits is then stopped by
# interrupting the kernel, which cancels the call the same way.
_WAITING_TIP = (
    "This cell waits for the call, so the kernel is busy: interrupt the kernel "
    "(the stop button, or I,I) to cancel it now"
)


class CallWidget(w.VBox):
    """Status, Cancel, progress and live log of one remote call.

    Parameters
    ----------
    call
        The :class:`~jupyter_remote.core.calls.Call` to show.
    waiting
        Whether the kernel blocks until the call ends. The Cancel button still works then
        when the kernel has subshells (ipykernel 7, see :mod:`.subshell`); otherwise its
        tooltip says to interrupt the kernel instead.
    max_lines
        Lines kept in the view (default: ``jupyter-remote.logs.max-lines``).
    interval
        Most time between two redraws during a flood, in seconds. The pause between
        redraws grows with the lines shown (``PER_LINE`` each, at least ``MIN_INTERVAL``):
        a short log redraws within milliseconds, a full one about ten times a second, so
        the frontend re-renders a bounded number of lines per second.
    """

    MIN_INTERVAL = 0.015
    PER_LINE = 40e-6

    def __init__(self, call, *, waiting: bool = False, max_lines: int | None = None,
                 interval: float | None = None):
        self.call = call
        self.call_log = call.log
        self.max_lines = int(max_lines if max_lines is not None else config.get("logs.max-lines", 1000))
        self.max_interval = float(
            interval if interval is not None else config.get("logs.redraw-interval", 0.1)
        )
        self.note = ""
        self._message = ""
        self._bound: list[str] = []  # what the cell bound, one line each
        self._warnings: list[str] = []  # names that changed kind
        self._workers: set[str] = set()  # every worker the call's lines came from
        self._handle = None
        self._record_when_done = False
        self._recorded = False
        self._drawn_lines = -1
        # The status keeps its line; the button never shrinks (flex none); the message and
        # what the cell bound go in a row of their own below, where long text may wrap.
        self.status = w.HTML(layout=w.Layout(flex="0 1 auto"))
        self.cancel_button = w.Button(
            # the theme's own button colours: the "warning" style is white on orange, 2.7:1
            description="Cancel", icon="stop", tooltip=_TIP,
            layout=w.Layout(width="auto", flex="none"),
        )
        self.cancel_button.on_click(self._on_cancel)
        if not respond_while_busy(self.cancel_button) and waiting:
            self.cancel_button.tooltip = _WAITING_TIP
        self.message = w.HTML(layout=w.Layout(width="100%", display="none"))
        self.progress = w.IntProgress(min=0, max=max(1, self.call_log.total or 1), value=0,
                                      description="progress", style={"description_width": "0"},
                                      layout=w.Layout(width="40%"))
        self.progress_text = w.HTML()
        self.hidden = w.HTML()
        self.lines = w.HTML()
        progress_row = w.HBox([self.progress, self.progress_text])
        if self.call_log.total is None:
            progress_row.layout.display = "none"
        super().__init__([
            w.HBox([self.status, self.cancel_button, self.message],
                   layout=w.Layout(align_items="center", flex_flow="row wrap")),
            progress_row,
            self.hidden,
            self.lines,
        ])
        self.add_class("jupyter-remote-call")
        self._draw()
        loop = call.cluster.client.loop
        self._loop = loop
        self._coalescer = Coalescer(loop, self.MIN_INTERVAL, self._draw)
        self.call_log.listen(self._on_log)
        loop.add_callback(self._tick)

    def _on_log(self, log_, _lines) -> None:
        # Read here, at each event, rather than at a (coalesced) draw: a map's batches move
        # between workers faster than the view redraws.
        if log_.worker:
            self._workers.add(log_.worker)
        self._coalescer.poke(log_.state in FINAL_STATES)

    # -- the plain-text record ---------------------------------------------------------
    def as_text(self) -> str:
        """The same information as text: the record kept in the notebook file for readers
        without widgets (nbconvert, GitHub, nbclient runs)."""
        log_ = self.call_log
        head = f"{self.call.label} on {self.call.cluster.name}: {log_.summary()}"
        for extra in (self.note, self._message):
            if extra:
                head += f" · {extra}"
        lines, hidden = log_.tail(self.max_lines)
        out = [head]
        if self._bound:
            out.append("bound " + "; ".join(self._bound))
        out.extend(f"warning: {text}" for text in self._warnings)
        if hidden:
            out.append(f"… {hidden:,} earlier lines hidden; `%remote logs {self.call.id}` "
                       "replays the whole log")
        out.extend(format_line(line) for line in lines)
        return "\n".join(out)

    def _repr_mimebundle_(self, **kwargs):
        data = super()._repr_mimebundle_(**kwargs)
        if data is not None:
            data["text/plain"] = self.as_text()
        return data

    def show(self, *, record_when_done: bool = False, handle=None) -> None:
        """Display in the current cell, or in place of ``handle``'s output (a display
        handle). ``record()`` later refreshes the text record of that output; with
        ``record_when_done`` the widget does so itself when the call ends."""
        from IPython.display import display

        self._record_when_done = record_when_done
        if handle is not None:
            handle.update(self)
            self._handle = handle
        else:
            self._handle = display(self, display_id=True)

    def record(self) -> None:
        """Refresh the text record of the displayed output (display updates go by id, not
        by cell, so any thread may do this)."""
        if self._handle is not None:
            self._handle.update(self)

    def set_bound(self, lines: list[str], warnings: list[str]) -> None:
        """What the cell bound (one line per name) and names that changed kind, shown
        below the status (see :mod:`jupyter_remote.ipython.bound`)."""
        self._bound = list(lines)
        self._warnings = list(warnings)
        self._coalescer.poke(now=True)

    def set_note(self, text: str) -> None:
        """A short remark after the status (e.g. the names a ``--no-wait`` cell bound)."""
        self.note = text
        self._coalescer.poke()

    # -- drawing (on the client's event loop, or once in __init__) ---------------------
    def _tick(self) -> None:
        """Keep the elapsed time moving while the call is not finished."""
        self._coalescer.poke()
        if self.call_log.state not in FINAL_STATES:
            self._loop.call_later(1.0, self._tick)

    def _draw(self) -> None:
        now = self.call_log.state  # read once: it may change on another thread while we draw
        # Lines first, status last: a frontend that sees the final state has every line.
        self._draw_lines()
        if self.call_log.total is not None:
            self._draw_progress(now)
        if now in FINAL_STATES:
            self.cancel_button.layout.display = "none"  # nothing left to cancel
        self._draw_message()
        self.status.value = self._status_html(now)
        if now in FINAL_STATES and self._record_when_done and not self._recorded:
            self._recorded = True
            self.record()

    def _draw_lines(self) -> None:
        log_ = self.call_log
        total = len(log_.lines)
        if total == self._drawn_lines:
            return
        self._drawn_lines = total
        lines, hidden = log_.tail(self.max_lines)
        self.hidden.value = (
            f"<span class='jr-hidden' style='color:{theme.MUTED}'>… {hidden:,} earlier lines "
            f"hidden (this view keeps the last {self.max_lines:,}); "
            f"<code>%remote logs {self.call.id}</code> replays the whole log</span>"
            if hidden else ""
        )
        self.lines.value = log_html(lines) if lines else ""
        if hasattr(self, "_coalescer"):
            self._coalescer.interval = min(
                self.max_interval, max(self.MIN_INTERVAL, len(lines) * self.PER_LINE)
            )

    def _draw_progress(self, now: str) -> None:
        log_ = self.call_log
        self.progress.max = max(1, log_.total or 0)
        self.progress.value = min(log_.done, log_.total or 0)
        self.progress.bar_style = "danger" if log_.failed else "success" if now == "done" else "info"
        self.progress_text.value = html.escape(progress_words(log_, final=now in FINAL_STATES))

    def _draw_message(self) -> None:
        """The row below the status: Cancel's answer, what the cell bound, warnings."""
        rows = [f"<i>{html.escape(self._message)}</i>"] if self._message else []
        if self._bound:
            rows.append("bound " + "; ".join(f"<code>{html.escape(b)}</code>" for b in self._bound))
        rows.extend(
            f"<span class='jr-warning' style='color:{theme.STATE['building']}'>⚠ "
            f"{html.escape(text)}</span>" for text in self._warnings
        )
        self.message.value = (
            "<div style='line-height:1.4;white-space:normal;overflow-wrap:anywhere'>"
            + "<br>".join(rows) + "</div>" if rows else ""
        )
        self.message.layout.display = None if rows else "none"

    def _status_html(self, now: str) -> str:
        log_ = self.call_log
        call = self.call
        state = html.escape(STATE_WORDS.get(now, now))
        parts = [
            f"<b>{html.escape(call.label)}</b> on <code>{html.escape(call.cluster.name)}</code>",
            f"<span class='jr-state' style='color:{theme.STATE.get(now, theme.MUTED)};"
            f"font-weight:bold'>{state}</span>",
            f"{log_.elapsed:.1f} s",
        ]
        workers = sorted(self._workers | ({log_.worker} if log_.worker else set()))
        if log_.total is not None and workers:
            where = html.escape("\n".join(workers), quote=True)
            plural = "s" if len(workers) > 1 else ""
            parts.append(f"<span class='jr-workers' title='{where}'>on {len(workers)} "
                         f"worker{plural}</span>")
        elif log_.worker:
            parts.append(f"worker <code>{html.escape(log_.worker)}</code>")
        if self.note:
            parts.append(html.escape(self.note))
        # each part keeps its own line; the row breaks between parts, never inside one
        return " · ".join(f"<span style='white-space:nowrap'>{part}</span>" for part in parts)

    # -- actions (on jupyter_remote's subshell thread, or the kernel's main thread) -------
    def _on_cancel(self, _button) -> None:
        if self.call_log.state in FINAL_STATES or self.call_log.cancel is None:
            return
        try:
            self._message = self.call_log.cancel()
        except Exception as exc:
            self._message = f"cancel failed: {type(exc).__name__}: {exc}"
        self._coalescer.poke()
