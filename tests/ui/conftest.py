"""A real ``jupyter lab`` on loopback with a token, and Debian's Chromium driven by Playwright.

The browser is the system's (``apt-get install chromium``); Playwright's own browser download
is never used. Tests skip, loudly, only when no Chromium binary is installed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import warnings

import pytest

from tests.server.realserver import JupyterProcess, kill_launchers
from tests.ui.browser import artifacts_dir

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


def private_environment(tmp_path) -> dict[str, str]:
    """Folders of this test's own for what the server, its kernels, launchers and workers
    read and write: the environment root, Dask's config and temporary folders and Jupyter's
    data folder (the last two start as copies of the run's pinned ones, tests/hermetic.py, so
    the run's kernelspecs and settings hold; nothing is the user's, and nothing one browser
    test leaves is seen by the next)."""
    import shutil

    from jupyter_core.paths import jupyter_data_dir

    out = {
        "DASK_JUPYTER_REMOTE__ENVIRONMENTS__ROOT": tmp_path / "envs",
        "DASK_TEMPORARY_DIRECTORY": tmp_path / "dask-tmp",
    }
    for path in out.values():
        path.mkdir(parents=True, exist_ok=True)
    copies = {
        "DASK_CONFIG": (os.environ.get("DASK_CONFIG"), tmp_path / "dask-config"),
        "JUPYTER_DATA_DIR": (jupyter_data_dir(), tmp_path / "jupyter-data"),
    }
    for key, (source, target) in copies.items():
        if source and os.path.isdir(source):
            shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
        else:
            target.mkdir(parents=True, exist_ok=True)
        out[key] = target
    return {key: str(path) for key, path in out.items()}


@pytest.fixture
def lab(tmp_path, registry_path):
    server = JupyterProcess(tmp_path, registry_path, app="lab")
    server.env.update(private_environment(tmp_path))
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


@pytest.fixture
def artifacts(request):
    """Where a test's screenshots go (kept as CI artifacts)."""
    return artifacts_dir(request.node.name)


@pytest.fixture
def step(page, artifacts):
    """``with step("name"):`` a failure inside says which step and leaves a screenshot."""

    @contextlib.contextmanager
    def run(name: str):
        try:
            yield
        except BaseException as exc:
            shot = artifacts / f"failed-{re.sub(r'[^a-z0-9]+', '-', name.lower())}.png"
            with contextlib.suppress(Exception):
                page.screenshot(path=str(shot), full_page=True)
            raise AssertionError(f"step {name!r} failed ({exc}); screenshot: {shot}") from exc

    return run
