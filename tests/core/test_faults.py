"""Calls, clusters and refs under real faults: a scheduler killed with SIGKILL, a worker
stopped with SIGSTOP (it holds its connections and answers nothing, as a host cut off by
the network does), and calls that fail before they are sent.

The multi-host versions (a link set down, latency) are in tests/hosts/.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import dask
import pytest
from distributed.deploy.subprocess import SubprocessCluster

import jupyter_remote
from jupyter_remote.core import calls, clusters
from jupyter_remote.exceptions import (
    ClusterConnectError,
    RemoteTimeoutError,
    ResourceError,
    SerializationError,
)
from tests.conftest import wait_until


def slow(seconds):
    import time

    print("started", flush=True)
    time.sleep(seconds)
    return seconds


def pid():
    import os

    return os.getpid()


def finished_in_time(fn, limit: float):
    """Run ``fn`` in a thread; its result, or fail if it has not returned after ``limit`` s
    (a deadline on a condition, not a timing claim: the figures are in benchmarks/faults.py)."""
    out: dict = {}

    def target():
        try:
            out["value"] = fn()
        except BaseException as exc:
            out["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(limit)
    assert not thread.is_alive(), f"{fn} still blocked after {limit} s"
    if "error" in out:
        raise out["error"]
    return out["value"]


@pytest.fixture
def doomed():
    """A cluster of our own (scheduler and worker in processes of their own) to kill."""
    cluster = SubprocessCluster(n_workers=1, threads_per_worker=2, dashboard_address=None)
    found = clusters.connect(cluster.scheduler_address, f"doomed-{os.getpid()}-{time.time_ns()}")
    yield found, cluster
    found.close()
    try:
        cluster.close(timeout=5)
    except Exception:
        pass


def test_a_lost_scheduler_is_told_as_lost_not_as_cancelled(doomed, run, capsys):
    found, cluster = doomed
    with dask.config.set({"jupyter-remote.connect-timeout": "3s"}):
        earlier = jupyter_remote.function(pid, found).remote()
        assert earlier.get() > 0
        call = calls.Call(found, "slow()", "call")
        future = call.submit({"kind": "call", "fn": slow, "args": (60,), "kwargs": {}})
        wait_until(lambda: len(call.log.lines) >= 1, 60, "the call to start")
        os.kill(cluster.scheduler.process.pid, signal.SIGKILL)
        with pytest.raises(ClusterConnectError) as err:
            finished_in_time(lambda: calls.wait(call, [], fetch=[future]), 60)
        call.finish("failed")
        message = str(err.value)
        assert "lost the connection to the scheduler" in message
        assert found.name in message and "values of every earlier ref" in message
        assert "cancelled" not in message
        # `%remote clusters` answers from what is known, at once, and says since when.
        assert found.status.startswith("unreachable since ")
        info = finished_in_time(found.info, 5)
        assert info["status"] == found.status
        capsys.readouterr()
        finished_in_time(lambda: run("%remote clusters"), 5)
        listed = [row for row in capsys.readouterr().out.splitlines() if found.name in row]
        assert listed and "unreachable since" in listed[0], listed
        # The next call fails with the connect error, once (not a second full connect).
        with pytest.raises(ClusterConnectError, match="3 s"):
            finished_in_time(lambda: jupyter_remote.function(pid, found)(), 30)


@pytest.fixture
def frozen():
    """A cluster of our own whose one worker runs a call and is then stopped (SIGSTOP):
    (cluster, call, its future, the worker's address). The worker is resumed at the end."""
    cluster = SubprocessCluster(n_workers=1, threads_per_worker=2, dashboard_address=None)
    found = clusters.connect(cluster.scheduler_address, f"frozen-{os.getpid()}-{time.time_ns()}")
    stopped = None
    try:
        found.client.wait_for_workers(1, timeout=60)
        [(address, worker_pid)] = found.client.run(pid).items()
        call = calls.Call(found, "slow()", "call")
        future = call.submit({"kind": "call", "fn": slow, "args": (60,), "kwargs": {}})
        wait_until(lambda: len(call.log.lines) >= 1, 60, "the call to start")
        os.kill(worker_pid, signal.SIGSTOP)
        stopped = worker_pid
        yield found, call, future, address
    finally:
        if stopped:
            os.kill(stopped, signal.SIGCONT)
        found.close()
        cluster.close(timeout=5)


def test_a_timeout_is_held_when_the_worker_does_not_answer(frozen):
    found, call, future, address = frozen
    with pytest.raises(RemoteTimeoutError, match="within 1 s"):
        finished_in_time(lambda: calls.wait(call, [], fetch=[future], timeout=1), 20)
    assert call.log.state == "cancelled"


def test_cancel_names_the_worker_that_did_not_answer(frozen):
    found, call, future, address = frozen
    what = finished_in_time(call.cancel, 10)
    assert address in what and "did not answer" in what, what
    assert call.log.state == "cancelled"


def test_calls_that_fail_before_they_are_sent_end_failed(local):
    router = local.router
    lock = threading.Lock()  # cannot be pickled
    with pytest.raises(SerializationError):
        jupyter_remote.function(lambda x: x, local)(lock)
    with pytest.raises(ResourceError):
        jupyter_remote.function(pid, local, resources={"NOSUCH": 1})()
    last_two = router.calls()[-2:]
    assert [log.state for log in last_two] == ["failed", "failed"]
    texts = ["".join(line["text"] for line in log.lines) for log in last_two]
    assert "SerializationError" in texts[0] and "ResourceError" in texts[1]
    assert not any(log.state == "queued" for log in router.calls())


def ticks(n):
    import time

    for i in range(n):
        print("tick", i, flush=True)
        time.sleep(0.4)
    return n


def test_a_rerun_after_a_lost_worker_is_marked_in_the_log():
    cluster = SubprocessCluster(n_workers=2, threads_per_worker=1, dashboard_address=None)
    found = clusters.connect(cluster.scheduler_address, f"rerun-{os.getpid()}-{time.time_ns()}")
    try:
        found.client.wait_for_workers(2, timeout=60)
        call = calls.Call(found, "ticks()", "call")
        future = call.submit({"kind": "call", "fn": ticks, "args": (5,), "kwargs": {}})
        wait_until(lambda: len(call.log.lines) >= 2, 60, "the call to print")
        first = call.log.worker
        assert first, "the first lines did not name their worker"
        [victim] = found.client.run(pid, workers=[first]).values()
        os.kill(victim, signal.SIGKILL)
        [value] = finished_in_time(lambda: calls.wait(call, [], fetch=[future]), 120)
        call.finish("done")
        assert value == 5
        lines = list(call.log.lines)
        notes = [i for i, line in enumerate(lines) if line["stream"] == "log"]
        assert len(notes) == 1, [line["text"] for line in lines]
        note = lines[notes[0]]["text"]
        assert f"worker {first} was lost; attempt 2 of 4 on " in note
        after = [line["text"] for line in lines[notes[0] + 1:]]
        assert after == [f"tick {i}" for i in range(5)]  # the rerun, whole, after the mark
        assert call.log.attempt == 2 and call.log.worker != first
    finally:
        found.close()
        cluster.close(timeout=5)
