"""README promises of the environment limits, read on a real worker process:

- ``environments.max-size``: after each build, idle environment processes close first, then
  the oldest-unused environments go until the total fits ("the size cap does the same [as
  --prune] after each build, oldest-unused first"); what a running call uses stays;
- ``environments.max-processes``: at most that many environment processes per worker, idle
  ones close first; a busy one is never closed, and a call for another environment still runs;
- the build record (``jupyter-remote-env.json``) and pip's log (``pip.log``) in the
  environment's folder.

The settings reach the worker as a user's config would: ``DASK_JUPYTER_REMOTE__...``
variables in the environment the worker starts with.
"""

from __future__ import annotations

import json
import os

import dask
import pytest
from distributed import LocalCluster

import jupyter_remote
from jupyter_remote.core import clusters, environments
from tests import wheelhouse
from tests.conftest import wait_until


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """One worker (two threads) with a 1-byte size cap and one environment process."""
    house = str(tmp_path_factory.mktemp("wheelhouse"))
    for version in ("1.0", "2.0", "3.0"):
        wheelhouse.wheel(house, "jrtoy", version)
    root = str(tmp_path_factory.mktemp("envs-limited"))
    settings = {"ROOT": root, "MAX_SIZE": "1", "MAX_PROCESSES": "1"}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in settings.items():
            mp.setenv(f"DASK_JUPYTER_REMOTE__ENVIRONMENTS__{key}", value)
        # A Nanny hands its own process's Dask config to the worker it starts (over the
        # worker's environment), so the settings go into this process's config as well.
        with dask.config.set({
            "jupyter-remote.environments.root": root,
            "jupyter-remote.environments.max-size": 1,
            "jupyter-remote.environments.max-processes": 1,
            "jupyter-remote.pip-options": ["--no-index", "--find-links", house],
        }):  # fmt: skip
            with LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                              host="127.0.0.1", dashboard_address=None) as lc:
                found = clusters.connect(lc.scheduler_address, f"env-limits-{os.getpid()}")
                try:
                    yield found
                finally:
                    found.close()


def toy(gate: str | None = None):
    import os
    import time

    import jrtoy

    import jupyter_remote

    if gate is not None:
        open(gate + ".started", "w").close()
        deadline = time.time() + 120
        while not os.path.exists(gate) and time.time() < deadline:
            time.sleep(0.01)
    return jrtoy.VERSION, jupyter_remote.get_env()["path"]


def env_processes() -> list[str]:
    """On the worker: the environment folders of its live environment processes."""
    import psutil

    found = []
    for child in psutil.Process().children():
        try:
            cmd = child.cmdline()
        except psutil.Error:
            continue
        if "jupyter_remote.worker.envchild" in cmd and child.status() != psutil.STATUS_ZOMBIE:
            found.append(cmd[-1])
    return sorted(found)


def processes(cluster) -> list[str]:
    (paths,) = cluster.client.run(env_processes).values()
    return paths


def on_disk(cluster) -> dict[str, bool]:
    """Requirements of each environment on the host -> whether a process uses it."""
    return {" ".join(r["requirements"]): r["in_use"] for r in environments.cluster_envs(cluster)}


def run_in(cluster, version: str):
    return jupyter_remote.function(toy, cluster, reqs=[f"jrtoy=={version}"])


def test_build_record_and_pip_log_are_in_the_environment_folder(limited):
    version, path = run_in(limited, "1.0")()
    assert version == "1.0"
    with open(os.path.join(path, "jupyter-remote-env.json")) as f:
        record = json.load(f)
    assert record["requirements"] == ["jrtoy==1.0"] and record["hash"]
    with open(os.path.join(path, "pip.log")) as f:
        log = f.read()
    assert "jrtoy" in log and "1.0" in log, log[-2000:]


def test_the_size_cap_after_a_build_closes_idle_processes_then_removes_oldest(limited):
    run_in(limited, "1.0")()  # built (or there from the test before), its process idle now
    assert "jrtoy==1.0" in on_disk(limited)
    version, newest = run_in(limited, "2.0")()
    assert version == "2.0"
    # The cap is one byte: after 2.0's build, 1.0's idle process was closed and 1.0 removed;
    # the environment just built stays whatever the cap says.
    assert on_disk(limited) == {"jrtoy==2.0": True}
    assert processes(limited) == [newest]
    # A removed environment is built again by its next call.
    assert run_in(limited, "1.0")()[0] == "1.0"
    assert set(on_disk(limited)) == {"jrtoy==1.0"}


def test_max_processes_closes_idle_ones_never_a_busy_one(limited, tmp_path):
    gate = str(tmp_path / "gate")
    busy = run_in(limited, "1.0").remote(gate)
    wait_until(lambda: os.path.exists(gate + ".started"), timeout=120,
               what="the 1.0 call to run in its process")
    held = processes(limited)
    assert len(held) == 1, held
    [held] = held
    # Another environment while 1.0 is busy: a second process, over the limit of one, since
    # the busy one must not close; and the size cap cannot remove what a running call uses.
    version, other = run_in(limited, "3.0")()
    assert version == "3.0"
    assert held in processes(limited)
    assert on_disk(limited) == {"jrtoy==1.0": True, "jrtoy==3.0": True}
    open(gate, "w").close()
    assert busy.get(timeout=120)[0] == "1.0"
    # Once 1.0 is idle, the next new process retires the longest idle one: one is left.
    assert run_in(limited, "2.0")()[0] == "2.0"
    assert len(processes(limited)) == 1

