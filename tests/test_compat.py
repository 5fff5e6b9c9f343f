"""Each private hook of ``_compat`` works on the installed Dask, ipykernel and CPython: when a
release breaks one, this file says which."""

from __future__ import annotations

import threading
import time

import pytest

from jupyter_remote import _compat


def test_zero_interval_sets_a_real_batched_send(local):
    comm = local.client.scheduler_comm
    assert _compat.zero_interval(comm) is True
    assert comm.interval == 0
    assert _compat.zero_interval(None) is False
    assert _compat.zero_interval(object()) is False  # the fallback: nothing to set


def test_when_done_calls_back_on_the_clients_loop_for_each_ending(local):
    """Finished, failed and cancelled futures each call back once, on the client's event
    loop thread (not Dask's callback thread pool, which refuses work at interpreter exit)."""
    client = local.client
    seen: dict[str, tuple[str, str]] = {}
    arrived = threading.Semaphore(0)

    def note(name):
        def fn(future):
            seen[name] = (future.status, threading.current_thread().name)
            arrived.release()
        return fn

    def fail():
        raise ValueError("no")

    finished = client.submit(lambda: 1, pure=False)
    failed = client.submit(fail, pure=False)
    slow = client.submit(time.sleep, 30, pure=False)
    for name, future in [("finished", finished), ("failed", failed), ("slow", slow)]:
        _compat.when_done(future, note(name))
    for _ in range(2):
        assert arrived.acquire(timeout=30)
    assert "slow" not in seen  # still pending: no call back yet
    slow.cancel()
    assert arrived.acquire(timeout=30)
    loop_thread: list[str] = []
    client.loop.add_callback(lambda: (loop_thread.append(threading.current_thread().name),
                                      arrived.release()))
    assert arrived.acquire(timeout=30)
    assert {k: v[0] for k, v in seen.items()} == {"finished": "finished", "failed": "error",
                                                   "slow": "cancelled"}
    assert {v[1] for v in seen.values()} == set(loop_thread)
    _compat.when_done(finished, note("again"))  # already done: at once
    assert arrived.acquire(timeout=30) and seen["again"][0] == "finished"


def _events(topic, dask_scheduler=None):
    return len(dask_scheduler.get_events(topic=topic))


def test_truncate_events_empties_a_topic_on_the_scheduler(local):
    client = local.client
    topic = "jupyter-remote-compat-test"
    client.log_event(topic, {"n": 1})
    deadline = time.monotonic() + 30
    while client.run_on_scheduler(_events, topic) == 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    def truncate(topic, dask_scheduler=None):
        return _compat.truncate_events(dask_scheduler, topic)

    assert client.run_on_scheduler(truncate, topic) is True
    assert client.run_on_scheduler(_events, topic) == 0


def _views(keys, dask_scheduler=None):
    return [tuple(v) for v in _compat.scheduler_tasks(dask_scheduler, keys)]


def test_scheduler_tasks_reads_state_annotations_worker_and_owner(local):
    import dask
    from distributed import Event

    client = local.client
    go = Event(client=client)

    def wait_for(ev):
        ev.wait(60)
        return 1

    with dask.annotate(jupyter_remote={"call": "compat"}):
        future = client.submit(wait_for, go, key="compat-task", pure=False)
    try:
        deadline = time.monotonic() + 30
        while True:  # the task reaches the scheduler, then a worker
            found = client.run_on_scheduler(_views, [future.key])
            if found and found[0][1] == "processing":
                [(key, state, notes, worker, owners)] = found
                break
            assert time.monotonic() < deadline, state
            time.sleep(0.02)
        assert key == "compat-task" and notes == {"jupyter_remote": {"call": "compat"}}
        assert worker in client.scheduler_info(n_workers=-1)["workers"]
        assert owners == [client.id]
    finally:
        go.set()
    assert future.result(timeout=30) == 1
    assert client.run_on_scheduler(_views, ["no-such-key"]) == []


def test_cancel_for_cancels_a_task_on_behalf_of_its_owner(local):
    import distributed

    client = local.client
    future = client.submit(time.sleep, 30, key="compat-cancel", pure=False)
    deadline = time.monotonic() + 30
    while not client.run_on_scheduler(_views, [future.key]):  # it has reached the scheduler
        assert time.monotonic() < deadline
        time.sleep(0.02)

    def cancel(key, owner, dask_scheduler=None):
        return _compat.cancel_for(dask_scheduler, key, owner, "compat test")

    assert client.run_on_scheduler(cancel, future.key, client.id) is True
    with pytest.raises((distributed.client.FutureCancelledError, Exception)):
        future.result(timeout=30)
    assert future.status == "cancelled"


def test_stop_adaptive_stops_a_deployments_adaptive_scaling():
    from distributed import LocalCluster

    with LocalCluster(n_workers=0, processes=False, dashboard_address="127.0.0.1:0") as cluster:
        cluster.adapt(minimum=0, maximum=1)
        assert cluster._adaptive is not None
        _compat.stop_adaptive(cluster)
        assert cluster._adaptive is None
        _compat.stop_adaptive(cluster)  # nothing to stop: no error


def test_async_raise_stops_a_python_loop_in_another_thread():
    caught: list[BaseException] = []
    started = threading.Event()

    def spin():
        started.set()
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                pass
        except KeyboardInterrupt as exc:
            caught.append(exc)

    thread = threading.Thread(target=spin)
    thread.start()
    assert started.wait(30)
    assert _compat.async_raise(thread.ident, KeyboardInterrupt) is True
    thread.join(30)
    assert not thread.is_alive() and len(caught) == 1
    assert _compat.async_raise(thread.ident, KeyboardInterrupt) is False  # gone: no thread hit


def test_the_installed_ipykernel_has_the_subshell_hooks():
    from ipykernel.comm import Comm
    from ipykernel.shellchannel import ShellChannelThread
    from ipykernel.subshell_manager import SubshellManager

    assert hasattr(ShellChannelThread, "manager")
    assert hasattr(SubshellManager, "_create_subshell")

    class FakeComm:  # the feature test reads the attribute the real Comm has
        _reply_subshell_for = Comm._reply_subshell_for

    comm = FakeComm()
    assert _compat.can_route_comm(comm) and not _compat.can_route_comm(object())
    _compat.route_comm(comm, "sub-1")
    assert comm._reply_subshell_for({}, None) == "sub-1"
    assert _compat.subshell_manager(object(), threading.current_thread()) is None


def test_never_steal_keeps_a_prefix_off_work_stealing(local):
    def stolen_never(dask_scheduler=None):
        from distributed import stealing

        return "remote-take" in stealing.fast_tasks

    assert local.client.run_on_scheduler(stolen_never)  # set when the notebook connected
    assert _compat.never_steal("remote-take-test") is True


def test_parse_is_ast_parse_and_names_the_culprit_of_a_syntax_error():
    """The ast.parse of every cell and of the layout check (past CPython gh-106905)."""
    import ast

    tree = _compat.parse("x = 1\ny = x + 1\n", "<cell>")
    assert ast.dump(tree) == ast.dump(ast.parse("x = 1\ny = x + 1\n"))
    with pytest.raises(SyntaxError) as caught:
        _compat.parse("x = (\n", "<cell 7>")
    assert caught.value.filename == "<cell 7>"


def test_call_worker_sends_an_op_and_gives_up_connecting_in_time(local):
    client = local.client
    worker = sorted(client.scheduler_info()["workers"])[0]

    async def ask():
        return await _compat.call_worker(client, worker, "identity", 5.0)

    assert client.sync(ask)["id"]  # the worker's own answer
    import socket

    with socket.socket() as held:  # a port that accepts nothing: nobody listens on it
        held.bind(("127.0.0.1", 0))
        nobody = f"tcp://127.0.0.1:{held.getsockname()[1]}"

        async def nowhere():
            return await _compat.call_worker(client, nobody, "identity", 0.5)

        began = time.monotonic()
        with pytest.raises(OSError):
            client.sync(nowhere)
    assert time.monotonic() - began < 20  # bounded by the call's timeout, not the pool's 30 s


def _worker_seen_from_a_thread(dask_worker=None):
    from distributed import get_worker
    from distributed.worker import thread_state

    out = {}

    def body():
        with _compat.as_task(dask_worker, "k"):
            out["worker"] = get_worker() is dask_worker
            out["key"] = thread_state.key
            out["task"] = get_worker().get_current_task()
        try:
            get_worker()
        except ValueError:
            out["after"] = "none"

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(30)
    return out


def test_as_task_lets_get_worker_find_the_worker_in_a_thread_of_ours(local):
    found = local.client.run(_worker_seen_from_a_thread)
    assert list(found.values()) == [{"worker": True, "key": "k", "task": "k", "after": "none"}] * 2
