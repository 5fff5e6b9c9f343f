"""The embedded cluster listens on loopback only, requirement environments included; and it
is tuned to notice a silent worker within seconds."""

from __future__ import annotations

import ipaddress

import dask
import psutil

import jupyter_remote
from tests import wheelhouse

house = wheelhouse.house


def toy_version():
    import jrtoy

    return jrtoy.VERSION


def listening(procs: list[psutil.Process]) -> list[tuple[int, str, str, int]]:
    """(pid, name, ip, port) of every listening TCP socket of ``procs``."""
    out = []
    for proc in procs:
        try:
            conns = proc.net_connections(kind="inet")
            name = proc.name()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        for c in conns:
            if c.status == psutil.CONN_LISTEN:
                out.append((proc.pid, name, c.laddr.ip, c.laddr.port))
    return out


def test_nothing_the_package_started_listens_beyond_loopback(local, house):
    # An environment process too: a --reqs call starts one under a worker.
    with dask.config.set({"jupyter-remote.pip-options": ["--no-index", "--find-links", house]}):
        assert jupyter_remote.function(toy_version, local, reqs=["jrtoy==1.0"])() == "1.0"
    started = psutil.Process().children(recursive=True)
    kinds = {" ".join(p.cmdline()[1:5]) for p in started if p.is_running()}
    assert any("jupyter_remote.worker.envchild" in k for k in kinds), kinds  # an env process
    assert len(started) >= 3, f"expected a scheduler, workers and an env process; got {kinds}"
    sockets = listening(started)
    assert sockets, "the cluster's processes listen on nothing: the test would prove nothing"
    outside = [s for s in sockets if not ipaddress.ip_address(s[2]).is_loopback]
    assert not outside, f"listening beyond loopback (pid, process, address, port): {outside}"
    assert "://127.0.0.1:" in (local.dashboard_link or ""), local.dashboard_link
    assert local.address.startswith("tcp://127.0.0.1:")


def test_the_embedded_scheduler_drops_a_silent_worker_within_seconds(local):
    ttl = local.client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.worker_ttl)
    assert ttl == 10
