"""The sidebar's marks in a real JupyterLab, with real clicks (issue 13, items 14 and 15):
the card of a sidebar cluster that the active notebook uses by name (``%%remote NAME``) is
marked "this notebook", and no other card is; the mark goes when the kernel disconnects and
when it shuts down. The environment a call built on that cluster is marked "built here" on its
card, and listed without the mark on another cluster's card whose hosts share the environment
root. Screenshots in the light and the dark theme, and axe-core in both.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jupyter_remote.core import registry
from tests import wheelhouse
from tests.ui.browser import set_theme
from tests.ui.test_sidebar import check_a11y, sidebar_shot

pytestmark = pytest.mark.slow


def card_of(page, name: str, **state: str):
    """The card of cluster ``name`` (with ``data-<key>="<value>"`` for each of ``state``)."""
    attrs = "".join(f'[data-{k}="{v}"]' for k, v in state.items())
    return page.locator(f'.jr-Card[data-cluster="{name}"]{attrs}')


def create(page, name: str) -> None:
    """Start a one-worker cluster from the New cluster form."""
    page.locator('[data-action="new-cluster"]').click()
    form = page.locator(".jr-Form")
    form.get_by_label("Name", exact=True).fill(name)
    form.get_by_label("Workers", exact=True).fill("1")
    form.locator('[data-action="start-cluster"]').click()
    form.wait_for(state="hidden")
    card_of(page, name).wait_for()


def run_in_new_cell(page, cells, card, head_options: str, body: str, expect: str) -> None:
    """Insert a ``%%remote`` cell from ``card``, add options and a body, run it, wait."""
    card.locator('[data-action="insert-cell"]').click()
    cell = cells.nth(cells.count() - 1)  # this cell, not the one Shift+Enter adds after it
    cell.locator(".cm-content", has_text="%%remote").wait_for()
    page.keyboard.press("Control+Home")
    page.keyboard.press("End")
    page.keyboard.type(head_options)
    page.keyboard.press("Control+End")
    page.keyboard.type(body)
    page.keyboard.press("Shift+Enter")
    cell.locator(".jp-OutputArea", has_text=expect).wait_for(timeout=120_000)


def test_the_sidebar_marks_the_clusters_and_environments_of_the_notebook(
    lab, page, step, artifacts
):
    cells = page.locator(".jp-Notebook .jp-Cell")
    used, other = card_of(page, "lab-used"), card_of(page, "lab-other")
    shots: list[Path] = []

    with step("open the notebook, load the extension, open the sidebar"):
        page.goto(f"{lab.url}/lab/tree/remote.ipynb?reset&token={lab.token}")
        cells.first.wait_for()
        page.locator(".jp-StatusBar-Widget", has_text="| Idle").first.wait_for(timeout=60_000)
        cells.first.locator(".cm-content").click()
        page.keyboard.press("Shift+Enter")
        cells.first.locator(".jp-InputPrompt", has_text="[1]").wait_for(timeout=60_000)
        page.locator('.jp-SideBar [data-id="jupyter-remote-sidebar"]').click()
        page.locator(".jr-Sidebar-title", has_text="Remote clusters").wait_for()

    with step("two clusters from the sidebar; the notebook uses neither yet"):
        create(page, "lab-used")
        create(page, "lab-other")
        for name in ("lab-used", "lab-other"):
            card_of(page, name, status="running").wait_for(timeout=90_000)
            assert card_of(page, name).get_attribute("data-active") == "false"
            assert card_of(page, name).locator(".jr-Card-active").is_hidden()

    with step("a %%remote cell on lab-used, with requirements, marks that card only"):
        toy = wheelhouse.wheel(str(lab.root.parent / "wheels"), "jrmarks", "2.5")
        run_in_new_cell(page, cells, used, f" --reqs {toy}",
                        "import jrmarks\nprint('toy', jrmarks.VERSION)", "toy 2.5")  # fmt: skip
        card_of(page, "lab-used", active="true").wait_for()
        badge = used.locator(".jr-Card-active")
        assert badge.is_visible() and badge.inner_text() == "this notebook"
        assert badge.get_attribute("title") == "The active notebook's kernel uses this cluster"
        assert used.get_attribute("data-owner") == "false"  # used by name, started elsewhere
        assert other.get_attribute("data-active") == "false"
        assert other.locator(".jr-Card-active").is_hidden()
        (user,) = registry.get("lab-used")["users"]
        assert user["notebook"].endswith("remote.ipynb")

    with step("the environment is marked on lab-used's card, not on lab-other's"):
        for card in (used, other):
            card.locator(".jr-Card-toggle").click()
            card.locator(".jr-EnvGroup .jr-Req", has_text="jrmarks").wait_for()
        mine = used.locator(".jr-Env")
        theirs = other.locator(".jr-Env")
        assert mine.count() == theirs.count() == 1
        assert mine.get_attribute("data-env") == theirs.get_attribute("data-env")  # one env
        assert mine.get_attribute("data-built-here") == "true"
        assert mine.locator(".jr-Env-here", has_text="built here").is_visible()
        assert "built for a call on this cluster" in mine.get_attribute("title")
        assert theirs.get_attribute("data-built-here") == "false"
        assert theirs.locator(".jr-Env-here").count() == 0
        assert "built for another cluster" in theirs.get_attribute("title")
        assert used.evaluate("e => e.scrollWidth <= e.clientWidth")  # the badge fits the card

    with step("screenshots and axe-core in the light and the dark theme"):
        for dark in (False, True):
            theme = "dark" if dark else "light"
            set_theme(page, dark)
            card_of(page, "lab-used", active="true").wait_for()
            shots.append(artifacts / f"marks-{theme}.png")
            sidebar_shot(page, shots[-1])
            check_a11y(page, theme)
        set_theme(page, False)

    with step("disconnecting takes the mark away; using the cluster again brings it back"):
        close = cells.nth(cells.count() - 1)
        close.locator(".cm-content").click()
        page.keyboard.type("import jupyter_remote\njupyter_remote.cluster('lab-used').close()")
        page.keyboard.press("Shift+Enter")
        card_of(page, "lab-used", active="false").wait_for()
        assert used.locator(".jr-Card-active").is_hidden()
        assert registry.get("lab-used")["users"] == []
        run_in_new_cell(page, cells, used, "", "print('again', 1 + 1)", "again 2")
        card_of(page, "lab-used", active="true").wait_for()
        assert other.get_attribute("data-active") == "false"

    with step("shutting the kernel down takes the mark away"):
        page.locator(".lm-MenuBar-itemLabel", has_text="Kernel").click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Shut Down Kernel$")).click()
        page.locator(".jp-StatusBar-Widget", has_text="No Kernel").first.wait_for()
        card_of(page, "lab-used", active="false").wait_for(timeout=30_000)
        assert registry.get("lab-used")["users"] == []
        # The environment stays marked: it was built for this cluster, whoever uses it now.
        assert used.locator(".jr-Env").get_attribute("data-built-here") == "true"

    print("\nsidebar mark screenshots:\n  " + "\n  ".join(str(s) for s in shots))
