"""The tables of ``%remote refs | clusters | envs | cache``: HTML in JupyterLab, text in a
terminal, from one display.

A table leaves as one IPython display with a ``text/plain`` and a ``text/html`` form: the
terminal prints the text, JupyterLab renders the HTML with its own table style (so the theme
applies). In the HTML, an address such as ``tcp://10.0.0.5:8786`` is code, not a link (a
browser cannot open it; JupyterLab's text renderer would otherwise make it one), and only a
web address (a dashboard) is a link. Sizes are formatted by one function, in one unit family
(``dask.utils.format_bytes``: KiB, MiB, GiB).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

_ADDRESSES = ("tcp://", "tls://", "ucx://", "inproc://", "ws://", "wss://")


def size(nbytes: float | int | None) -> str:
    """A size in bytes, in the one unit family every table uses; ``-`` when unknown."""
    if nbytes is None:
        return "-"
    from dask.utils import format_bytes

    return format_bytes(int(nbytes))


def text(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """The table as aligned text, a dashed line under the header."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()
             for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cell_html(value: object) -> str:
    """One cell: addresses as code, web addresses as links, the rest as text."""
    raw = str(value)
    escaped = html.escape(raw)
    if raw.startswith(_ADDRESSES):
        return f"<code>{escaped}</code>"
    if raw.startswith(("http://", "https://")):
        return f"<a href='{escaped}' target='_blank' rel='noopener'>{escaped}</a>"
    return escaped


def markup(rows: Sequence[Sequence[str]], header: Sequence[str], note: str = "") -> str:
    """The table as HTML."""
    head = "".join(f"<th style='text-align:left'>{cell_html(h.strip())}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td style='text-align:left'>{cell_html(c)}</td>" for c in row) + "</tr>"
        for row in rows
    )
    out = (f"<table class='jupyter-remote-table'><thead><tr>{head}</tr></thead>"
           f"<tbody>{body}</tbody></table>")
    if note:
        out += f"<p class='jupyter-remote-note' style='margin:2px 0'>{html.escape(note)}</p>"
    return out


def show(rows: Sequence[Sequence[str]], header: Sequence[str], note: str = "") -> None:
    """Display the table (both forms) in the current cell."""
    from IPython.display import display

    plain = text(rows, header) + (f"\n{note}" if note else "")
    display({"text/plain": plain, "text/html": markup(rows, header, note)}, raw=True)
