"""The notebook's half of the log stream: packed storage, a call's log, the router."""

from __future__ import annotations

import threading
import time

import pytest

from jupyter_remote.core import logs
from jupyter_remote.wire.events import pack, topic_for


def _lines(n: int, start: int = 0, **extra) -> list[logs.LogLine]:
    return [{"stream": "stdout", "text": f"line {i}", "t": 1000.0 + i, **extra}
            for i in range(start, start + n)]


def _wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


# -- LogLines ------------------------------------------------------------------------------
def test_log_lines_read_back_what_was_appended_across_chunks():
    kept = logs.LogLines(_lines(3))
    kept.append_packed(pack(_lines(2, 3, index=7)))
    kept.extend([{"stream": "log", "text": "warned", "t": 1005.0, "level": "WARNING"}])
    assert len(kept) == 6
    assert [line["text"] for line in kept] == [f"line {i}" for i in range(5)] + ["warned"]
    assert kept[-1]["level"] == "WARNING" and kept[-1]["stream"] == "log"
    assert kept[3]["index"] == 7 and "index" not in kept[2]
    assert [line["text"] for line in kept[2:5]] == ["line 2", "line 3", "line 4"]
    assert [line["text"] for line in kept[::2]] == ["line 0", "line 2", "line 4"]
    assert kept[4]["t"] == pytest.approx(1004.0, abs=1e-5)
    with pytest.raises(IndexError):
        kept[6]


def test_an_empty_batch_adds_nothing():
    kept = logs.LogLines()
    kept.append_packed(pack([]))
    assert len(kept) == 0 and list(kept) == []


# -- CallLog -------------------------------------------------------------------------------
def test_a_late_running_event_never_revives_a_finished_call():
    log = logs.CallLog("c1", "cell In[1]")
    log.feed({"call": "c1", "state": "running", "worker": "tcp://w:1"})
    log.set_state("done")
    log.feed({"call": "c1", "state": "running"})
    assert log.state == "done" and log.worker == "tcp://w:1" and log.finished is not None


def test_lines_prove_a_queued_call_runs():
    log = logs.CallLog("c2")
    log.feed({"call": "c2", "packed": pack(_lines(2))})
    assert log.state == "running"
    assert [line["text"] for line in log.tail(1)[0]] == ["line 1"] and log.tail(1)[1] == 1


def test_map_progress_sums_batches():
    log = logs.CallLog("c3")
    log.total = 10
    log.feed({"call": "c3", "batch": 0, "done": 4, "failed": 1})
    log.feed({"call": "c3", "batch": 1, "done": 3, "failed": 0})
    log.feed({"call": "c3", "batch": 0, "done": 5, "failed": 1})  # a batch's later count
    assert (log.done, log.failed) == (8, 1)
    assert log.progress().startswith("8 of 10 done, 1 failed")


def test_listen_with_replay_hands_over_earlier_lines_first():
    log = logs.CallLog("c4")
    log.feed({"call": "c4", "packed": pack(_lines(3))})
    seen: list[str] = []
    log.listen(lambda _log, new: seen.extend(line["text"] for line in new), replay=True)
    log.feed({"call": "c4", "packed": pack(_lines(1, 3))})
    assert seen == ["line 0", "line 1", "line 2", "line 3"]


def test_a_broken_listener_does_not_stop_the_others():
    log = logs.CallLog("c5")
    seen: list[int] = []

    def broken(_log, _new):
        raise RuntimeError("view bug")

    log.listen(broken)
    log.listen(lambda _log, new: seen.append(len(new)))
    log.feed({"call": "c5", "packed": pack(_lines(2))})
    assert seen == [2] and len(log.lines) == 2


# -- LogRouter, on a real cluster ----------------------------------------------------------
@pytest.fixture
def own_client(local):
    """A client of its own: a router owns its client's topic (closing it unsubscribes)."""
    from distributed import Client

    with Client(local.address, set_as_default=False) as client:
        yield client


def _subscribed(client) -> None:
    """The router's subscription has reached the scheduler: it travels on the client's
    ordered stream, like a task, so a task submitted after it has run after it (as a call's
    task does after the router's subscription)."""
    client.submit(int, 1, pure=False).result(timeout=60)


def _publish(topic: str, events: list[dict], dask_worker=None) -> None:
    for event in events:
        dask_worker.log_event(topic, event)


def test_the_router_routes_events_of_its_topic_to_each_calls_log(own_client):
    client = own_client
    router = logs.LogRouter(client)
    try:
        assert router.topic == topic_for(client.id)
        a, b = router.open("ca", "cell a"), router.open("cb", "cell b")
        _subscribed(client)
        worker = next(iter(client.scheduler_info(n_workers=-1)["workers"]))
        client.run(_publish, router.topic, [
            {"call": "ca", "packed": pack(_lines(2))},
            {"call": "cb", "packed": pack(_lines(1, 10))},
            {"call": "nobody", "packed": pack(_lines(5))},  # not ours: dropped
            {"call": "ca", "state": "running", "worker": worker},
        ], workers=[worker])
        _wait_until(lambda: a.worker == worker and len(b.lines) == 1)
        assert [line["text"] for line in a.lines] == ["line 0", "line 1"]
        assert [line["text"] for line in b.lines] == ["line 10"]
        router.finish(a, "done")
        assert a.state == "done" and [c.call for c in router.calls()] == ["ca", "cb"]
    finally:
        router.close()


def test_the_router_keeps_a_bounded_history_of_finished_calls(own_client):
    router = logs.LogRouter(own_client)
    router.history = 3
    try:
        for i in range(5):
            router.finish(router.open(f"h{i}"), "done")
        assert [c.call for c in router.calls()] == ["h2", "h3", "h4"]
    finally:
        router.close()


def _kept_events(topic: str, dask_scheduler=None) -> int:
    return len(dask_scheduler.get_events(topic=topic))


def test_the_router_empties_its_topic_on_the_scheduler_after_a_flood(own_client):
    client = own_client
    router = logs.LogRouter(client)
    router.trim_lines = 50
    trimmed = threading.Event()
    original = router._trim

    async def watched():
        await original()
        trimmed.set()

    router._trim = watched
    try:
        log = router.open("flood")
        _subscribed(client)
        worker = next(iter(client.scheduler_info(n_workers=-1)["workers"]))
        client.run(_publish, router.topic, [{"call": "flood", "packed": pack(_lines(60))}],
                   workers=[worker])
        assert trimmed.wait(30), "the router never trimmed its topic"
        assert len(log.lines) == 60  # the notebook keeps everything it received
        assert client.run_on_scheduler(_kept_events, router.topic) == 0
    finally:
        router.close()
