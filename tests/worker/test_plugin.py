"""The one worker plugin: registered when the notebook connects, on every worker (restarted
ones too), installing output capture before any task runs; cleanup of kept values."""

from __future__ import annotations

import sys

import pytest
from distributed import Client, LocalCluster

import jupyter_remote
from jupyter_remote.core import cells, clusters
from jupyter_remote.worker.plugin import NAME
from tests.conftest import wait_until


def _worker_state(dask_worker=None) -> dict:
    from jupyter_remote.worker import capture

    return {
        "plugin": NAME in dask_worker.plugins,
        "routed": capture.installed() and type(sys.stdout).__name__ == "_RoutedStream",
    }


def _plugins(dask_scheduler=None) -> list[str]:
    return sorted(dask_scheduler.worker_plugins)


@pytest.fixture
def fresh():
    """A cluster of its own (one worker process behind a nanny, so it can restart)."""
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                      dashboard_address="127.0.0.1:0") as lc:
        yield lc


def test_connecting_installs_capture_on_every_worker_before_any_task(fresh):
    with Client(fresh) as raw:  # a plain Dask client: nothing of ours on the workers yet
        assert all(not s["plugin"] and not s["routed"] for s in raw.run(_worker_state).values())
    cluster = clusters.connect(fresh.scheduler_address, name="plugin-fresh")
    try:
        states = cluster.client.run(_worker_state)
        assert states and all(s == {"plugin": True, "routed": True} for s in states.values())
        assert cluster.client.run_on_scheduler(_plugins).count(NAME) == 1
    finally:
        cluster.close()


def test_a_second_notebook_registers_it_once(fresh):
    first = clusters.connect(fresh.scheduler_address, name="plugin-first")
    second = clusters.connect(fresh.scheduler_address, name="plugin-second")
    try:
        assert second.client.run_on_scheduler(_plugins).count(NAME) == 1
        assert all(s["plugin"] for s in second.client.run(_worker_state).values())
    finally:
        second.close()
        first.close()


def test_a_restarted_worker_gets_it_again_and_streams_output(fresh):
    cluster = clusters.connect(fresh.scheduler_address, name="plugin-restart")
    try:
        client = cluster.client
        [before] = list(client.scheduler_info(n_workers=-1)["workers"])
        client.restart_workers([before])
        wait_until(lambda: list(client.scheduler_info(n_workers=-1)["workers"]) not in ([], [before]),
                   timeout=60, what="the restarted worker")
        assert all(s == {"plugin": True, "routed": True} for s in client.run(_worker_state).values())
        lines: list[str] = []

        def shout(x):
            print("after restart", x)
            return x

        from jupyter_remote.core import views

        class Recorder(views.TextFunctionView):
            def on_lines(self, new):
                lines.extend(line["text"] for line in new)

        views.set_function_view(Recorder)
        try:
            assert jupyter_remote.function(shout, cluster)(7) == 7
        finally:
            views.set_function_view(None)
        assert lines == ["after restart 7"]
    finally:
        cluster.close()


def _kept_calls(dask_worker=None) -> list[str]:
    from jupyter_remote.worker import state

    return sorted(state._kept)


def test_values_no_take_collects_are_dropped_when_the_cell_leaves_the_worker(fresh):
    cluster = clusters.connect(fresh.scheduler_address, name="plugin-reaper")
    try:
        result = cells.run_cell("a = 1\nb = bytes(1000)\n", {}, cluster, wait=False)
        call = result.call.id
        for ref in result.refs.values():  # the refs go before their takes ran, or after
            ref.cancel()
        del result
        wait_until(lambda: not any(call in kept for kept in cluster.client.run(_kept_calls).values()),
                   timeout=60, what="the untaken values to be dropped")
    finally:
        cluster.close()
