"""The notebook side in a real JupyterLab, driven in Chromium with real clicks: the first
cell's "starting" line, what a cell bound, a quiet traceback, Cancel that leaves the row
intact, the map's workers and progress, the ref card, the kernel reading Busy through a
click during a waiting cell, and the sidebar's running calls. Screenshots of every widget
state in both themes (artifacts), and axe-core over the notebook in both themes.

``JUPYTER_REMOTE_SCREENSHOT=docs`` also retakes the README's picture of a cell.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

import pytest

from tests.ui.browser import axe_violations, describe, set_theme
from tests.ui.conftest import write_notebook

pytestmark = pytest.mark.slow

A11Y_RULES = ("color-contrast", "label", "button-name", "aria-progressbar-name")

FIRST = (
    "%%remote\n"
    "import logging, sys\n"
    "import numpy as np\n"
    "print('loading the data')\n"
    "print('a note on stderr', file=sys.stderr)\n"
    "logging.getLogger('demo').warning('few rows had no label')\n"
    "logging.getLogger('demo').error('one file was unreadable')\n"
    "arr = np.ones((1000, 1000))\n"
    "total = float(arr.sum())\n"
    "print('done:', total)"
)
FAILING = "%%remote\nx = 1\ny = x / 0"
SPIN = (
    "%%remote --no-wait --out {name}\n"
    "import time\n"
    "print('spinning')\n"
    "end = time.time() + 300\n"
    "while time.time() < end:\n"
    "    pass\n"
    "{name} = 1"
)
MAP = (
    "import jupyter_remote, time\n"
    "def slow(i):\n"
    "    time.sleep(0.2)\n"
    "    return i\n"
    "squares = jupyter_remote.function(slow).map(range(20), batch_size=1)"
)
GATED = (
    "%%remote --out gated\n"
    "import os, time\n"
    "print('waiting for the gate')\n"
    "end = time.time() + 120\n"
    "while not os.path.exists({gate!r}) and time.time() < end:\n"
    "    time.sleep(0.05)\n"
    "gated = 1"
)


def run_cell(page, cell) -> None:
    """Run one cell with a real Shift+Enter (clicking its editor first)."""
    cell.locator(".cm-content").click()
    page.keyboard.press("Shift+Enter")


def test_the_notebook_widgets(lab, page, step, artifacts, tmp_path):
    gate = tmp_path / "gate"
    write_notebook(
        lab.root / "widgets.ipynb",
        "%load_ext jupyter_remote", FIRST, FAILING, SPIN.format(name="spun"), MAP, "arr",
        SPIN.format(name="other"), GATED.format(gate=str(gate)), SPIN.format(name="running"),
    )
    cells = page.locator(".jp-Notebook .jp-Cell")
    widget = lambda i: cells.nth(i).locator(".jupyter-remote-call")  # noqa: E731

    with step("open the notebook and load the extension"):
        page.goto(f"{lab.url}/lab/tree/widgets.ipynb?reset&token={lab.token}")
        page.locator(".jp-StatusBar-Widget", has_text="| Idle").first.wait_for(timeout=60_000)
        run_cell(page, cells.nth(0))
        cells.nth(0).locator(".jp-InputPrompt", has_text="[1]").wait_for(timeout=60_000)

    with step("the first cell says the cluster is starting, at once (item 2)"):
        run_cell(page, cells.nth(1))
        starting = cells.nth(1).locator(".jupyter-remote-starting")
        starting.wait_for(timeout=10_000)
        assert re.match(r"starting local cluster \(\d+ workers?\)…", starting.inner_text())
        widget(1).locator(".jr-state", has_text="done").wait_for(timeout=120_000)
        assert cells.nth(1).locator(".jupyter-remote-starting").count() == 0  # replaced

    with step("a finished cell says what it bound, and keeps no Cancel button (items 3, 9)"):
        widget(1).get_by_text("arr: ndarray 1000×1000 float64, 7.63 MiB").wait_for()
        widget(1).get_by_text("total: float").wait_for()
        widget(1).locator("button", has_text="Cancel").wait_for(state="hidden")

    with step("a failure shows the remote traceback and nothing of the package (item 4)"):
        run_cell(page, cells.nth(2))
        widget(2).locator(".jr-state", has_text="failed").wait_for(timeout=60_000)
        error = cells.nth(2).locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        error.first.wait_for()
        shown = cells.nth(2).locator(".jp-OutputArea").inner_text()
        assert "y = x / 0" in shown and "ZeroDivisionError: division by zero" in shown
        for word in ("jupyter_remote", "run_cell_magic", "RemoteTraceback"):
            assert word not in shown, shown

    with step("Cancel: the status keeps its row, the answer goes below (item 9)"):
        run_cell(page, cells.nth(3))
        widget(3).locator("pre", has_text="spinning").wait_for(timeout=60_000)
        widget(3).locator("button", has_text="Cancel").click()
        widget(3).locator(".jr-state", has_text="cancelled").wait_for(timeout=30_000)
        widget(3).get_by_text("was interrupted").wait_for()
        widget(3).locator("button", has_text="Cancel").wait_for(state="hidden")
        status = widget(3).locator(".jr-state").locator("xpath=ancestor::div[contains(@class,'widget-html')][1]")
        message = widget(3).get_by_text("was interrupted").locator("xpath=ancestor::div[contains(@class,'widget-html')][1]")
        s, m = status.bounding_box(), message.bounding_box()
        assert s["height"] <= 40, s  # one line: not wrapped by the message
        assert m["y"] >= s["y"] + s["height"] - 1, (s, m)  # the message is below the status

    with step("a map shows its workers, percent and time left (item 5)"):
        run_cell(page, cells.nth(4))
        widget(4).get_by_text(re.compile(r"\d+% · \d+ of 20 done")).wait_for(timeout=60_000)
        widget(4).get_by_text(re.compile(r"100% · 20 of 20 done")).wait_for(timeout=60_000)
        workers = widget(4).locator(".jr-workers")
        assert re.match(r"on \d+ workers?", workers.inner_text())
        assert workers.get_attribute("title").startswith("tcp://")

    with step("a ref card with a preview made on the worker (item 13)"):
        run_cell(page, cells.nth(5))
        card = cells.nth(5).locator(".jupyter-remote-ref")
        card.wait_for(timeout=30_000)
        assert "shape 1000×1000 · dtype float64 · 7.63 MiB" in card.inner_text()
        card.locator(".jr-preview").wait_for()
        assert "(first 5 of 1,000)" in card.locator(".jr-preview").inner_text()

    with step("the kernel reads Busy until a waiting cell ends, through a click (item 6)"):
        run_cell(page, cells.nth(6))
        widget(6).locator("pre", has_text="spinning").wait_for(timeout=60_000)
        page.evaluate(
            """() => {
                window.jrStatus = [];
                const bar = document.querySelector('#jp-main-statusbar') || document.body;
                const read = () => {
                    for (const e of document.querySelectorAll('.jp-StatusBar-Widget')) {
                        const m = e.textContent.match(/\\| (Idle|Busy)/);
                        if (m) { window.jrStatus.push(m[1]); return; }
                    }
                };
                new MutationObserver(read).observe(bar, {subtree: true, childList: true,
                                                         characterData: true});
            }"""
        )
        run_cell(page, cells.nth(7))
        widget(7).locator("pre", has_text="waiting for the gate").wait_for(timeout=60_000)
        page.locator(".jp-StatusBar-Widget", has_text="| Busy").first.wait_for()
        seen_from = page.evaluate("window.jrStatus.lastIndexOf('Busy')")
        widget(6).locator("button", has_text="Cancel").click()  # handled on the subshell
        widget(6).get_by_text("was interrupted").wait_for(timeout=30_000)
        page.wait_for_timeout(1500)  # time for a stray Idle to arrive, were one sent
        assert cells.nth(7).locator(".jp-InputPrompt", has_text="[*]").count() == 1
        statuses = page.evaluate("window.jrStatus")[seen_from:]
        assert "Idle" not in statuses, statuses
        assert page.locator(".jp-StatusBar-Widget", has_text="| Busy").count() >= 1
        gate.write_text("open")
        widget(7).locator(".jr-state", has_text="done").wait_for(timeout=60_000)

    with step("a running call for the pictures"):
        run_cell(page, cells.nth(8))
        widget(8).locator("pre", has_text="spinning").wait_for(timeout=60_000)

    with step("the sidebar lists only what runs, under one name (items 1, 7)"):
        page.locator('.jp-SideBar [data-id="jupyter-remote-sidebar"]').click()
        card = page.locator(".jr-Card", has=page.locator(".jr-Card-name", has_text=re.compile("^local$")))
        card.wait_for(timeout=30_000)
        assert "widgets.ipynb" in card.locator(".jr-Card-figures").inner_text()
        card.locator(".jr-Card-toggle").click()
        calls = card.locator(".jr-Call")
        calls.filter(has_text="running").first.wait_for(timeout=30_000)
        # Finished cells that bound names (the first one, arr and total) are not listed:
        # after the next refresh of the list, one call remains (a wrong list stays longer).
        with page.expect_response(lambda r: "/jupyter-remote/api/clusters" in r.url):
            pass
        try:
            page.wait_for_function("() => document.querySelectorAll("
                                   "'.jr-Card .jr-Call').length === 1", timeout=15_000)
        except Exception:
            pass
        assert calls.count() == 1, [calls.nth(i).inner_text() for i in range(calls.count())]
        page.locator('.jp-SideBar [data-id="jupyter-remote-sidebar"]').click()  # close it

    with step("pictures and axe-core in the light and the dark theme (item 8)"):
        readme = os.environ.get("JUPYTER_REMOTE_SCREENSHOT")
        for dark in (False, True):
            theme = "dark" if dark else "light"
            set_theme(page, dark)
            for i, what in ((1, "done"), (2, "failed"), (3, "cancelled"), (4, "map"),
                            (5, "ref-card"), (8, "running")):
                # In the middle of the view: axe cannot judge what the toolbar covers.
                cells.nth(i).evaluate("e => e.scrollIntoView({block: 'center'})")
                cells.nth(i).screenshot(path=str(artifacts / f"{what}-{theme}.png"))
                if readme and what == "done":
                    name = "cell-dark.png" if dark else "cell.png"
                    cells.nth(i).screenshot(path=str(Path(readme) / name))
                # Ours, not JupyterLab's own prompts (covered by its prompt overlay).
                cell = f'.jp-Notebook [data-windowed-list-index="{i}"]'
                where = f"{cell} .jupyter-remote-call, {cell} .jupyter-remote-ref"
                violations = axe_violations(page, where, A11Y_RULES)
                assert not violations, f"axe-core, {what}, {theme} theme:\n{describe(violations)}"
        set_theme(page, False)


def test_a_sidebar_cancel_that_finds_nothing_says_so(lab, page, step, artifacts, tmp_path):
    """Item 1: the call ends between the sidebar's listing and the click. The page's timers
    are paused (Playwright's clock) so the list stays as the user saw it; the server, the
    kernel and the cluster run as usual."""
    gate = tmp_path / "gate"
    gated = GATED.format(gate=str(gate)).replace("%%remote --out gated", "%%remote --no-wait --out gated")
    write_notebook(lab.root / "late.ipynb", "%load_ext jupyter_remote", gated)
    cells = page.locator(".jp-Notebook .jp-Cell")
    page.clock.install()
    asking: set = set()  # the sidebar's requests still waiting for their answer
    page.on("request", lambda r: asking.add(r) if "/jupyter-remote/api/" in r.url else None)
    page.on("requestfinished", lambda r: asking.discard(r))
    page.on("requestfailed", lambda r: asking.discard(r))

    with step("run a call that waits for the test"):
        page.goto(f"{lab.url}/lab/tree/late.ipynb?reset&token={lab.token}")
        page.locator(".jp-StatusBar-Widget", has_text="| Idle").first.wait_for(timeout=60_000)
        run_cell(page, cells.nth(0))
        cells.nth(0).locator(".jp-InputPrompt", has_text="[1]").wait_for(timeout=60_000)
        run_cell(page, cells.nth(1))
        cells.nth(1).locator(".jupyter-remote-call pre", has_text="waiting for the gate").wait_for(
            timeout=90_000
        )

    with step("the sidebar lists it as running"):
        page.locator('.jp-SideBar [data-id="jupyter-remote-sidebar"]').click()
        card = page.locator(".jr-Card", has=page.locator(".jr-Card-name", has_text=re.compile("^local$")))
        card.wait_for(timeout=30_000)
        card.locator(".jr-Card-toggle").click()
        call = card.locator(".jr-Call", has_text="late.ipynb").filter(has_text="running")
        call.wait_for(timeout=30_000)
        name = card.get_attribute("data-cluster")

    with step("the call ends while the list is on screen; Cancel says nothing was stopped"):
        now = datetime.fromtimestamp(page.evaluate("Date.now()") / 1000 + 0.01)
        page.clock.pause_at(now)  # the page's timers stop: the list is not refreshed now
        # A refresh already under way ends before the call does: what it draws was listed
        # while the call ran. (Polled in real time: the page's own clock is paused.)
        for _ in range(600):
            if not asking:
                break
            page.wait_for_timeout(50)
        assert not asking, [r.url for r in asking]
        assert call.count() == 1
        gate.write_text("open")
        cells.nth(1).locator(".jr-state", has_text="done").wait_for(timeout=60_000)

        def listed() -> list:
            code, detail = lab.request("GET", f"jupyter-remote/api/clusters/{name}")
            assert code == 200, detail
            return [c for c in detail["calls"] if "late.ipynb" in (c.get("notebook") or "")]

        deadline = 60
        while listed() and deadline:
            page.wait_for_timeout(250)
            deadline -= 1
        assert not listed()
        assert call.count() == 1  # still on screen, as the user saw it
        call.locator('[data-action="cancel-call"]').click()
        error = page.locator(".jr-Sidebar .jr-Error", has_text="nothing to stop")
        error.wait_for(timeout=30_000)
        text = error.inner_text()
        assert "cluster 'local'" in text and name not in text, text  # its name, not its key
        page.locator(".jr-Sidebar").screenshot(path=str(artifacts / "nothing-to-stop.png"))
        page.clock.resume()
