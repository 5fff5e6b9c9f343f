"""README promises that need a second real cluster: a version mismatch warned on connect,
``%remote use NAME``, ``%%remote tcp://...``, ``--resources`` on a worker that offers them,
remote warnings reaching the cell, and ``%remote cancel all``.

The second cluster is a real LocalCluster with worker processes on 127.0.0.1. The mismatch
is real too: the workers of one cluster run a preload that puts an installed-package record
of another ``jupyter_remote`` version first on their ``sys.path``, so what the workers report
(through Dask's own version gathering) genuinely differs from the notebook's.
"""

from __future__ import annotations

import os
import warnings

import pytest
from distributed import LocalCluster

from jupyter_remote.core import clusters
from tests.conftest import wait_for_file_source, wait_until


@pytest.fixture(scope="module")
def gpu_cluster():
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1",
                      dashboard_address=None, resources={"GPU": 1}) as c:
        yield c
        for found in clusters.all_clusters():  # disconnect before the scheduler goes away
            if getattr(found, "address", None) == c.scheduler_address:
                found.close()


def _other_version_preload(folder) -> str:
    dist = folder / "site" / "jupyter_remote-0.0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: jupyter_remote\nVersion: 0.0.1\n")
    preload = folder / "other_version.py"
    preload.write_text(f"import sys\nsys.path.insert(0, {str(folder / 'site')!r})\n")
    return str(preload)


def test_a_real_version_mismatch_warns_on_connect(tmp_path, monkeypatch):
    from jupyter_remote.core import versions

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, preload=[_other_version_preload(tmp_path)]) as other:
        # a cluster closed earlier listened at this address (ports are reused): checked anyway
        monkeypatch.setattr(versions, "_warned", {other.scheduler_address})
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            found = clusters.connect(other.scheduler_address, name="mismatched")
        try:
            from jupyter_remote.core.versions import VersionMismatchWarning

            hits = [w for w in caught if issubclass(w.category, VersionMismatchWarning)]
            assert len(hits) == 1, [str(w.message) for w in caught]
            text = str(hits[0].message)
            assert "jupyter_remote: notebook has" in text and "0.0.1" in text
            assert "'mismatched'" in text
        finally:
            found.close()


def test_remote_use_name_makes_it_the_default_of_cells(run, gpu_cluster):
    clusters.connect(gpu_cluster.scheduler_address, name="gpubox")
    try:
        run("%remote use gpubox")
        assert clusters.default_name() == "gpubox"
        run("%%remote\nimport os\nwhere = os.getpid()\n")
        pids = set(gpu_cluster.get_client().run(os.getpid).values())
        assert run("where").get(timeout=60) in pids
    finally:
        clusters.use("local")


def test_a_scheduler_address_as_the_cluster_argument(run, gpu_cluster):
    run(f"%%remote {gpu_cluster.scheduler_address}\nimport os\nwhere_tcp = os.getpid()\n")
    pids = set(gpu_cluster.get_client().run(os.getpid).values())
    assert run("where_tcp").get(timeout=60) in pids


def test_resources_run_on_a_worker_that_offers_them(run, gpu_cluster):
    address = gpu_cluster.scheduler_address
    run(f"%%remote {address} --resources GPU=1\nimport os\non_gpu = os.getpid()\n")
    pids = set(gpu_cluster.get_client().run(os.getpid).values())
    assert run("on_gpu").get(timeout=60) in pids
    import jupyter_remote

    f = jupyter_remote.function(lambda: os.getpid(), cluster=address, resources={"GPU": 1})
    assert f() in pids
    from jupyter_remote.exceptions import ResourceError

    with pytest.raises(ResourceError, match="GPU"):  # and the check can fail: 2 are not offered
        jupyter_remote.function(lambda: 1, cluster=address, resources={"GPU": 2})()


def test_remote_warnings_reach_the_cell(shell, run, capsys):
    run("%%remote\nimport warnings\nwarnings.warn('careful: promise-7 warned remotely')\n")
    out = capsys.readouterr()
    assert "careful: promise-7 warned remotely" in out.out + out.err


def test_cancel_all_stops_running_and_queued_work(run, tmp_path, capsys):
    gate = str(tmp_path / "never")
    run("%%remote --no-wait\n" + wait_for_file_source(gate, timeout=120) + "slow_a = 1\n")
    run("%%remote --no-wait\n" + wait_for_file_source(gate, timeout=120) + "slow_b = 2\n")
    refs = [run("slow_a"), run("slow_b")]
    capsys.readouterr()
    run("%remote cancel all")
    assert "cancelled" in capsys.readouterr().out
    wait_until(lambda: all(r.done() for r in refs), timeout=60, what="both refs to end")
    for r in refs:
        assert r.status in ("cancelled", "interrupted"), r.status
        with pytest.raises(BaseException, match="(?i)cancel|interrupt"):
            r.get(timeout=60)
