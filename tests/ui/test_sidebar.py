"""The Remote clusters sidebar in a real JupyterLab, driven in Chromium.

Each step that fails leaves a screenshot (its path is in the failure message): in
``$JUPYTER_REMOTE_UI_ARTIFACTS`` if set, else in the test's tmp directory. With
``JUPYTER_REMOTE_SCREENSHOT=docs/sidebar.png`` the test also saves the sidebar picture used in
the README.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
from pathlib import Path

import pytest

from jupyter_remote.core import registry

pytestmark = pytest.mark.slow


@pytest.fixture
def step(page, tmp_path):
    where = Path(os.environ.get("JUPYTER_REMOTE_UI_ARTIFACTS") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def run(name: str):
        try:
            yield
        except BaseException as exc:
            shot = where / f"failed-{re.sub(r'[^a-z0-9]+', '-', name.lower())}.png"
            with contextlib.suppress(Exception):
                page.screenshot(path=str(shot), full_page=True)
            raise AssertionError(f"step {name!r} failed ({exc}); screenshot: {shot}") from exc

    return run


def test_sidebar_creates_scales_uses_and_shuts_down_a_cluster(lab, page, step):
    card = page.locator('.jr-Card[data-cluster="lab-ui"]')

    with step("open the notebook and load the extension"):
        page.goto(f"{lab.url}/lab/tree/remote.ipynb?reset&token={lab.token}")
        page.locator(".jp-Notebook .jp-Cell").first.wait_for()
        # The kernel must be connected (status bar "| Idle") or the run is dropped.
        page.locator(".jp-StatusBar-Widget", has_text="| Idle").first.wait_for(timeout=60_000)
        page.locator(".jp-Notebook .jp-Cell .cm-content").first.click()
        page.keyboard.press("Shift+Enter")
        page.locator(".jp-Notebook .jp-Cell").first.locator(
            ".jp-InputPrompt", has_text="[1]"
        ).wait_for(timeout=60_000)

    with step("open the sidebar"):
        page.locator('.jp-SideBar [data-id="jupyter-remote-sidebar"]').click()
        page.locator(".jr-Sidebar").wait_for()
        page.locator(".jr-Sidebar-title", has_text="Remote clusters").wait_for()

    with step("create a cluster from the form"):
        page.locator('[data-action="new-cluster"]').click()
        form = page.locator(".jr-Form")
        form.locator('select[name="template"]').wait_for()
        form.locator('input[name="name"]').fill("lab-ui")
        form.locator('input[name="n_workers"]').fill("1")
        form.locator('[data-action="start-cluster"]').click()
        card.wait_for()
        page.locator('.jr-Card[data-cluster="lab-ui"][data-status="running"]').wait_for(
            timeout=90_000
        )
        assert registry.get("lab-ui")["source"] == "server"

    with step("the server's error message reaches the user"):
        page.locator('[data-action="new-cluster"]').click()
        form.locator('input[name="name"]').fill("lab-ui")
        form.locator('[data-action="start-cluster"]').click()
        form.locator(".jr-Error", has_text="a cluster named 'lab-ui' already exists").wait_for()
        form.locator("button", has_text="Cancel").click()
        form.wait_for(state="hidden")

    with step("scale it to 2 workers"):
        card.locator('[data-field="workers"]').fill("2")
        card.locator('[data-action="scale"]').click()
        card.locator(".jr-Card-figures", has_text="2 workers").wait_for(timeout=60_000)

    with step("make it adaptive between 3 and 4 workers (it grows to 3); bad bounds are refused"):
        bounds = card.locator(".jr-Card-manage .jr-Card-row").nth(1).locator("input")
        bounds.nth(0).fill("3")
        bounds.nth(1).fill("1")
        card.locator('[data-action="adapt"]').click()
        refused = page.locator(".jr-Sidebar > .jr-Error", has_text="0 <= minimum <= maximum")
        refused.wait_for()
        assert registry.get("lab-ui").get("adaptive") is None  # nothing changed
        page.wait_for_timeout(3000)  # the sidebar refreshes every 2 s meanwhile
        assert refused.is_visible()  # an action's error stays until the next action
        bounds.nth(0).fill("3")
        bounds.nth(1).fill("4")
        card.locator('[data-action="adapt"]').click()
        card.locator(".jr-Card-figures", has_text="adaptive 3–4").wait_for()
        assert not refused.is_visible()
        assert registry.get("lab-ui")["adaptive"] == {"minimum": 3, "maximum": 4}
        # Applied, not only recorded: Dask's adaptive scaling brings the cluster up to 3.
        card.locator(".jr-Card-figures", has_text="3 workers").wait_for(timeout=90_000)

    with step("open the dashboard in a tab, through the authenticated proxy"):
        card.locator('[data-action="dashboard"]').click()
        frame = page.locator(".jp-IFrame iframe")
        frame.wait_for()
        src = frame.get_attribute("src")
        assert "/proxy/" in src, src
        page.locator(".lm-TabBar-tab", has_text="Dashboard: lab-ui").wait_for()
        # The browser's Jupyter login reaches it; no login does not.
        assert page.request.get(lab.url + src).status == 200
        anonymous = http.client.HTTPConnection("127.0.0.1", lab.port, timeout=30)
        anonymous.request("GET", src)
        assert anonymous.getresponse().status in (302, 401, 403)
        anonymous.close()
        page.locator(".lm-TabBar-tab", has_text="remote.ipynb").click()

    with step("expand the card: environments and calls"):
        card.locator(".jr-Card-toggle").click()
        card.locator(".jr-Card-details", has_text="No requirement environments").wait_for()
        card.locator(".jr-Card-details", has_text="No remote calls running").wait_for()

    with step("insert the %%remote cell, run it and see its output"):
        card.locator('[data-action="insert-cell"]').click()
        cells = page.locator(".jp-Notebook .jp-Cell")
        cell = cells.filter(has=page.locator(".cm-content", has_text="%%remote lab-ui"))
        cell.wait_for()
        assert cells.count() == 2  # the empty cell left by Shift+Enter was reused
        cell.locator(".cm-content").click()
        page.keyboard.press("Control+End")
        page.keyboard.type("import os\nprint('remote says', 6 * 7, os.getpid() != 0)")
        page.keyboard.press("Shift+Enter")
        cell.locator(".jp-OutputArea", has_text="remote says 42 True").wait_for(timeout=60_000)

    with step("a running call is listed with its notebook, and Cancel stops it"):
        card.locator('[data-action="insert-cell"]').click()
        slow = cells.nth(2)
        slow.locator(".cm-content", has_text="%%remote lab-ui").wait_for()
        slow.locator(".cm-content").click()
        page.keyboard.press("Control+Home")
        page.keyboard.press("End")
        page.keyboard.type(" --no-wait")
        page.keyboard.press("Control+End")
        page.keyboard.type("import time\ntime.sleep(300)")
        page.keyboard.press("Shift+Enter")
        call = card.locator(".jr-Call", has_text="remote.ipynb")
        call.filter(has_text="running").wait_for(timeout=60_000)
        shot = os.environ.get("JUPYTER_REMOTE_SCREENSHOT")
        if shot:  # the README's picture, with the sidebar widened for it
            handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first
            box = handle.bounding_box()
            if box:
                page.mouse.move(box["x"] + 1, box["y"] + 200)
                page.mouse.down()
                page.mouse.move(box["x"] + 120, box["y"] + 200, steps=5)
                page.mouse.up()
            page.wait_for_timeout(2500)  # one refresh at the new width
            top = page.locator("#jupyter-remote-sidebar").bounding_box()
            bottom = card.bounding_box()
            page.screenshot(
                path=shot,
                clip={
                    "x": top["x"],
                    "y": top["y"],
                    "width": top["width"],
                    "height": bottom["y"] + bottom["height"] + 8 - top["y"],
                },
            )
        call.locator('[data-action="cancel-call"]').click()
        call.wait_for(state="detached", timeout=30_000)
        card.locator(".jr-Card-details", has_text="No remote calls running").wait_for()

    with step("shut the cluster down"):
        card.locator('[data-action="shutdown"]').click()
        card.wait_for(state="detached", timeout=60_000)
        assert registry.get("lab-ui") is None
