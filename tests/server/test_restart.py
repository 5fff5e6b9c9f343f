"""Clusters started from the sidebar outlive the Jupyter server that started them.

This uses real ``jupyter server`` processes (with the extension enabled by the package's own
jupyter-config file, not by test config), stopped and started again.
"""

from __future__ import annotations

import time

import pytest

from jupyter_remote.core import registry

from .realserver import JupyterProcess

pytestmark = pytest.mark.slow


def wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def test_cluster_is_rediscovered_after_a_server_restart(tmp_path, registry_path):
    server = JupyterProcess(tmp_path, registry_path).start()
    try:
        code, _ = server.request("GET", "jupyter-remote/api/clusters", token="wrong")
        assert code == 403
        code, model = server.request(
            "POST", "jupyter-remote/api/clusters", {"template": "local", "name": "lab-r"}
        )
        assert code == 202, model

        def running(s=server):
            code, m = s.request("GET", "jupyter-remote/api/clusters/lab-r")
            return m if code == 200 and m["status"] == "running" and m["workers"] == 1 else None

        first = wait(running, 90, "lab-r running")
    finally:
        server.stop()

    # The server is gone; the cluster is not.
    entry = registry.get("lab-r")
    assert entry is not None and registry.pid_alive(entry["pid"])

    again = JupyterProcess(tmp_path, registry_path).start()
    try:
        code, listed = again.request("GET", "jupyter-remote/api/clusters")
        assert code == 200
        (model,) = [m for m in listed if m["name"] == "lab-r"]
        assert model["address"] == first["address"]
        assert model["manageable"] is True
        wait(lambda: running(again), 30, "lab-r seen running by the new server")

        # The new server can still manage it.
        code, _ = again.request("PATCH", "jupyter-remote/api/clusters/lab-r", {"workers": 2})
        assert code == 200

        def two():
            code, m = again.request("GET", "jupyter-remote/api/clusters/lab-r")
            return m["workers"] == 2

        wait(two, 60, "two workers")
        code, _ = again.request("DELETE", "jupyter-remote/api/clusters/lab-r")
        assert code == 202
        wait(lambda: registry.get("lab-r") is None, 40, "lab-r gone from the registry")
        wait(lambda: not registry.pid_alive(entry["pid"]), 20, "its process to end")
    finally:
        again.stop()
