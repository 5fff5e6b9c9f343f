"""How RemoteFunction calls show in a shell with the extension loaded (text views)."""

from __future__ import annotations

import dask
from distributed import LocalCluster

import jupyter_remote
from jupyter_remote.core import clusters


def double(x):
    return 2 * x


def test_a_first_call_says_at_once_that_its_cluster_connects(shell, capsys):
    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as lc:  # inproc://
        with dask.config.set({"jupyter-remote.clusters.fresh-fn": {"address": lc.scheduler_address}}):
            try:
                f = jupyter_remote.function(double, "fresh-fn")
                assert f(4) == 8
                err = capsys.readouterr().err
                assert "fresh-fn" in err and ("connecting" in err or "starting" in err)
                assert f.map(range(3)) == [0, 2, 4]  # connected now: said once only
                err = capsys.readouterr().err
                assert "connecting" not in err and "starting" not in err
            finally:
                clusters.cluster("fresh-fn").close()
