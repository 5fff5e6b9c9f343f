"""A real Jupyter server (pytest-jupyter, token auth on) with the extension, and a registry
file of the test's own, so nothing touches the user's registry."""

from __future__ import annotations

import asyncio
import json
import time
import warnings

import pytest

from .realserver import kill_launchers

try:
    # pytest-jupyter's fixtures and hooks for the tests under this directory only (a
    # `pytest_plugins` here would be refused by pytest outside the top-level conftest).
    from pytest_jupyter.jupyter_server import *  # noqa: F403
except ImportError:  # without the `ui-test` extra: say so, loudly, and collect nothing here
    warnings.warn(
        'tests/server NOT RUN: install the ui-test extra (pip install -e ".[test,ui-test]")',
        stacklevel=1,
    )
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture
def registry_path(registry_path):
    """The test's own registry (tests/conftest.py); its sidebar clusters die with the test."""
    yield registry_path
    kill_launchers(registry_path)


@pytest.fixture
def jp_server_config(registry_path):
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_remote.server": True, "jupyter_server_proxy": True}
        }
    }


@pytest.fixture
def api(jp_fetch):
    """``await api("GET", "clusters")`` -> (status, JSON body); never raises on HTTP errors."""

    async def call(method: str, *parts: str, body=None, headers=None):
        kwargs = {"method": method, "raise_error": False, "headers": headers}
        if body is not None:
            kwargs["body"] = body if isinstance(body, (str, bytes)) else json.dumps(body)
        elif method in ("POST", "PATCH"):
            kwargs["body"] = b""
        response = await jp_fetch("jupyter-remote", "api", *parts, **kwargs)
        text = response.body.decode() if response.body else ""
        return response.code, (json.loads(text) if text else None)

    return call


async def wait_for(predicate, timeout: float = 60, what: str = "condition"):
    """Poll an async predicate until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await predicate()
        if last:
            return last
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")
