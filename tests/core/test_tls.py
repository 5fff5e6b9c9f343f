"""A cluster reached over ``tls://`` with Dask's ``Security``: a cell, a function and a
``--reqs`` call run on it, with temporary certificates (``Security.temporary()``)."""

from __future__ import annotations

import os

import dask
import pytest
from distributed import LocalCluster
from distributed.security import Security

import jupyter_remote
from jupyter_remote.core import clusters
from tests import wheelhouse

house = wheelhouse.house


def toy_version():
    import jrtoy

    return jrtoy.VERSION


@pytest.fixture(scope="module")
def tls_cluster():
    security = Security.temporary()  # needs `cryptography` (the test extra)
    cluster = LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                           protocol="tls://", host="127.0.0.1", security=security,
                           dashboard_address=None)
    found = clusters.connect(cluster.scheduler_address, f"tls-{os.getpid()}", security=security)
    yield found
    found.close()
    cluster.close()


def test_a_tls_cluster_runs_cells_functions_and_reqs_calls(tls_cluster, run, house):
    assert tls_cluster.address.startswith("tls://127.0.0.1:")
    run(f"%%remote {tls_cluster.name} --get --out y\ny = x * 2\n", x=21)
    assert run("y") == 42
    assert jupyter_remote.function(lambda a: a + 1, tls_cluster)(1) == 2
    with dask.config.set({"jupyter-remote.pip-options": ["--no-index", "--find-links", house]}):
        assert jupyter_remote.function(toy_version, tls_cluster, reqs=["jrtoy==1.0"])() == "1.0"


def test_without_the_certificates_a_tls_cluster_refuses(tls_cluster):
    with dask.config.set({"jupyter-remote.connect-timeout": "3s"}):
        with pytest.raises(jupyter_remote.exceptions.ClusterConnectError):
            clusters.connect(tls_cluster.address, f"tls-bare-{os.getpid()}")
