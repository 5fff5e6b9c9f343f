"""Naming clusters: embedded, addresses, dask config entries, connect/use."""

from __future__ import annotations

import contextlib
import time

import dask
import pytest
from distributed import LocalCluster

import jupyter_remote
from jupyter_remote.core import cells, clusters
from jupyter_remote.exceptions import ClusterConnectError, UnknownClusterError


@pytest.fixture(scope="module")
def other():
    with LocalCluster(n_workers=1, processes=True, dashboard_address="127.0.0.1:0") as c:
        yield c


def test_unknown_name_lists_known_ones_and_says_how_to_define(local):
    with dask.config.set({"jupyter-remote.clusters": {"gpu": {"address": "tcp://10.0.0.1:8786"}}}):
        with pytest.raises(UnknownClusterError) as info:
            clusters.cluster("nope")
    message = str(info.value)
    assert "'nope'" in message and "local" in message and "gpu" in message
    assert "jupyter-remote.clusters.nope" in message and "tcp://" in message


def test_unreachable_address_fails_within_the_connect_timeout():
    from concurrent.futures import ThreadPoolExecutor

    # Dask's own connect timeout is made 10 minutes: only jupyter-remote's 2 s can end the
    # attempt before the (generous) deadline below.
    with dask.config.set({"jupyter-remote.connect-timeout": "2s",
                          "distributed.comm.timeouts.connect": "600s"}):  # fmt: skip
        with ThreadPoolExecutor(1) as pool:
            attempt = pool.submit(clusters.connect, "tcp://127.0.0.1:9")
            with pytest.raises(ClusterConnectError, match=r"within the connect timeout \(2 s"):
                attempt.result(timeout=120)


def test_address_and_connect_and_use(local, other):
    address = other.scheduler_address
    found = clusters.connect(address, name="other")
    try:
        assert clusters.cluster("other") is found
        assert "other" in clusters.known_names()
        clusters.use("other")
        assert clusters.default_name() == "other"
        result = cells.run_cell("import os\nos.getpid()\n", {}, clusters.cluster())
        pids = found.client.run(lambda: __import__("os").getpid()).values()
        assert int(result.display["text/plain"]) in set(pids)
    finally:
        clusters.use("local")


def test_config_entry_with_address(other):
    with dask.config.set({"jupyter-remote.clusters": {"viaconfig": {"address": other.scheduler_address}}}):
        found = jupyter_remote.cluster("viaconfig")
        assert found.source == "config"
        assert jupyter_remote.function(lambda: 41 + 1, cluster="viaconfig")() == 42


def test_config_entry_with_factory():
    entry = {
        "factory": "distributed.LocalCluster",
        "kwargs": {"n_workers": 1, "processes": True, "dashboard_address": "127.0.0.1:0"},
    }
    with dask.config.set({"jupyter-remote.clusters": {"fromfactory": entry}}):
        found = jupyter_remote.cluster("fromfactory")
        try:
            assert jupyter_remote.function(lambda: "ok", cluster="fromfactory")() == "ok"
            assert found.info()["workers"] == 1
        finally:
            found.close()


def test_bad_config_entries_are_explained():
    with dask.config.set({"jupyter-remote.clusters": {"broken": {"host": "x"}}}):
        with pytest.raises(ClusterConnectError, match="address:. or .factory:"):
            clusters.cluster("broken")
    with dask.config.set({"jupyter-remote.clusters": {"badfactory": {"factory": "nowhere.Cluster"}}}):
        with pytest.raises(ClusterConnectError, match="cannot be imported"):
            _ = clusters.cluster("badfactory").client


def test_embedded_cluster_has_worker_processes_and_its_own_scheduler_process(local):
    import os

    info = local.info()
    assert info["workers"] >= 1 and info["status"] == "running"
    scheduler_pid = local.client.run_on_scheduler(os.getpid)
    worker_pids = set(local.client.run(os.getpid).values())
    assert scheduler_pid != os.getpid()
    assert os.getpid() not in worker_pids
    # tuned for interactive latency: Dask's batched-send intervals are zero
    assert local.client.scheduler_comm.interval == 0
    assert set(local.client.run(lambda dask_worker: dask_worker.batched_stream.interval).values()) == {0}


@pytest.mark.slow
@pytest.mark.parametrize("how", ["exit", "kill"])
def test_embedded_cluster_dies_with_its_kernel(how, tmp_path):
    """Closed at exit; and a killed kernel leaves no scheduler or workers behind."""
    import os
    import signal
    import subprocess
    import sys

    import psutil

    script = (
        "import os, sys, time\n"
        "from jupyter_remote.core import clusters\n"
        "c = clusters.cluster('local')\n"
        "pids = [c.client.run_on_scheduler(os.getpid), *c.client.run(os.getpid).values()]\n"
        "print(' '.join(map(str, pids)), flush=True)\n"
        "if sys.argv[1] == 'kill':\n"
        "    time.sleep(60)\n"
    )
    errors = open(tmp_path / "stderr.txt", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-c", script, how],
        stdout=subprocess.PIPE, stderr=errors, text=True, cwd=tmp_path,
    )
    pids = [int(p) for p in proc.stdout.readline().split()]
    errors.seek(0)
    assert len(pids) >= 2, (pids, errors.read()[-3000:])
    if how == "kill":
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    deadline = time.monotonic() + 30
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
        time.sleep(0.5)
    assert not alive, f"left behind after {how}: {alive}"


@pytest.mark.slow
def test_a_script_that_ends_with_work_in_flight_exits_without_errors(tmp_path):
    """A script's last calls may still be pending on the cluster when it ends (a call
    finished by its event stream, whose task is not reported done yet; a ref still
    computing): closing the cluster at exit settles them, and that
    must print nothing. Dask's ``add_done_callback`` ran our callbacks in a thread pool that
    refuses work once the interpreter is shutting down, so each printed a traceback."""
    import subprocess
    import sys

    script = (
        "import time, jupyter_remote\n"
        "def slow(x):\n"
        "    time.sleep(30)\n"
        "    return x\n"
        "f = jupyter_remote.function(lambda x: x + 1, cluster='local')\n"
        "g = jupyter_remote.function(slow, cluster='local')\n"
        "print(f(1), f.map(range(3)), flush=True)\n"
        "refs = [g.remote(1), g.remote(2)]\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "2 [1, 2, 3]"
    assert "Traceback" not in done.stderr and "Error" not in done.stderr, done.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("busy", [False, True], ids=["idle", "busy"])
def test_the_embedded_cluster_leaves_no_semaphores_behind(busy, tmp_path):
    """Each worker's nanny makes POSIX semaphores (``/dev/shm/sem.mp-*``) for the queues to
    its worker process. Dask's ``SubprocessCluster`` closes by SIGKILLing everything under
    each worker, so they were never unlinked: 12 files per start of the cluster, until the
    machine restarted. Closed at exit now, by the nannies, even with a call still running.
    The semaphores are this cluster's own: those its processes map (``/proc/PID/maps``),
    so other work on the machine does not count."""
    import os
    import subprocess
    import sys

    import psutil

    script = (
        "import os, sys, time, psutil, jupyter_remote\n"
        "from jupyter_remote.core import clusters\n"
        "c = clusters.cluster('local')\n"
        "c.client.run(os.getpid)\n"
        "print(*[p.pid for p in psutil.Process().children(recursive=True)], flush=True)\n"
        "sys.stdin.readline()\n"
        "if os.environ['BUSY'] == '1':\n"
        "    ref = jupyter_remote.function(time.sleep, cluster='local').remote(60)\n"
        "    time.sleep(1)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path, env={**os.environ, "BUSY": str(int(busy))})
    try:
        pids = [int(p) for p in proc.stdout.readline().split()]
        made: set[str] = set()
        for pid in pids:
            with contextlib.suppress(OSError, psutil.Error):
                with open(f"/proc/{pid}/maps") as maps:
                    made |= {line.split()[-1] for line in maps if "/dev/shm/sem." in line}
        assert len(made) >= 2, (pids, made)  # each nanny's (the check can fail)
        out, err = proc.communicate("go\n", timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-3000:]
    deadline = time.monotonic() + 15
    while any(os.path.exists(p) for p in made) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in made if os.path.exists(p)], "left in /dev/shm"
    assert "Traceback" not in err, err[-3000:]
