"""``map``/``starmap`` at speed: lazy input, bounded batches in flight, per-item results and
errors in order, log tags, refs in items, timeouts, and the batch sizes (core/maps.py)."""

from __future__ import annotations

import threading

import dask
import pytest

import jupyter_remote
from jupyter_remote.core import batches, cells, maps
from jupyter_remote.exceptions import RemoteTimeoutError
from jupyter_remote.wire.payload import BatchResult
from tests.conftest import wait_until


def inc(x):
    return x + 1


def _map_tasks(dask_scheduler=None) -> int:
    return sum(1 for key, ts in dask_scheduler.tasks.items()
               if str(key).startswith("remote-map-") and ts.state != "memory")


def test_results_keep_their_order_across_many_batches(local):
    f = jupyter_remote.function(inc)
    assert f.map(range(5, 10_005, 3), batch_size=97) == [x + 1 for x in range(5, 10_005, 3)]
    assert f.map([3, 1, 2]) == [4, 2, 3]
    assert f.map(x for x in range(1000)) == list(range(1, 1001))  # a generator
    assert jupyter_remote.function(pow).map(iter([2, 3]), (x for x in [3, 2])) == [8, 9]
    assert jupyter_remote.function(pow).starmap(((b, 2) for b in range(300)),
                                                batch_size=7) == [b * b for b in range(300)]
    assert f.map(iter([])) == []


def _running_batches(call: str) -> int:
    from jupyter_remote.worker import state

    return state.running().get(call, 0)


@pytest.mark.parametrize("direct", [True, False], ids=["straight-to-workers", "as-tasks"])
def test_a_generator_is_read_only_as_batches_go_out(local, tmp_path, direct):
    gate = str(tmp_path / "open")
    pulled = []

    def items():
        for i in range(200):
            pulled.append(i)
            yield i

    def held(x, gate=gate):
        import os
        import time

        deadline = time.time() + 60
        while not os.path.exists(gate) and time.time() < deadline:
            time.sleep(0.01)
        return x * 2

    f = jupyter_remote.function(held)
    threads = local.total_threads()
    ref = {}

    def run():
        with dask.config.set({"jupyter-remote.map.tasks-per-thread": 1,
                              "jupyter-remote.map.direct": direct}):
            ref["out"] = f.map(items(), batch_size=10)

    def running() -> int:
        if not direct:
            return local.client.run_on_scheduler(_map_tasks)
        call = local.router.calls()[-1].call
        return sum(local.client.run(_running_batches, call).values())

    runner = threading.Thread(target=run)
    runner.start()
    try:
        wait_until(lambda: len(pulled) >= 10 * threads, what="the first batches to go out")
        wait_until(lambda: running() == threads, what="the batches on the workers")
        # while they are held: no more than one batch per thread read, sent, running (and
        # as tasks, on the scheduler)
        assert len(pulled) == 10 * threads
        assert running() == threads
        if direct:
            assert local.client.run_on_scheduler(_map_tasks) == 0
    finally:
        open(gate, "w").close()
        runner.join(120)
    assert ref["out"] == [2 * i for i in range(200)]


def test_errors_stay_in_place_or_the_first_is_raised_and_the_rest_cancelled(local):
    def inv(x):
        return 1 / x

    f = jupyter_remote.function(inv)
    out = f.map([1, 0, 2, 0, 4] * 40, errors="return", batch_size=3)
    assert len(out) == 200
    for i, value in enumerate(out):
        if i % 5 in (1, 3):
            assert isinstance(value, ZeroDivisionError), (i, value)
            assert f"item {i}" in str(value.__cause__)
        else:
            assert value == 1 / [1, 0, 2, 0, 4][i % 5]
    with pytest.raises(ZeroDivisionError) as info:
        f.map([1, 2, 0, 3], batch_size=1)
    assert any("item 2 of 4" in note for note in info.value.__notes__)
    wait_until(lambda: local.client.run_on_scheduler(_map_tasks) == 0,
               what="the map's other batches to be cancelled")


def test_every_printed_line_is_routed_with_its_item(local, capsys):
    def shout(x):
        print("item", x)
        return x

    assert jupyter_remote.function(shout).map(range(50), batch_size=7) == list(range(50))
    out = capsys.readouterr().out
    for i in range(50):
        assert f"[{i}] item {i}" in out


def test_refs_inside_items_are_dependencies(local):
    made = cells.run_cell("a = 10\nb = 20\n", {}, local)
    a, b = made.refs["a"], made.refs["b"]
    f = jupyter_remote.function(lambda pair: pair[0] + pair[1])
    assert f.map([(a, 1), (b, 2), (a, b)]) == [11, 22, 30]


def test_a_timeout_cancels_the_map(local, tmp_path):
    def slow(x):
        import time

        time.sleep(30)
        return x

    with pytest.raises(RemoteTimeoutError, match="did not finish"):
        jupyter_remote.function(slow).map(range(4), timeout=1, batch_size=1)
    wait_until(lambda: local.client.run_on_scheduler(_map_tasks) == 0,
               what="the map's batches to be cancelled")


def test_bad_batch_size_and_errors_are_refused_before_anything_runs(local):
    f = jupyter_remote.function(inc)
    with pytest.raises(ValueError, match="batch_size"):
        f.map(range(3), batch_size=0)
    with pytest.raises(ValueError, match="errors must be"):
        f.starmap([(1,)], errors="skip")


def test_batch_sizes_one_per_thread_big_items_alone():
    sizer = batches.Sizer(None, threads=2)
    assert sizer.next(100_000) == 50_000  # what is left, one batch per thread
    assert sizer.next(None) == batches.FIRST_BATCH  # a generator: modest batches
    sizer.measured(BatchResult([0] * 1000, {}, 0.0001))  # cheap items: bigger ones, bounded
    assert sizer.next(None) == batches.STREAM_BATCH
    assert sizer.next(10**8) == batches.MAX_BATCH
    sizer.weigh([bytes(10 * 2**20)] * 3)  # 10 MiB items: one a batch
    assert sizer.next(100) == 1
    assert batches.Sizer(5, threads=2).next(10) == 5  # fixed


def test_a_batch_of_slow_items_stops_after_its_time_and_the_rest_goes_again(local):
    def slowish(x):
        import time

        time.sleep(0.05)
        return -x

    f = jupyter_remote.function(slowish)
    with dask.config.set({"jupyter-remote.map.batch-seconds": 0.2}):
        assert f.map(range(40)) == [-x for x in range(40)]
    batches = local.router.calls()[-1].batches
    assert len(batches) > local.total_threads()  # 20 items a thread took more than one batch


def test_the_worker_loop_packs_results_once(local):
    """A batch's results travel as one object, not as a list Dask would send item by item."""
    from jupyter_remote.core import calls

    call = calls.Call(local, "probe", "map")
    future = call.submit({"kind": "batch", "fn": inc, "args": range(5), "start": 0,
                          "star": False, "batch": 0})
    result = future.result(timeout=60)
    call.finish("done")
    assert isinstance(result, BatchResult)
    assert result.values == [1, 2, 3, 4, 5] and result.errors == {} and result.seconds >= 0


def test_cheap_work_goes_as_one_batch_once_its_cost_is_known():
    def cheap(x):
        return x

    sizer = batches.Sizer(None, threads=2, fn=cheap)
    assert sizer.next(10_000) == 5_000  # cost unknown: one batch per thread
    sizer.measured(BatchResult([0] * 1000, {}, 1000 * 1e-7))  # 0.1 µs an item
    assert sizer.next(10_000) == 10_000  # 1 ms of work: not worth a second task
    assert sizer.next(40_000) == 40_000  # 4 ms: still one
    assert sizer.next(60_000) == 30_000  # 6 ms: two batches side by side pay for their task
    assert sizer.next(10**6) == 500_000  # 100 ms of work: one batch per thread again
    # the function's next map starts from what this one measured
    assert batches.Sizer(None, threads=2, fn=cheap).next(10_000) == 10_000
    def other(x):
        return x

    assert batches.Sizer(None, threads=2, fn=other).next(10_000) == 5_000  # its own cost


@pytest.fixture
def as_tasks():
    """The map's batches go as tasks (not straight to the workers): what the test is about
    happens on that path only."""
    with dask.config.set({"jupyter-remote.map.direct": False}):
        yield


def _sent_map_keys(call_id, dask_worker=None) -> list[str]:
    """Keys of ``call_id``'s batches this worker sent to anyone (a client's fetch too)."""
    return [str(k) for entry in dask_worker.transfer_outgoing_log for k in entry["keys"]
            if str(k).startswith(f"remote-map-{call_id}-")]


def test_small_batch_results_ride_the_stream_and_big_ones_are_fetched(local, as_tasks):
    """Small results come with the call's events (one hop less than fetching them); results
    over the stream's limit are fetched from the worker as before, and both are right."""
    from jupyter_remote.worker import runner

    f = jupyter_remote.function(inc)
    assert f.map(range(20_000)) == list(range(1, 20_001))
    small = local.router.calls()[-1].call
    big_item = runner.STREAM_LIMIT  # each result alone is over the limit

    def blob(n):
        return bytes(n)

    got = jupyter_remote.function(blob).map([big_item] * 4)
    assert [len(b) for b in got] == [big_item] * 4
    big = local.router.calls()[-1].call
    client = local.client
    assert sum(client.run(_sent_map_keys, small).values(), []) == []
    assert len(sum(client.run(_sent_map_keys, big).values(), [])) >= 1


def test_a_streamed_batch_sends_its_final_count_with_its_results(local, as_tasks):
    """One event per batch carries both its results and its final progress (a separate
    progress event would cost a message each way); the call's counts stay right."""
    def inv(x):
        return 1 / (x % 500)

    f = jupyter_remote.function(inv)
    out = f.map(range(3_000), batch_size=1_000, errors="return")
    assert sum(isinstance(v, ZeroDivisionError) for v in out) == 6
    log = local.router.calls()[-1]
    assert (log.done, log.failed) == (3_000, 6)
    # (few failures: their tracebacks count towards the router's trimming of the topic)
    events = [e for _, e in local.client.get_events(local.router.topic)
              if e.get("call") == log.call and "batch" in e]
    with_results = sorted((e["batch"], e["done"], e["failed"]) for e in events if "result" in e)
    assert with_results == [(0, 1_000, 2), (1, 1_000, 2), (2, 1_000, 2)]
    # any other progress event of a batch came before its end (a slow moment), never after
    assert all(e["done"] < 1_000 for e in events if "result" not in e)
