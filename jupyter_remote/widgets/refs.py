"""The compact card of a :class:`~jupyter_remote.core.refs.RemoteRef`.

Registered as the ``text/html`` formatter of ``RemoteRef`` when the extension loads, so a
ref stays a plain object (it keeps its own ``_repr_html_`` for other frontends). Under the
line, a finished ref shows the first rows of its value, cut and printed on the worker that
holds it (``RemoteRef.preview``): one small round trip per ref, kept in its ``info``.
"""

from __future__ import annotations

import contextlib
import html
import threading

from jupyter_remote._compat import when_done
from jupyter_remote.widgets import theme


def ref_card_html(ref) -> str:
    """One line (name, type, shape/dtype, size, worker, status), then a preview of the
    first rows when the value has rows."""
    from dask.utils import format_bytes

    info = ref.info
    status = ref.status
    try:
        worker = ref.worker if status == "finished" else info.get("worker")
    except Exception:
        worker = info.get("worker")
    fields = [f"<b>{html.escape(ref.name or ref.key)}</b>"]
    kind = str(info.get("type", "value (type known once computed)" if status == "pending" else "?"))
    fields.append(f"<code>{html.escape(kind)}</code>")
    if "shape" in info:
        fields.append("shape " + ("×".join(str(n) for n in info["shape"]) or "()"))
    if "dtype" in info:
        fields.append("dtype " + html.escape(str(info["dtype"])))
    if "nbytes" in info:
        fields.append(html.escape(format_bytes(info["nbytes"])))
    if worker:
        fields.append(f"on <code>{html.escape(worker)}</code>")
    color = theme.REF_STATUS.get(status, theme.MUTED)
    fields.append(f"<span class='jr-status' style='color:{color}'>● {html.escape(status)}</span>")
    preview = ref.preview() if status == "finished" else None
    below = (
        "<pre class='jr-preview' style='margin:2px 0 0;padding:0;font-size:11px;"
        f"line-height:1.3;white-space:pre;overflow-x:auto;max-width:100%'>{html.escape(preview)}</pre>"
        if preview else ""
    )
    return (
        "<div class='jupyter-remote-ref' style='display:inline-block;max-width:100%;"
        f"border:1px solid {theme.BORDER};border-radius:4px;padding:1px 8px;font-size:12px' "
        f"title='RemoteRef {html.escape(ref.key)}'><div>RemoteRef · " + " · ".join(fields)
        + f"</div>{below}</div>"
    )


def live_card_bundle(ref) -> dict | None:
    """For a pending ref: a widget showing the card, redrawn when the value is ready.

    ``None`` for a finished ref (the plain HTML card says everything).
    """
    future = getattr(ref, "_future", None)
    if future is None or ref.status != "pending":
        return None
    import ipywidgets as w

    card = w.HTML(ref_card_html(ref))

    def redraw() -> None:
        # In a thread of its own: asking the scheduler where the value lives (``ref.worker``)
        # blocks, and comm messages route by widget.
        try:
            card.value = ref_card_html(ref)
        except Exception:
            pass

    def done(_future) -> None:  # on the client's loop, so it must not block
        with contextlib.suppress(RuntimeError):  # (no new threads at interpreter exit)
            threading.Thread(target=redraw, daemon=True).start()

    when_done(future, done)
    bundle = card._repr_mimebundle_()
    bundle.pop("text/plain", None)  # the ref's own repr stays the plain-text form
    return bundle
