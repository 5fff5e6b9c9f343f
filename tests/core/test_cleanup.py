"""Cleaning up: freeing refs drops their values from the cluster now; shutting down follows
ownership (started here: closed; connected: disconnected; the sidebar's or another kernel's:
refused, naming the owner). Real clusters: LocalClusters with worker processes."""

from __future__ import annotations

import os
import time

import dask
import pytest
from distributed import LocalCluster

import jupyter_remote
from jupyter_remote.core import cells, cleanup, clusters, registry
from tests.conftest import wait_until


def _keys(dask_scheduler=None) -> list[str]:
    return [str(k) for k in dask_scheduler.tasks]


def test_free_drops_values_from_the_cluster_and_names_from_the_namespace(local):
    ns = {"plain": 3}
    result = cells.run_cell("a = bytes(1000)\nb = 2\nc = 3\n", {}, local)
    ns.update(result.bound)
    keys = {n: ns[n].key for n in "abc"}
    del result
    # The takes reach the scheduler a moment after the cell returns (as any submit does).
    wait_until(lambda: set(keys.values()) <= set(local.client.run_on_scheduler(_keys)),
               what="the cell's values on the scheduler")
    assert cleanup.free(ns, ["a"]) == ["a"] and "a" not in ns
    wait_until(lambda: keys["a"] not in local.client.run_on_scheduler(_keys), what="a freed")
    assert keys["b"] in local.client.run_on_scheduler(_keys)
    with pytest.raises(KeyError, match="'nope' is not bound"):
        cleanup.free(ns, ["nope"])
    with pytest.raises(TypeError, match="'plain' is a int, not a remote value"):
        cleanup.free(ns, ["b", "plain"])
    assert "b" in ns  # nothing was freed: the bad name was found first
    assert sorted(cleanup.free(ns, ["all"])) == ["b", "c"] and ns == {"plain": 3}
    wait_until(lambda: not {keys["b"], keys["c"]} & set(local.client.run_on_scheduler(_keys)),
               what="b and c freed")


def test_shutdown_disconnects_from_a_cluster_it_only_connected_to():
    with LocalCluster(n_workers=1, processes=True, dashboard_address="127.0.0.1:0") as lc:
        found = clusters.connect(lc.scheduler_address, name="borrowed")
        assert found.client.submit(int, "4").result() == 4
        said = jupyter_remote.cluster("borrowed").shutdown()
        assert "disconnected from cluster 'borrowed'" in said
        assert lc.scheduler.status.name == "running" and len(lc.scheduler.workers) == 1


def test_shutdown_closes_a_config_factory_cluster_it_started():
    factory = {"factory": "distributed.LocalCluster",
               "kwargs": {"n_workers": 1, "processes": True, "dashboard_address": "127.0.0.1:0"}}
    with dask.config.set({"jupyter-remote.clusters.made-here": factory}):
        found = jupyter_remote.cluster("made-here")
        first = found.client.scheduler.address
        assert found.client.submit(int, "5").result() == 5
        said = found.shutdown()
        assert "shut down cluster 'made-here'" in said
        again = jupyter_remote.cluster("made-here")
        assert again.client.submit(int, "6").result() == 6  # a fresh one, started on use
        assert again.client.scheduler.address != first
        again.shutdown()


@pytest.mark.parametrize("source, owner", [
    ("server", r"belongs to the Remote clusters sidebar"),
    ("kernel", r"belongs to another kernel \(other\.ipynb, process \d+\)"),
])
def test_shutdown_refuses_what_others_own(registry_path, source, owner):
    entry = {"address": "tcp://127.0.0.1:1", "source": source, "pid": os.getpid(),
             "created": time.time(), "status": "running", "notebook": "/work/other.ipynb"}
    name = f"theirs-{source}"
    registry.change(name, lambda old: dict(entry))
    found = jupyter_remote.cluster(name)
    with pytest.raises(cleanup.NotOwnerError, match=owner):
        found.shutdown()
    assert registry.get(name) is not None  # untouched


def test_releasing_held_shares_lets_go_of_automatically_shared_inputs(local):
    from jupyter_remote.core import share

    from jupyter_remote.core import digest

    big = bytes(2_000_001)
    cells.run_cell("n = len(big)\n", {"big": big}, local)  # big is shared, and held
    shared = ["remote-share-" + digest.value_digest(big)]
    assert shared[0] in local.client.run_on_scheduler(_keys)
    assert share.release_held(local) >= 1  # what `%remote free all` does besides free()
    wait_until(lambda: not set(shared) & set(local.client.run_on_scheduler(_keys)),
               what="the shared input released")


@pytest.mark.slow
def test_shutdown_of_the_embedded_cluster_in_a_real_kernel(tmp_path):
    """The kernel's own embedded cluster closes, and the next %%remote starts a fresh one."""
    from tests.widgets.kernel import Kernel

    k = Kernel(env={"DASK_JUPYTER_REMOTE__LOCAL__N_WORKERS": "1",
                    "DASK_JUPYTER_REMOTE__WIDGETS": "text"}, cwd=str(tmp_path))
    try:
        k.execute("%load_ext jupyter_remote\nimport jupyter_remote", timeout=60)
        k.execute("%%remote\nx = 1\n", timeout=180)
        k.execute("first = jupyter_remote.cluster().client.scheduler.address")
        msg = k.submit("%remote shutdown")
        k.reply(msg, timeout=120)
        assert "shut down cluster 'local'" in k.text(msg), k.text(msg)
        k.execute("%%remote\ny = 2\n", timeout=180)
        msg = k.submit("print('fresh', jupyter_remote.cluster().client.scheduler.address != first,"
                       " y.get())")
        k.reply(msg)
        assert "fresh True 2" in k.text(msg), k.text(msg)
    finally:
        k.close()
