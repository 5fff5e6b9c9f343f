"""Widget views of remote calls and refs: they only draw.

The data comes from :mod:`jupyter_remote.core.logs` (a call's ``CallLog``) and
:mod:`jupyter_remote.core.refs`; nothing here captures or routes output. Only the IPython
layer imports this package, inside a function: ``calls`` imports ipywidgets, ``refs`` (plain
HTML) does not.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CallWidget", "ref_card_html"]


def __getattr__(name: str) -> Any:
    if name == "CallWidget":
        from jupyter_remote.widgets.calls import CallWidget

        return CallWidget
    if name == "ref_card_html":
        from jupyter_remote.widgets.refs import ref_card_html

        return ref_card_html
    raise AttributeError(f"module 'jupyter_remote.widgets' has no attribute {name!r}")
