"""The Remote clusters sidebar in a real JupyterLab, driven in Chromium with real clicks.

Screenshots of the sidebar in the light and the dark theme are saved in
``tests/ui/artifacts/<test>/`` (or ``$JUPYTER_REMOTE_UI_ARTIFACTS``); each step that fails
leaves one there too, named in the failure message. With ``JUPYTER_REMOTE_SCREENSHOT=docs/``
the test also saves ``sidebar.png`` and ``sidebar-dark.png`` for the README.
"""

from __future__ import annotations

import http.client
import os
import re
from pathlib import Path

import pytest

from jupyter_remote.core import registry
from tests import wheelhouse
from tests.ui.browser import axe_violations, describe, set_theme

pytestmark = pytest.mark.slow

# What the accessibility pass must find none of, in either theme.
A11Y_RULES = ("color-contrast", "label", "button-name", "select-name", "aria-allowed-attr")


def record_pending(page, cluster: str) -> None:
    """Record every pending state the card shows (a MutationObserver), so a short one is
    seen however fast the cluster reports the change."""
    page.evaluate(
        """name => {
            const card = document.querySelector(`.jr-Card[data-cluster="${name}"]`);
            window.jrPending = [];
            new MutationObserver(() => {
                const p = card.dataset.pending;
                if (p) window.jrPending.push(p + ':' + card.querySelector('.jr-Pending').textContent);
            }).observe(card, {attributes: true, attributeFilter: ['data-pending'], subtree: true,
                              childList: true, characterData: true});
        }""",
        cluster,
    )


def sidebar_shot(page, path: Path) -> None:
    top = page.locator("#jupyter-remote-sidebar").bounding_box()
    bottom = page.locator(".jr-ClusterList").bounding_box()
    page.screenshot(
        path=str(path),
        clip={
            "x": top["x"],
            "y": top["y"],
            "width": top["width"],
            "height": min(bottom["y"] + bottom["height"] + 8 - top["y"], top["height"]),
        },
    )


def check_a11y(page, theme: str, selector: str = "#jupyter-remote-sidebar") -> None:
    violations = axe_violations(page, selector, A11Y_RULES)
    assert not violations, f"axe-core in the {theme} theme:\n{describe(violations)}"


def test_sidebar_creates_scales_uses_and_shuts_down_a_cluster(lab, page, step, artifacts):
    card = page.locator('.jr-Card[data-cluster="lab-ui"]')
    cells = page.locator(".jp-Notebook .jp-Cell")
    shots: list[Path] = []

    with step("open the notebook and load the extension"):
        page.goto(f"{lab.url}/lab/tree/remote.ipynb?reset&token={lab.token}")
        cells.first.wait_for()
        # The kernel must be connected (status bar "| Idle") or the run is dropped.
        page.locator(".jp-StatusBar-Widget", has_text="| Idle").first.wait_for(timeout=60_000)
        cells.first.locator(".cm-content").click()
        page.keyboard.press("Shift+Enter")
        cells.first.locator(".jp-InputPrompt", has_text="[1]").wait_for(timeout=60_000)

    with step("open the sidebar"):
        page.locator('.jp-SideBar [data-id="jupyter-remote-sidebar"]').click()
        page.locator(".jr-Sidebar").wait_for()
        page.locator(".jr-Sidebar-title", has_text="Remote clusters").wait_for()

    with step("the New cluster form: titled options, each label above its input"):
        page.locator('[data-action="new-cluster"]').click()
        form = page.locator(".jr-Form")
        form.get_by_label("Template").wait_for()
        assert form.get_by_label("Template").evaluate("e => e.tagName") == "SELECT"
        assert "jp-mod-styled" in form.get_by_label("Template").get_attribute("class")
        for title in ("Name", "Workers", "Threads per worker", "Memory per worker"):
            control = form.get_by_label(title, exact=True)
            assert "jp-mod-styled" in control.get_attribute("class"), title
            label = form.locator("label", has_text=re.compile(f"^{title}$"))
            lb, cb = label.bounding_box(), control.bounding_box()
            assert lb["y"] + lb["height"] <= cb["y"] + 1, (title, lb, cb)  # above, not beside
            # Nothing clipped at the sidebar's default width.
            assert label.evaluate("e => e.scrollWidth <= e.clientWidth"), title
        assert form.get_by_text("Threads in each worker process.").is_visible()
        assert "jp-mod-accept" in form.locator('[data-action="start-cluster"]').get_attribute(
            "class"
        )
        shots.append(artifacts / "form-at-default-width.png")
        form.screenshot(path=str(shots[-1]))
        check_a11y(page, "light")
        # The check can fail: grey on grey and an unlabelled input are caught.
        page.evaluate(
            """() => {
                const bad = document.createElement('div');
                bad.id = 'jr-axe-control';
                bad.innerHTML = '<span style="color:#bbb;background:#ccc">faint</span><input>';
                document.querySelector('.jr-Form').appendChild(bad);
            }"""
        )
        found = axe_violations(page, "#jupyter-remote-sidebar", A11Y_RULES)
        assert {"color-contrast", "label"} <= {v["id"] for v in found}, describe(found)
        page.evaluate("() => document.getElementById('jr-axe-control').remove()")

    with step("create a cluster from the form"):
        form.get_by_label("Name", exact=True).fill("lab-ui")
        form.get_by_label("Workers", exact=True).fill("1")
        form.locator('[data-action="start-cluster"]').click()
        card.wait_for()
        page.locator('.jr-Card[data-cluster="lab-ui"][data-status="running"]').wait_for(
            timeout=90_000
        )
        assert registry.get("lab-ui")["source"] == "server"

    with step("the server's error message reaches the user"):
        page.locator('[data-action="new-cluster"]').click()
        form.get_by_label("Name", exact=True).fill("lab-ui")
        form.locator('[data-action="start-cluster"]').click()
        form.locator(".jr-Error", has_text="a cluster named 'lab-ui' already exists").wait_for()
        form.locator('[data-action="cancel-form"]').click()
        form.wait_for(state="hidden")

    with step("insert a %%remote cell: the cursor is in its editor, typing goes there"):
        card.locator('[data-action="insert-cell"]').click()
        cell = cells.filter(has=page.locator(".cm-content", has_text="%%remote lab-ui"))
        cell.wait_for()
        page.locator(".jp-Notebook.jp-mod-editMode").wait_for()
        # Typed at once, with no click: in command mode "m" and "d d" would be shortcuts.
        page.keyboard.type("import os\nprint('remote says', 6 * 7, os.getpid() != 0)")
        assert cells.count() == 2  # the empty cell left by Shift+Enter was reused
        cell.locator(".cm-content", has_text="print('remote says'").wait_for()
        page.keyboard.press("Shift+Enter")
        cell.locator(".jp-OutputArea", has_text="remote says 42 True").wait_for(timeout=60_000)

    with step("the card of the cluster the notebook's kernel uses is marked"):
        address = card.locator(".jr-Card-address").inner_text().strip()
        assert address.startswith("tcp://"), address
        connect = cells.nth(2)
        connect.locator(".cm-content").click()
        page.keyboard.type(f"%remote connect {address} --name nb-link")
        page.keyboard.press("Shift+Enter")
        connect.locator(".jp-OutputArea", has_text="connected 'nb-link'").wait_for(timeout=60_000)
        linked = page.locator('.jr-Card[data-cluster="nb-link"]')
        linked.wait_for()
        page.locator('.jr-Card[data-cluster="nb-link"][data-active="true"]').wait_for()
        assert linked.locator(".jr-Card-active", has_text="this notebook").is_visible()
        assert linked.get_attribute("data-owner") == "true"  # its kernel named it
        # lab-ui is marked too: the notebook's kernel uses it (by name and by address),
        # started from the sidebar (tests/ui/test_sidebar_marks.py has the whole story).
        page.locator('.jr-Card[data-cluster="lab-ui"][data-active="true"]').wait_for()
        assert card.get_attribute("data-owner") == "false"

    with step("Scale: a JupyterLab dialog, then a pending state until 2 workers run"):
        record_pending(page, "lab-ui")
        card.locator('[data-action="scale"]').click()
        dialog = page.locator(".jp-Dialog")
        dialog.get_by_label("Workers", exact=True).fill("2")
        check_a11y(page, "light", ".jp-Dialog-content")
        shots.append(artifacts / "scale-dialog-light.png")
        dialog.locator(".jp-Dialog-content").screenshot(path=str(shots[-1]))
        dialog.locator(".jp-Dialog-button.jp-mod-accept", has_text="Scale").click()
        dialog.wait_for(state="detached")
        card.locator(".jr-Card-figures", has_text="2 workers").wait_for(timeout=60_000)
        page.locator('.jr-Card[data-cluster="lab-ui"][data-pending=""]').wait_for()
        seen = page.evaluate("window.jrPending")
        assert any(p.startswith("workers:Scaling to 2 workers") for p in seen), seen
        assert card.locator(".jr-Pending").is_hidden()

    with step("Adapt between 3 and 4 (bad bounds are refused), pending until 3 run"):
        card.locator('[data-action="scale"]').click()
        dialog.get_by_label("Scaling").select_option("adaptive")
        dialog.get_by_label("Minimum workers").fill("3")
        dialog.get_by_label("Maximum workers").fill("1")
        dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
        refused = page.locator(".jr-Sidebar > .jr-Error", has_text="0 <= minimum <= maximum")
        refused.wait_for()
        page.locator('.jr-Card[data-cluster="lab-ui"][data-pending=""]').wait_for()
        assert registry.get("lab-ui").get("adaptive") is None  # nothing changed
        record_pending(page, "lab-ui")
        card.locator('[data-action="scale"]').click()
        dialog.get_by_label("Scaling").select_option("adaptive")
        dialog.get_by_label("Minimum workers").fill("3")
        dialog.get_by_label("Maximum workers").fill("4")
        dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
        card.locator(".jr-Card-figures", has_text="adaptive 3–4").wait_for()
        assert not refused.is_visible()
        assert registry.get("lab-ui")["adaptive"] == {"minimum": 3, "maximum": 4}
        # Applied, not only recorded: Dask's adaptive scaling brings the cluster up to 3.
        card.locator(".jr-Card-figures", has_text="3 workers").wait_for(timeout=90_000)
        page.locator('.jr-Card[data-cluster="lab-ui"][data-pending=""]').wait_for()
        seen = page.evaluate("window.jrPending")
        assert any(p.startswith("adaptive:Adapting to 3–4 workers") for p in seen), seen

    with step("open the whole dashboard in a tab, through the authenticated proxy"):
        card.locator('[data-action="dashboard"]').click()
        frame = page.locator(".jr-Dashboard:not(.jr-mod-plot) iframe")
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

    with step("dock the individual plots beside the notebook"):
        notebook = page.locator(".jp-NotebookPanel")
        for plot, title in [
            ("individual-task-stream", "Task stream: lab-ui"),
            ("individual-progress", "Progress: lab-ui"),
            ("individual-workers-memory", "Worker memory: lab-ui"),
        ]:
            card.locator(f'[data-plot="{plot}"]').click()
            pane = page.locator(f'.jr-Dashboard[data-plot="{plot}"]')
            pane.wait_for()
            page.locator(".lm-TabBar-tab", has_text=title).wait_for()
            src = pane.locator("iframe").get_attribute("src")
            assert "/proxy/" in src and src.endswith("/" + plot), src
            response = page.request.get(lab.url + src)
            assert response.status == 200 and "bokeh" in response.text().lower(), src
            # Docked: the notebook and the plot are on screen side by side.
            assert notebook.is_visible() and pane.is_visible()
            nb, box = notebook.bounding_box(), pane.bounding_box()
            assert box["x"] >= nb["x"] + nb["width"] - 2, (nb, box)

    with step("expand the card: environments and calls"):
        card.locator(".jr-Card-toggle").click()
        card.locator(".jr-Card-details", has_text="No requirement environments").wait_for()
        card.locator(".jr-Card-details", has_text="No remote calls running").wait_for()

    with step("an environment: grouped by requirement, cut to the card, whole on hover"):
        toy = wheelhouse.wheel(str(lab.root.parent / "wheels"), "jrsidebarui", "1.5")
        card.locator('[data-action="insert-cell"]').click()
        built = cells.nth(cells.count() - 1)  # this cell, not the one Shift+Enter adds
        built.locator(".cm-content", has_text="%%remote lab-ui").wait_for()
        page.keyboard.press("Control+Home")
        page.keyboard.press("End")
        page.keyboard.type(f" --reqs {toy}")
        page.keyboard.press("Control+End")
        page.keyboard.type("import jrsidebarui\nprint('toy', jrsidebarui.VERSION)")
        page.keyboard.press("Shift+Enter")
        built.locator(".jp-OutputArea", has_text="toy 1.5").wait_for(timeout=120_000)
        requirement = card.locator(".jr-EnvGroup .jr-Req", has_text="jrsidebarui")
        requirement.wait_for()
        assert requirement.get_attribute("title") == requirement.inner_text() == toy
        assert requirement.evaluate("e => e.scrollWidth > e.clientWidth")  # cut, with "…"
        assert requirement.evaluate("e => getComputedStyle(e).textOverflow") == "ellipsis"
        assert card.evaluate("e => e.scrollWidth <= e.clientWidth")  # nothing runs out
        assert card.locator(".jr-EnvGroup").count() == 1
        assert card.locator(".jr-EnvGroup .jr-Env", has_text="1 host").count() == 1

    with step("a running call is listed with its notebook"):
        card.locator('[data-action="insert-cell"]').click()
        slow = cells.nth(cells.count() - 1)
        slow.locator(".cm-content", has_text="%%remote lab-ui").wait_for()
        page.keyboard.press("Control+Home")
        page.keyboard.press("End")
        page.keyboard.type(" --no-wait")
        page.keyboard.press("Control+End")
        page.keyboard.type("import time\ntime.sleep(300)")
        page.keyboard.press("Shift+Enter")
        call = card.locator(".jr-Call", has_text="remote.ipynb")
        call.filter(has_text="running").wait_for(timeout=60_000)

    with step("screenshots and axe-core in the light and the dark theme"):
        readme = os.environ.get("JUPYTER_REMOTE_SCREENSHOT")
        for dark in (False, True):
            theme = "dark" if dark else "light"
            set_theme(page, dark)
            call.wait_for()
            shots.append(artifacts / f"sidebar-{theme}.png")
            sidebar_shot(page, shots[-1])
            shots.append(artifacts / f"lab-{theme}.png")
            page.screenshot(path=str(shots[-1]))
            if readme:
                name = "sidebar-dark.png" if dark else "sidebar.png"
                sidebar_shot(page, Path(readme) / name)
            check_a11y(page, theme)
            page.locator('[data-action="new-cluster"]').click()
            form.wait_for()
            shots.append(artifacts / f"form-{theme}.png")
            form.screenshot(path=str(shots[-1]))
            check_a11y(page, theme)
            form.locator('[data-action="cancel-form"]').click()
        set_theme(page, False)

    with step("Cancel stops the running call"):
        # The card redraws every few seconds: a click that lands while its row is being
        # replaced reaches a detached node, as a person's would; like them, click again
        # (three times at most), each time giving the cancel 20 s to show.
        for attempt in range(3):
            call.locator('[data-action="cancel-call"]').click()
            try:
                call.wait_for(state="detached", timeout=20_000)
                break
            except Exception:
                if attempt == 2:
                    raise
        card.locator(".jr-Card-details", has_text="No remote calls running").wait_for()

    with step("Shut down asks first; Cancel keeps the cluster"):
        card.locator('[data-action="shutdown"]').click()
        dialog.get_by_text("Shut down cluster lab-ui?").wait_for()
        dialog.locator(".jp-Dialog-button", has_text="Cancel").click()
        dialog.wait_for(state="detached")
        assert registry.get("lab-ui")["status"] == "running"
        assert page.locator(".jr-Dashboard").count() == 4

    with step("Shut down closes the cluster's dashboards and the card goes"):
        card.locator('[data-action="shutdown"]').click()
        dialog.locator(".jp-Dialog-button.jp-mod-warn", has_text="Shut down").click()
        page.locator(".jr-Dashboard").first.wait_for(state="detached")
        assert page.locator(".jr-Dashboard").count() == 0
        card.wait_for(state="detached", timeout=60_000)
        assert registry.get("lab-ui") is None

    print("\nsidebar screenshots:\n  " + "\n  ".join(str(s) for s in shots))
