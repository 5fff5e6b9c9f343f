"""How a remote call shows in the notebook.

The data comes from the call's :class:`~jupyter_remote.core.logs.CallLog`; this module only
draws it. In a frontend with widgets, the widget views in :mod:`jupyter_remote.widgets`
draw; in a plain terminal (or when widgets are unavailable) the text view prints.
"""

from __future__ import annotations

from jupyter_remote.core.functions import print_lines


class CallView:
    """The text view of one ``%%remote`` cell.

    ``start(call)`` runs once the call is submitted, ``on_lines(lines)`` in the waiting
    thread as log lines arrive, then ``finish(result, bound)`` or ``fail(exc)``.
    """

    def __init__(self, wait: bool = True):
        self.wait = wait
        self.call = None

    def start(self, call) -> None:
        self.call = call

    def on_lines(self, lines) -> None:
        print_lines(lines)

    def fail(self, exc: BaseException) -> None:
        pass

    def finish(self, result, bound: dict) -> None:
        if not self.wait and self.call is not None:
            names = ", ".join(bound) or "no names"
            print(
                f"{self.call.label} runs in the background on {self.call.cluster.name} "
                f"(call {self.call.id}); bound {names} as pending refs. "
                f"`%remote logs {self.call.id}` shows its output."
            )
