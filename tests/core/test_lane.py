"""A plain map's batches go straight to the workers, past the scheduler (core/lane.py,
worker/lane.py): the same results, errors, lines and progress as tasks, and every way the
lane can fail ends with the batch sent again as a task, nothing lost."""

from __future__ import annotations

import os
import signal
import threading
import time

import dask
import pytest
from distributed.deploy.subprocess import SubprocessCluster

import jupyter_remote
from jupyter_remote.core import cells, clusters, lane
from jupyter_remote.exceptions import RemoteTimeoutError
from jupyter_remote.worker import lane as worker_lane
from tests.conftest import wait_until


@pytest.fixture(autouse=True)
def no_failed_workers(monkeypatch):
    """Which workers failed a batch is remembered for the session: each test starts afresh."""
    monkeypatch.setattr(lane, "_failed", {})


def _map_keys_seen(call: str, dask_scheduler=None) -> int:
    """How many of ``call``'s batches the scheduler ever saw as tasks."""
    prefix = f"remote-map-{call}-"
    return len({str(t[0]) for t in dask_scheduler.transition_log
                if str(t[0]).startswith(prefix)})


def where(x):
    from distributed import get_worker

    return x, get_worker().address


def test_a_plain_map_goes_to_the_workers_and_the_scheduler_sees_no_task(local):
    f = jupyter_remote.function(where)
    out = f.map(range(20_000), batch_size=1_000)
    assert [x for x, _ in out] == list(range(20_000))
    assert {w for _, w in out} == set(local.client.scheduler_info()["workers"])  # both
    log = local.router.calls()[-1]
    assert local.client.run_on_scheduler(_map_keys_seen, log.call) == 0
    assert (log.done, log.failed, log.state) == (20_000, 0, "done")  # progress counted
    assert log.worker in {w for _, w in out}  # where it ran, for the views

    with dask.config.set({"jupyter-remote.map.direct": False}):
        assert [x for x, _ in f.map(range(3_000), batch_size=1_000)] == list(range(3_000))
    assert local.client.run_on_scheduler(_map_keys_seen, local.router.calls()[-1].call) == 3


def test_errors_lines_and_order_are_those_of_tasks(local, capsys):
    def noisy(x):
        if x % 100 == 0:
            print("item", x)
        if x == 250:
            raise KeyError("two-fifty")
        return -x

    f = jupyter_remote.function(noisy)
    out = f.map(range(1_000), batch_size=64, errors="return")
    assert isinstance(out[250], KeyError) and "item 250" in str(out[250].__cause__)
    assert [v for i, v in enumerate(out) if i != 250] == [-i for i in range(1_000) if i != 250]
    printed = capsys.readouterr().out
    for i in range(0, 1_000, 100):  # every line arrived before the map returned
        assert f"[{i}] item {i}" in printed
    with pytest.raises(KeyError, match="two-fifty") as info:
        f.map(range(1_000), batch_size=64)
    assert any("item 250 of 1000" in note for note in info.value.__notes__)


def test_refs_among_the_items_send_the_map_as_tasks(local):
    made = cells.run_cell("a = 10\n", {}, local)
    f = jupyter_remote.function(lambda pair: pair[0] + pair[1])
    assert f.map([(1, 2), (made.refs["a"], 5)], batch_size=1) == [3, 15]
    call = local.router.calls()[-1].call
    assert local.client.run_on_scheduler(_map_keys_seen, call) >= 1


def _without_handler(dask_worker=None) -> bool:
    return dask_worker.handlers.pop(worker_lane.HANDLER, None) is not None


def _with_handler(dask_worker=None) -> None:
    worker_lane.uninstall(dask_worker)
    worker_lane.install(dask_worker)


def test_a_worker_without_the_handler_gets_tasks_and_is_left_alone(local):
    """An older jupyter_remote on the workers (no handler): the map runs as tasks, right."""
    client = local.client
    victim = sorted(client.scheduler_info()["workers"])[0]
    assert client.run(_without_handler, workers=[victim]) == {victim: True}
    try:
        f = jupyter_remote.function(where)
        out = f.map(range(4_000), batch_size=500)
        assert [x for x, _ in out] == list(range(4_000))
        assert victim in lane._failed
        # the next map sends its batches to the other worker only, still past the scheduler
        again = f.map(range(4_000), batch_size=500)
        assert [x for x, _ in again] == list(range(4_000))
        assert victim not in {w for _, w in again}
        assert local.client.run_on_scheduler(_map_keys_seen, local.router.calls()[-1].call) == 0
    finally:
        client.run(_with_handler, workers=[victim])


def test_a_cancelled_map_leaves_no_batch_to_start_and_no_thread_held(local, tmp_path):
    """Items stuck in a long call into C (time.sleep) outlive the map's timeout: the batches
    queued behind them never start, and the next map goes round the held threads."""
    def stuck(x, marks=str(tmp_path)):
        import time

        open(os.path.join(marks, str(x)), "w").close()
        time.sleep(8)
        return x

    with pytest.raises(RemoteTimeoutError):
        jupyter_remote.function(stuck).map(range(4), batch_size=1, timeout=1)
    started = sorted(os.listdir(tmp_path))
    assert len(started) == local.total_threads()  # one per thread; the others queued
    out = jupyter_remote.function(where).map(range(100), timeout=6)  # 8 s: not behind them
    assert [x for x, _ in out] == list(range(100))
    wait_until(lambda: sum(local.client.run(_running_calls).values()) == 0, 30,
               "the stuck items to return")
    assert sorted(os.listdir(tmp_path)) == started  # the queued ones never started


def _running_calls() -> int:
    from jupyter_remote.worker import state

    return sum(state.running().values())


def pid():
    import os

    return os.getpid()


def test_a_worker_killed_under_a_batch_loses_nothing(tmp_path):
    """SIGKILL of the worker running a batch sent to it: that batch goes again as a task,
    on the worker left, and the map returns every result."""
    cluster = SubprocessCluster(n_workers=2, threads_per_worker=1, dashboard_address=None)
    found = clusters.connect(cluster.scheduler_address, f"lane-{os.getpid()}-{time.time_ns()}")
    mark = str(tmp_path / "slept")

    def item(x, mark=mark):
        import os
        import time

        if x == 0 and not os.path.exists(mark):  # once: the rerun does not wait
            with open(mark + ".tmp", "w") as out:
                out.write(str(os.getpid()))
            os.rename(mark + ".tmp", mark)
            time.sleep(60)
        return x * 3

    try:
        found.client.wait_for_workers(2, timeout=60)
        f = jupyter_remote.function(item, cluster=found.name)
        out: dict = {}
        runner = threading.Thread(target=lambda: out.update(
            value=f.map(range(50), batch_size=10, timeout=90)), daemon=True)
        runner.start()
        wait_until(lambda: os.path.exists(mark), 60, "item 0 to start")
        log = found.router.calls()[-1]
        with open(mark) as held:
            victim_pid = int(held.read())
        [victim] = [w for w, p in found.client.run(pid).items() if p == victim_pid]
        os.kill(victim_pid, signal.SIGKILL)
        runner.join(120)
        assert not runner.is_alive(), "the map did not return"
        assert out["value"] == [x * 3 for x in range(50)]
        assert victim in lane._failed
        assert found.client.run_on_scheduler(_map_keys_seen, log.call) >= 1  # as a task
    finally:
        found.close()
        cluster.close(timeout=5)


def _pause_at(fraction, dask_worker=None):
    """Set the memory fraction at which the worker pauses (its memory monitor then pauses or
    resumes it for real, as it does when the worker's memory fills)."""
    manager = dask_worker.memory_manager
    before = manager.memory_pause_fraction
    manager.memory_pause_fraction = fraction
    return before


def test_a_paused_worker_is_busy_its_batches_go_as_tasks_and_it_is_not_held_against_it(
        local, monkeypatch):
    """A worker paused for memory after the notebook last listed the workers takes no batch
    this way: Dask places the map's batches (on the workers that run), and the paused one is
    sent batches again as soon as it runs."""
    client = local.client
    monkeypatch.setattr(lane, "WORKERS_TTL", 3600.0)  # the list the map uses is the old one
    f = jupyter_remote.function(where)
    f.map(range(100))
    paused = sorted(client.scheduler_info()["workers"])[0]
    [normal] = client.run(_pause_at, 1e-6, workers=[paused]).values()
    try:
        wait_until(lambda: client.scheduler_info()["workers"][paused]["status"] == "paused", 30,
                   "the worker to pause")
        out = f.map(range(4_000), batch_size=500)
        assert [x for x, _ in out] == list(range(4_000))
        assert paused not in {w for _, w in out}
        assert client.run_on_scheduler(_map_keys_seen, local.router.calls()[-1].call) >= 1
        assert paused not in lane._failed  # busy is not a failure
    finally:
        client.run(_pause_at, normal, workers=[paused])
    wait_until(lambda: client.scheduler_info()["workers"][paused]["status"] == "running", 30,
               "the worker to run again")
    again = f.map(range(4_000), batch_size=500)
    assert paused in {w for _, w in again}
    assert client.run_on_scheduler(_map_keys_seen, local.router.calls()[-1].call) == 0
