"""Fixtures of the multi-host suite: a network of namespaces and a Dask cluster across it.

Needs root (network namespaces); without it every test here is skipped with the reason, and
under CI=true a skip fails the run (tests/notrun.py): `.ci/run` runs as root.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.hosts import network as net
from tests.hosts.cluster import HostCluster


@pytest.fixture(scope="module")
def network():
    why = net.can_make_namespaces()
    if why:
        pytest.skip(why)
    net.remove_stale()
    made = net.Network()
    try:
        yield made
    finally:
        made.close()


@pytest.fixture(scope="module")
def hosts(network, tmp_path_factory):
    """A scheduler host and two worker hosts (w1, w2), each worker offering the resource
    named after its host (``resources={"w1": 1}`` pins a call there)."""
    from jupyter_remote.core import clusters

    cluster = HostCluster(network, tmp_path_factory.mktemp("hosts"), workers=2)
    found = None
    try:
        found = connect(cluster, f"hosts-{os.getpid()}-{time.time_ns()}")
        found.client.wait_for_workers(2, timeout=60)
        yield cluster, found
    finally:
        if found is not None:
            found.close()
        cluster.close()
        clusters.close_all()


def connect(cluster: HostCluster, name: str):
    """Connect the notebook to the scheduler host, retrying while it starts (bounded)."""
    from jupyter_remote.core import clusters
    from jupyter_remote.exceptions import ClusterConnectError

    deadline = time.monotonic() + 60
    while True:
        try:
            return clusters.connect(cluster.address, name)
        except ClusterConnectError:
            if time.monotonic() > deadline:
                raise AssertionError(f"the scheduler host never answered:\n{cluster.log('s')}") from None
            time.sleep(0.5)
