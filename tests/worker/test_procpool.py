"""``map(..., target="processes")`` on a real cluster: a batch's items run in the worker's
pool of python processes (worker/procpool.py), sized to the worker's threads and kept across
batches, with what every map gives: order, per-item errors, ``[index]``-tagged prints from
the children, Cancel and timeouts that stop the children's work, the pool closed with the
worker."""

from __future__ import annotations

import os
import threading

import psutil
import pytest

import jupyter_remote
from jupyter_remote.exceptions import RemoteCancelledError, RemoteTimeoutError, WorkerLostError
from tests import wheelhouse
from tests.conftest import spec_cluster, wait_until

house, installer = wheelhouse.house, wheelhouse.installer
env_root, envs_cluster = wheelhouse.env_root, wheelhouse.envs_cluster


@pytest.fixture(scope="module")
def two_threads():
    """One worker (a Nanny's: a daemonic process) with two threads."""
    with spec_cluster({"w": {"nthreads": 2}}, "procpool-two-threads") as cluster:
        yield cluster


def spin(x):
    """CPU-bound pure Python (holds the GIL); prints; item 5 fails."""
    import os

    print("spinning", x)
    total = 0
    for i in range(300_000):
        total += i % 7
    if x == 5:
        raise ValueError(f"item {x} is bad")
    return os.getpid(), total


def test_items_run_in_child_processes_in_order_with_their_tags_and_errors(two_threads, capsys):
    worker_pids = set(two_threads.client.run(os.getpid).values())
    f = jupyter_remote.function(spin, two_threads, name="spin-progress")
    out = f.map(range(16), target="processes", errors="return")
    assert len(out) == 16
    [log] = [log for log in two_threads.router.calls() if "spin-progress" in log.label]
    assert (log.done, log.failed) == (16, 1)  # the children's progress, summed per batch
    assert isinstance(out[5], ValueError) and "item 5 is bad" in str(out[5])
    good = [o for o in out if not isinstance(o, Exception)]
    assert all(total == sum(i % 7 for i in range(300_000)) for _, total in good)
    pids = {pid for pid, _ in good}
    assert not pids & worker_pids  # not in the worker's process
    assert len(pids) == 2  # the pool: one child per worker thread
    printed = capsys.readouterr().out
    for i in range(16):
        assert f"[{i}] spinning {i}" in printed
    # the pool is kept: a second map runs in the same children
    again = f.map(range(6), target="processes", errors="return")
    assert {o[0] for o in again if not isinstance(o, Exception)} <= pids
    with pytest.raises(ValueError, match="item 5 is bad") as info:
        f.map(range(8), target="processes")
    assert any("item 5 of 8" in note for note in info.value.__notes__)


def test_starmap_and_async_functions_in_processes(two_threads):
    async def add(a, b):
        return a + b

    assert jupyter_remote.function(add, two_threads).starmap(
        [(i, 10 * i) for i in range(9)], target="processes") == [11 * i for i in range(9)]


def _stubborn(where):
    """Spins in pure Python until interrupted (at most 60 s), leaving marks in ``where``."""

    def item(x):
        import os
        import time

        open(os.path.join(where, f"started-{x}"), "w").close()
        try:
            deadline = time.time() + 60
            while time.time() < deadline:
                sum(range(1000))
        except BaseException:
            open(os.path.join(where, f"interrupted-{x}"), "w").close()
            raise
        open(os.path.join(where, f"finished-{x}"), "w").close()
        return x

    return item


def _marks(where, kind):
    return sorted(n for n in os.listdir(where) if n.startswith(kind))


def test_cancel_stops_the_work_in_the_children(two_threads, tmp_path):
    where = str(tmp_path)
    f = jupyter_remote.function(_stubborn(where), two_threads, name="stubborn")
    outcome = {}

    def run():
        try:
            outcome["value"] = f.map(range(2), target="processes", batch_size=2)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    wait_until(lambda: len(_marks(where, "started")) == 2, what="both items to start")
    [log] = wait_until(lambda: [log for log in two_threads.router.calls()
                                if log.state == "running" and "stubborn" in log.label],
                       what="the map to show as running")
    log.cancel()
    thread.join(60)
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), RemoteCancelledError), outcome
    wait_until(lambda: len(_marks(where, "interrupted")) == 2,
               what="both children's items to be interrupted")
    assert _marks(where, "finished") == []


def test_a_timeout_stops_the_work_in_the_children(two_threads, tmp_path):
    where = str(tmp_path)
    f = jupyter_remote.function(_stubborn(where), two_threads)
    with pytest.raises(RemoteTimeoutError, match="did not finish"):
        f.map(range(2), target="processes", batch_size=2, timeout=2)
    wait_until(lambda: len(_marks(where, "interrupted")) == len(_marks(where, "started")) > 0,
               what="the children's items to be interrupted")
    assert _marks(where, "finished") == []


def test_a_child_stuck_in_c_code_is_killed_and_replaced(two_threads, tmp_path):
    where = str(tmp_path)

    def stuck(x, where=where):
        import os
        import time

        open(os.path.join(where, f"started-{os.getpid()}"), "w").close()
        time.sleep(120)  # in C: an interrupt lands only when it returns
        return x

    with pytest.raises(RemoteTimeoutError):
        jupyter_remote.function(stuck, two_threads).map(range(2), target="processes",
                                                        batch_size=2, timeout=2)
    pids = [int(n.split("-")[1]) for n in _marks(where, "started")]
    assert pids
    wait_until(lambda: not any(_alive(pid) for pid in pids), what="the stuck children's end")
    out = jupyter_remote.function(spin, two_threads).map(range(4), target="processes",
                                                         errors="return")
    assert not {o[0] for o in out if not isinstance(o, Exception)} & set(pids)


def test_a_child_that_dies_fails_the_map_naming_its_items(two_threads):
    def die(x):
        import os

        if x == 3:
            os._exit(7)
        return x

    with pytest.raises(WorkerLostError, match=r"pool exited \(code 7\) while running items 3-3"):
        jupyter_remote.function(die, two_threads).map(range(4), target="processes",
                                                      batch_size=4)
    assert jupyter_remote.function(die, two_threads).map([0, 1], target="processes") == [0, 1]


def test_the_pool_closes_with_the_worker():
    with spec_cluster({"w": {"nthreads": 2}}, "procpool-closing") as cluster:
        f = jupyter_remote.function(spin, cluster)
        pids = {o[0] for o in f.map(range(8), target="processes", errors="return")
                if not isinstance(o, Exception)}
        assert pids and all(_alive(pid) for pid in pids)
    wait_until(lambda: not any(_alive(pid) for pid in pids), what="the pool's children to exit")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def toy_and_pid(x):
    import os

    import jrtoy

    print("toy", x)
    return jrtoy.VERSION, os.getpid(), jupyter_remote.get_env()["requirements"]


def test_processes_of_a_call_with_requirements_run_in_its_environment(envs_cluster, capsys):
    f = jupyter_remote.function(toy_and_pid, envs_cluster, reqs=["jrtoy==2.0"])
    out = f.map(range(6), target="processes")
    assert {(v, tuple(r)) for v, _, r in out} == {("2.0", ("jrtoy==2.0",))}
    env_pids = set(envs_cluster.client.run(os.getpid).values())
    assert not {pid for _, pid, _ in out} & env_pids
    printed = capsys.readouterr().out
    assert all(f"[{i}] toy {i}" in printed for i in range(6)), printed


def pid_after_a_while(x):
    import os
    import time

    time.sleep(0.05)
    return os.getpid()


def test_the_pool_of_an_environments_process_is_sized_to_its_workers_threads(
        env_root, installer, house):
    """A pool started in an environment's process (``reqs=``) has a child per thread of
    the worker that runs it, as in the worker itself, not one per CPU of the machine: a
    one-thread worker's batch runs in one child, whatever the machine."""
    with wheelhouse.env_settings(house, env_root, installer), \
            spec_cluster({"w": {"nthreads": 1}}, "procpool-one-thread-env") as cluster:
        f = jupyter_remote.function(pid_after_a_while, cluster, reqs=["jrtoy==2.0"])
        pids = f.map(range(16), target="processes", batch_size=16)
    assert len(set(pids)) == 1, pids
