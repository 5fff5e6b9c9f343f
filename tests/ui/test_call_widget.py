"""The call widget in a real JupyterLab, driven in Chromium: the Cancel button of a cell
that is still waiting for its remote call stops the call while the cell runs."""

from __future__ import annotations

import pytest

from tests.ui.conftest import write_notebook

pytestmark = pytest.mark.slow

SPIN = (
    "%%remote --out y\n"
    "import time\n"
    "print('spinning')\n"
    "end = time.time() + 300\n"
    "while time.time() < end:\n"
    "    pass\n"
    "y = 1"
)


def test_cancel_button_of_a_waiting_cell(lab, page):
    write_notebook(lab.root / "cancel.ipynb", "%load_ext jupyter_remote", SPIN)

    page.goto(f"{lab.url}/lab/tree/cancel.ipynb?reset&token={lab.token}")
    page.locator(".jp-StatusBar-Widget", has_text="| Idle").first.wait_for(timeout=60_000)
    page.locator(".jp-Notebook .jp-Cell .cm-content").first.click()
    page.keyboard.press("Shift+Enter")  # load the extension, then run the spinning cell
    page.keyboard.press("Shift+Enter")
    spin = page.locator(".jp-Notebook .jp-Cell").nth(1)
    widget = spin.locator(".jupyter-remote-call")
    widget.locator("pre", has_text="spinning").wait_for(timeout=90_000)  # cluster start + run
    assert spin.locator(".jp-InputPrompt", has_text="[*]").count() == 1  # still waiting

    widget.locator("button", has_text="Cancel").click()

    widget.get_by_text("was interrupted").wait_for(timeout=30_000)
    spin.locator(".jp-OutputArea", has_text="RemoteCancelledError").wait_for(timeout=30_000)
    widget.locator(".jr-state", has_text="cancelled").wait_for()
    widget.locator("button", has_text="Cancel").wait_for(state="hidden")  # nothing to cancel
    assert spin.locator(".jp-InputPrompt", has_text="[2]").count() == 1  # the cell ended
