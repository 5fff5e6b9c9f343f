"""README "Templates" and "Where things are kept": a template the user adds in
``~/.config/dask/jupyter-remote.yaml`` is offered by **New cluster** next to the shipped
``local`` one, and starts with its fixed keyword arguments and the options the form sent; the
cluster's process logs to ``logs/NAME.log`` next to the registry (mode 0600).

A real ``jupyter server`` process whose HOME holds that file, as a user's would: the server
and the cluster's own process read it from there (the run's pins keep everything else).
"""

from __future__ import annotations

import os
import stat
import textwrap
from pathlib import Path

import pytest

from .realserver import JupyterProcess
from .test_restart import wait

pytestmark = pytest.mark.slow

USER_CONFIG = """\
jupyter-remote:
  server:
    start-timeout: 300s
    templates:
      tiny:
        title: Tiny test cluster
        description: One worker with three threads that offers a TINY resource.
        factory: distributed.LocalCluster
        options:
          n_workers: {title: Workers, type: int, default: 1, minimum: 1, description: Processes.}
          memory_limit: {type: str, default: 1GiB, description: Memory per worker.}
        kwargs:
          host: 127.0.0.1
          dashboard_address: "127.0.0.1:0"
          processes: true
          threads_per_worker: 3
          resources: {TINY: 1}
"""

API = "jupyter-remote/api"


@pytest.fixture
def server(tmp_path, registry_path):
    home = tmp_path / "user-home"
    (home / ".config" / "dask").mkdir(parents=True)
    (home / ".config" / "dask" / "jupyter-remote.yaml").write_text(USER_CONFIG)
    jupyter = JupyterProcess(tmp_path, registry_path)
    jupyter.env["HOME"] = str(home)
    jupyter.start()
    yield jupyter
    jupyter.stop()


def test_a_users_template_is_offered_and_starts_with_its_kwargs(server, registry_path):
    code, templates = server.request("GET", f"{API}/templates")
    assert code == 200, templates
    by_name = {t["name"]: t for t in templates}
    assert set(by_name) == {"local", "tiny"}  # the user's next to the shipped one
    tiny = by_name["tiny"]
    assert tiny["title"] == "Tiny test cluster" and tiny["factory"] == "distributed.LocalCluster"
    assert tiny["description"].startswith("One worker with three threads")
    options = {o["name"]: o for o in tiny["options"]}
    assert options["n_workers"] == {"name": "n_workers", "title": "Workers", "type": "int",
                                    "default": 1, "description": "Processes.", "minimum": 1}
    assert options["memory_limit"]["title"] == "Memory limit"  # from the keyword when unset
    assert options["memory_limit"]["default"] == "1GiB"

    code, reply = server.request("POST", f"{API}/clusters", {"template": "nope"})
    assert code == 400 and "tiny" in reply["message"].split("known templates:")[1], reply

    code, model = server.request("POST", f"{API}/clusters", {
        "template": "tiny", "name": "lab-tiny", "options": {"memory_limit": "2GiB"}})  # fmt: skip
    assert code == 202, model

    def running():
        code, m = server.request("GET", f"{API}/clusters/lab-tiny")
        assert code == 200 and m["status"] != "error", m
        return m if m["status"] == "running" and m["workers"] == 1 else None

    model = wait(running, 120, "lab-tiny running with 1 worker")
    from dask.utils import parse_bytes
    from distributed import Client

    with Client(model["address"], timeout=30) as client:
        (worker,) = client.scheduler_info(n_workers=-1)["workers"].values()
    assert worker["nthreads"] == 3 and worker["resources"] == {"TINY": 1}  # fixed kwargs
    assert worker["memory_limit"] == parse_bytes("2GiB")  # the form's option

    log = Path(registry_path).parent / "logs" / "lab-tiny.log"
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600
    assert f"cluster lab-tiny running at {model['address']}" in log.read_text()

    code, reply = server.request("DELETE", f"{API}/clusters/lab-tiny")
    assert code in (200, 202), reply
    wait(lambda: server.request("GET", f"{API}/clusters/lab-tiny")[0] == 404, 90, "lab-tiny gone")
    assert "shutting down cluster lab-tiny" in log.read_text(), textwrap.shorten(log.read_text(), 2000)
