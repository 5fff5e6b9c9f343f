"""A 50 ms link: a cell still finishes, and its log still arrives whole and in order.

With ``tc netem`` (where the kernel has ``sch_netem``) every host's link gets 50 ms each way.
Where it does not (this suite's VMs), the notebook reaches the scheduler through a relay
that holds every chunk 50 ms each way (tests/hosts/relay.py): the link the log travels on
to the notebook is the slow one either way.
"""

from __future__ import annotations

import os
import time

import pytest

from jupyter_remote.core import calls, clusters
from tests.hosts.relay import Relay


def chatty(n):
    import time

    for i in range(n):
        print(f"line {i:03d}", flush=True)
        if i % 10 == 0:
            time.sleep(0.01)
    return n


@pytest.fixture
def slow_link(hosts):
    """The cluster as seen over a 50 ms link."""
    cluster, found = hosts
    network = cluster.network
    if network.has_netem():
        for host in ("s", *cluster.hosts):
            network.delay(host, 50)
        try:
            yield found
        finally:
            for host in ("s", *cluster.hosts):
                network.delay(host, 0)
        return
    relay = Relay(f"{network.subnet}.1", (cluster.scheduler_ip, 8786), delay=0.05)
    slow = clusters.connect(f"tcp://{network.subnet}.1:{relay.port}",
                            f"slow-{os.getpid()}-{time.time_ns()}")
    try:
        yield slow
    finally:
        slow.close()
        relay.close()


def test_a_slow_link_keeps_the_log_whole_and_in_order(slow_link):
    start = time.monotonic()
    slow_link.client.run_on_scheduler(os.getpid)
    assert time.monotonic() - start >= 0.1, "the link is not slow: the test would prove nothing"
    seen: list = []
    call = calls.Call(slow_link, "chatty()", "call")
    future = call.submit({"kind": "call", "fn": chatty, "args": (300,), "kwargs": {}})
    [value] = calls.wait(call, [], fetch=[future], on_lines=seen.extend, timeout=120)
    call.finish("done")
    assert value == 300
    texts = [line["text"] for line in seen if line["stream"] == "stdout"]
    assert texts == [f"line {i:03d}" for i in range(300)]
