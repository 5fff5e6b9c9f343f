"""Non-default view settings are honoured by a real kernel: ``widgets: text`` draws no call
widget (the cell's status is text on stderr), ``widgets: widgets`` draws the call widget
(the cell's lines go to it, not to the cell's text), and ``logs.max-lines`` bounds the live
view.

Each setting reaches a kernel of its own through a ``DASK_JUPYTER_REMOTE__...`` variable on
top of the run's hermetic environment, as a user's config would.
"""

from __future__ import annotations

import pytest

from tests.widgets.kernel import WIDGET_MIME, Kernel


@pytest.fixture
def kernel_with(tmp_path):
    started: list[Kernel] = []

    def start(**settings: str) -> Kernel:
        env = {"DASK_JUPYTER_REMOTE__LOCAL__N_WORKERS": "1"}
        env.update({f"DASK_JUPYTER_REMOTE__{k}": v for k, v in settings.items()})
        k = Kernel(env=env, cwd=str(tmp_path))
        started.append(k)
        k.execute("%load_ext jupyter_remote")
        # Start the embedded cluster first: the first cell's widget replaces a "starting…"
        # line (an update_display_data); later cells display theirs directly.
        k.execute("%%remote --out warm\nwarm = 1\n", timeout=180)
        return k

    yield start
    for k in started:
        k.close()


CELL = "%%remote\nfor i in range(40):\n    print(f'line-{i}')\n"


def test_widgets_text_draws_no_widget(kernel_with):
    kernel = kernel_with(WIDGETS="text")
    msg_id = kernel.submit(CELL)
    kernel.reply(msg_id, timeout=180)
    shown = [m for kind in ("display_data", "update_display_data")
             for m in kernel.of(msg_id, kind) if WIDGET_MIME in m["content"]["data"]]
    assert shown == []
    text = kernel.text(msg_id)
    assert "line-0" in text and "line-39" in text and "[remote]" in text


def test_widgets_widgets_draws_the_call_widget(kernel_with):
    kernel = kernel_with(WIDGETS="widgets")
    msg_id = kernel.submit(CELL)
    kernel.reply(msg_id, timeout=180)
    view = kernel.call_widget(msg_id)  # a display_data of the call widget's model
    view.wait_value("lines", "line-39", timeout=60)
    view.wait_value("status", "done", timeout=60)
    assert "line-0" in view.value("lines")
    text = kernel.text(msg_id)
    assert "line-0" not in text and "[remote]" not in text, text


def test_logs_max_lines_bounds_the_live_view(kernel_with):
    kernel = kernel_with(LOGS__MAX_LINES="5")
    msg_id = kernel.submit(CELL)
    kernel.reply(msg_id, timeout=180)
    view = kernel.call_widget(msg_id)
    view.wait_value("lines", "line-39", timeout=60)
    shown = view.value("lines")
    assert "line-35" in shown and "line-34" not in shown, shown
    assert "keeps the last 5" in view.value("hidden"), view.value("hidden")
