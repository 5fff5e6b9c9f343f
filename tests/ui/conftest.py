"""A real ``jupyter lab`` on loopback with a token, and Debian's Chromium driven by Playwright.

The browser is the system's (``apt-get install chromium``); Playwright's own browser download
is never used. Tests skip, loudly, only when no Chromium binary is installed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import warnings

import pytest

from tests.server.realserver import JupyterProcess, kill_launchers

try:
    import jupyterlab  # noqa: F401
    import playwright  # noqa: F401
except ImportError:  # without the `ui-test` extra: say so, loudly, and collect nothing here
    warnings.warn(
        'tests/ui NOT RUN: install the ui-test extra (pip install -e ".[test,ui-test]")',
        stacklevel=1,
    )
    collect_ignore_glob = ["test_*.py"]

CHROMIUM = os.environ.get("JUPYTER_REMOTE_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture
def registry_path(registry_path):
    """The test's own registry (tests/conftest.py); its sidebar clusters die with the test."""
    yield registry_path
    kill_launchers(registry_path)


def write_notebook(path, *sources: str) -> None:
    """A notebook of code cells with these sources, for the Python 3 kernel."""
    notebook = {
        "cells": [
            {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
             "source": source}
            for source in sources
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }  # fmt: skip
    path.write_text(json.dumps(notebook))


@pytest.fixture
def lab(tmp_path, registry_path):
    server = JupyterProcess(tmp_path, registry_path, app="lab")
    write_notebook(server.root / "remote.ipynb", "%load_ext jupyter_remote")
    server.start()
    yield server
    with contextlib.suppress(Exception):
        server.request("DELETE", "api/kernels/" + "")  # nothing; kernels die with the server
    server.stop()


@pytest.fixture
def page(tmp_path):
    if not shutil.which(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}: run .ci/ui-setup.sh (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.set_default_timeout(30_000)
        yield page
        context.close()
        browser.close()
