"""The cluster registry file: private, atomic, locked, validated; and the kernel-side hooks."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap

import dask.config
import pytest
from distributed import LocalCluster

from jupyter_remote.core import clusters, registry
from jupyter_remote.exceptions import ClusterConnectError


@pytest.fixture
def path(registry_path):
    return registry_path


def test_nothing_is_written_until_something_is_registered(path, tmp_path):
    home = tmp_path / "home"  # an empty home of its own: nothing may appear anywhere in it
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / ".local" / "share"),
           "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / ".cache"),
           "XDG_STATE_HOME": str(home / ".local" / "state")}  # fmt: skip
    code = (
        "import jupyter_remote, jupyter_remote.core.clusters, jupyter_remote.core.registry as r\n"
        "r.entries(); r.get('x'); r.remove('x')\n"
        "print(r.path())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True,
                         text=True)  # fmt: skip
    assert out.stdout.strip() == path  # it looked where the test looks ...
    assert not os.path.exists(os.path.dirname(path))  # ... and wrote nothing there
    assert [str(p.relative_to(home)) for p in home.rglob("*")] == []  # nor in the home


def test_file_is_private_and_replaced_whole(path):
    registry.put({"name": "lab-1", "source": "server", "pid": os.getpid(), "status": "running"})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    data = json.load(open(path))
    assert data["clusters"]["lab-1"]["name"] == "lab-1"
    # No temporary files are left behind.
    assert sorted(os.listdir(os.path.dirname(path))) == ["clusters.json", "clusters.json.lock"]


def test_default_location_is_in_the_users_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    with dask.config.set({"jupyter-remote.registry-path": None}):
        assert registry.path() == str(tmp_path / "jupyter_remote" / "clusters.json")


@pytest.mark.parametrize(
    "name", ["", "../x", "a/b", ".hidden", "-rf", "a b", "x" * 65, "a..b", None, 3, "tcp://h:1"]
)
def test_bad_names_are_refused(path, name):
    with pytest.raises(registry.InvalidNameError):
        registry.validate_name(name)
    if isinstance(name, str):
        assert registry.lookup(name) is None  # never an error, never a path


def test_entries_of_dead_owners_are_dropped_except_errors(path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    pid = int(dead.stdout)
    registry.put({"name": "gone", "source": "kernel", "pid": pid, "status": "running"})
    registry.put({"name": "failed", "source": "server", "pid": pid, "status": "error",
                  "error": "boom"})  # fmt: skip
    registry.put({"name": "alive", "source": "kernel", "pid": os.getpid(), "status": "running"})
    assert sorted(registry.names()) == ["alive", "failed"]
    registry.put({"name": "other", "source": "kernel", "pid": os.getpid()})
    assert "gone" not in registry.entries(include_stale=True)  # a write drops it for good


def test_concurrent_writers_lose_no_update(path):
    """Eight processes each add 25 entries under the lock: all 200 are there."""
    code = textwrap.dedent(
        """
        import os, sys
        from jupyter_remote.core import registry
        for i in range(25):
            registry.put({"name": f"w{sys.argv[1]}-{i}", "source": "kernel", "pid": os.getppid()})
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(n)]) for n in range(8)]
    assert all(p.wait(60) == 0 for p in procs)
    assert len(registry.names()) == 200


def test_lookup_explains_starting_and_failed_clusters(path):
    registry.put({"name": "lab-s", "source": "server", "pid": os.getpid(), "status": "starting"})
    with pytest.raises(ClusterConnectError, match="still starting"):
        registry.lookup("lab-s")
    registry.put({"name": "lab-e", "source": "server", "pid": os.getpid(), "status": "error",
                  "error": "no memory"})  # fmt: skip
    with pytest.raises(ClusterConnectError, match="failed to start: no memory"):
        clusters.cluster("lab-e")


def test_a_registered_cluster_is_reachable_by_name(path):
    with LocalCluster(n_workers=1, processes=False, dashboard_address="127.0.0.1:0") as lc:
        registry.put({"name": "lab-x", "source": "server", "pid": os.getpid(),
                      "status": "running", "address": lc.scheduler_address})  # fmt: skip
        assert "lab-x" in clusters.known_names()
        found = clusters.cluster("lab-x")
        try:
            assert found.address == lc.scheduler_address
            assert found.client.submit(lambda: 6 * 7).result() == 42
        finally:
            with clusters._lock:
                clusters._clusters.pop("lab-x", None)
            found.close()
        # Closing a cluster that this process did not register leaves the entry alone.
        assert registry.get("lab-x") is not None


def test_connect_announces_and_close_withdraws(path):
    with LocalCluster(n_workers=1, processes=False, dashboard_address="127.0.0.1:0") as lc:
        found = clusters.connect(lc.scheduler_address, name="mine")
        try:
            entry = registry.get("mine")
            assert entry["source"] == "kernel"
            assert entry["pid"] == os.getpid()
            assert entry["address"] == lc.scheduler_address
        finally:
            with clusters._lock:
                clusters._clusters.pop("mine", None)
            found.close()
        assert registry.get("mine") is None


def test_announce_never_takes_a_name_owned_by_someone_else(path):
    registry.put({"name": "lab-1", "source": "server", "pid": os.getppid(), "status": "running",
                  "address": "tcp://127.0.0.1:1"})  # fmt: skip
    fake = clusters.Cluster("lab-1", address="tcp://127.0.0.1:2", source="connected")
    registry.announce(fake)
    assert registry.get("lab-1")["address"] == "tcp://127.0.0.1:1"
    registry.withdraw(fake)
    assert registry.get("lab-1") is not None


def test_embedded_cluster_is_registered_under_local_pid(path):
    """A fresh process (a kernel, say) starts its embedded cluster: it shows up as local-PID."""
    code = textwrap.dedent(
        """
        import os, json
        import jupyter_remote
        from jupyter_remote.core import registry
        c = jupyter_remote.cluster("local")
        c.client
        print(json.dumps([os.getpid(), registry.get(f"local-{os.getpid()}")]))
        c.close()
        print(json.dumps(registry.get(f"local-{os.getpid()}")))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=os.environ
    )
    assert out.returncode == 0, out.stderr
    first, after = out.stdout.strip().splitlines()[-2:]
    pid, entry = json.loads(first)
    assert entry["source"] == "kernel" and entry["pid"] == pid
    assert entry["address"].startswith("tcp://")
    assert json.loads(after) is None


def test_a_config_factory_started_by_a_kernel_is_registered_under_name_pid(path):
    factory = {"factory": "distributed.LocalCluster",
               "kwargs": {"n_workers": 1, "processes": False, "dashboard_address": "127.0.0.1:0"}}  # fmt: skip
    with dask.config.set({"jupyter-remote.clusters": {"small": factory}}):
        found = clusters.cluster("small")
        try:
            assert found.client.status == "running"
            entry = registry.get(f"small-{os.getpid()}")
            assert entry["source"] == "kernel" and entry["address"] == found.address
        finally:
            with clusters._lock:
                clusters._clusters.pop("small", None)
            found.close()
    assert registry.get(f"small-{os.getpid()}") is None


def test_a_name_shut_down_and_started_again_resolves_to_the_new_cluster(path):
    with LocalCluster(n_workers=1, processes=False, dashboard_address="127.0.0.1:0") as first:
        registry.put({"name": "lab-z", "source": "server", "pid": os.getpid(),
                      "status": "running", "address": first.scheduler_address})  # fmt: skip
        assert clusters.cluster("lab-z").client.submit(lambda: 1).result() == 1
    registry.remove("lab-z")  # the sidebar shut it down ...
    with pytest.raises(clusters.UnknownClusterError):
        clusters.cluster("lab-z")
    with LocalCluster(n_workers=1, processes=False, dashboard_address="127.0.0.1:0") as second:
        registry.put({"name": "lab-z", "source": "server", "pid": os.getpid(),
                      "status": "running", "address": second.scheduler_address})  # fmt: skip
        found = clusters.cluster("lab-z")  # ... and started a new one of the same name
        try:
            assert found.address == second.scheduler_address
            assert found.client.submit(lambda: 2).result() == 2
        finally:
            with clusters._lock:
                clusters._clusters.pop("lab-z", None)
            found.close()


# -- kernels that use a cluster they do not own (the sidebar's "this notebook" mark) -------
def test_a_kernel_using_a_sidebar_cluster_is_recorded_until_it_disconnects(path, monkeypatch):
    monkeypatch.setenv("JPY_SESSION_NAME", "work/analysis.ipynb")
    with LocalCluster(n_workers=1, processes=False, dashboard_address="127.0.0.1:0") as lc:
        for name in ("lab-u", "lab-other"):
            registry.put({"name": name, "source": "server", "pid": os.getppid(),
                          "status": "running",
                          "address": lc.scheduler_address if name == "lab-u" else "tcp://127.0.0.1:9"})  # fmt: skip
        assert "users" not in registry.get("lab-u")  # known, not used yet
        found = clusters.cluster("lab-u")
        try:
            assert found.client.submit(lambda: 1).result() == 1
            (user,) = registry.get("lab-u")["users"]
            assert user["pid"] == os.getpid() and user["notebook"] == "work/analysis.ipynb"
            assert not registry.get("lab-other").get("users")  # only the cluster it uses
            found.close()  # disconnect
            assert registry.get("lab-u")["users"] == []
            assert found.client.submit(lambda: 2).result() == 2  # used again: recorded again
            assert [u["pid"] for u in registry.get("lab-u")["users"]] == [os.getpid()]
        finally:
            with clusters._lock:
                clusters._clusters.pop("lab-u", None)
            found.close()
        assert registry.get("lab-u")["users"] == []
        assert registry.get("lab-u")["source"] == "server"  # the owner's entry is left as it was


def test_a_user_whose_kernel_is_gone_is_not_listed_and_is_dropped(path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    users = [{"pid": int(dead.stdout), "notebook": "gone.ipynb", "since": 1.0},
             {"pid": os.getpid(), "notebook": "here.ipynb", "since": 2.0}]  # fmt: skip
    registry.put({"name": "lab-s", "source": "server", "pid": os.getppid(), "status": "running",
                  "address": "tcp://127.0.0.1:9", "users": users})  # fmt: skip
    assert [u["notebook"] for u in registry.get("lab-s")["users"]] == ["here.ipynb"]
    assert [u["notebook"] for u in registry.entries()["lab-s"]["users"]] == ["here.ipynb"]
    registry.update("lab-s", status="running")  # any write drops it for good
    stored = registry.entries(include_stale=True)["lab-s"]["users"]
    assert [u["notebook"] for u in stored] == ["here.ipynb"]


def test_a_kernel_using_its_own_cluster_is_its_owner_not_a_user(path):
    with LocalCluster(n_workers=1, processes=False, dashboard_address="127.0.0.1:0") as lc:
        found = clusters.connect(lc.scheduler_address, name="mine-u")
        try:
            assert "users" not in registry.get("mine-u")
        finally:
            with clusters._lock:
                clusters._clusters.pop("mine-u", None)
            found.close()


def test_a_kernel_using_no_registered_cluster_writes_nothing(path):
    fake = clusters.Cluster("x", address="tcp://127.0.0.1:9", source="address")
    registry.announce(fake)
    registry.withdraw(fake)
    assert not os.path.exists(os.path.dirname(path))


def test_kernels_connecting_at_once_are_all_recorded(path):
    """Eight kernels (processes) record themselves on one entry at the same moment, and later
    take themselves off at the same moment: none is lost, none is left."""
    registry.put({"name": "lab-c", "source": "server", "pid": os.getppid(), "status": "running",
                  "address": "tcp://127.0.0.1:9"})  # fmt: skip
    go = path + ".go"
    code = textwrap.dedent(
        f"""
        import os, sys, time
        from jupyter_remote.core import clusters, registry
        fake = clusters.Cluster("lab-c", address="tcp://127.0.0.1:9", source="server")
        while not os.path.exists({go!r}):
            time.sleep(0.001)
        registry.announce(fake)
        print("in", flush=True)
        sys.stdin.read()  # until the test says go on
        registry.withdraw(fake)
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for _ in range(8)]  # fmt: skip
    try:
        open(go, "w").close()
        assert all(p.stdout.readline().strip() == "in" for p in procs)
        listed = sorted(u["pid"] for u in registry.get("lab-c")["users"])
        assert listed == sorted(p.pid for p in procs)
        for p in procs:
            p.stdin.close()
        assert all(p.wait(60) == 0 for p in procs)
        assert registry.entries(include_stale=True)["lab-c"]["users"] == []
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
