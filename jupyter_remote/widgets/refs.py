"""The compact card of a :class:`~jupyter_remote.core.refs.RemoteRef`.

Registered as the ``text/html`` formatter of ``RemoteRef`` when the extension loads, so a
ref stays a plain object (it keeps its own ``_repr_html_`` for other frontends).
"""

from __future__ import annotations

import html

_STATUS_COLORS = {
    "pending": "#c77700",
    "finished": "#1e7b34",
    "error": "#b00020",
    "cancelled": "#777",
    "lost": "#777",
}


def ref_card_html(ref) -> str:
    """One line: name, type, shape/dtype, size, worker, status."""
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
        fields.append("shape " + html.escape(str(tuple(info["shape"]))))
    if "dtype" in info:
        fields.append("dtype " + html.escape(str(info["dtype"])))
    if "nbytes" in info:
        fields.append(html.escape(format_bytes(info["nbytes"])))
    if worker:
        fields.append(f"on <code>{html.escape(worker)}</code>")
    color = _STATUS_COLORS.get(status, "#333")
    fields.append(f"<span class='jr-status' style='color:{color}'>● {html.escape(status)}</span>")
    return (
        "<span class='jupyter-remote-ref' style='display:inline-block;border:1px solid #ccc;"
        "border-radius:4px;padding:1px 8px;font-size:12px' "
        f"title='RemoteRef {html.escape(ref.key)}'>RemoteRef · " + " · ".join(fields) + "</span>"
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

    def redraw(_future) -> None:
        # Dask runs done callbacks in a thread of their own: asking the scheduler where the
        # value lives (``ref.worker``) is fine here, and comm messages route by widget.
        try:
            card.value = ref_card_html(ref)
        except Exception:
            pass

    future.add_done_callback(redraw)
    bundle = card._repr_mimebundle_()
    bundle.pop("text/plain", None)  # the ref's own repr stays the plain-text form
    return bundle
