"""Faults on real hosts (issue 14): how long each fault takes to be told, as a user sees it.

    sudo .venv/bin/python benchmarks/faults.py          # ~2-3 min on 2 cores
    .venv/bin/python benchmarks/faults.py --no-hosts    # without root: skips the cut link

Each figure is a wall time in the notebook's process, measured once per run (faults are
slow and few; run it again for spread):

1. **lost scheduler**: a call runs; its scheduler is killed (SIGKILL). Time until the call
   raises (``ClusterConnectError``, not "cancelled"), then how long ``Cluster.info()`` (what
   ``%remote clusters`` shows) takes afterwards, and how long the next call takes to fail
   with ``connect-timeout: 3s``.
2. **a worker that does not answer**: a call runs on a worker stopped with SIGSTOP (it holds
   its sockets, as a host behind a cut cable does). ``timeout=4``: time until
   ``RemoteTimeoutError``; then ``cancel()`` alone.
3. **a cut link** (root only): the multi-host harness of tests/hosts; a call prints a tick
   every 0.5 s; the link of its worker's host is set down. Time from the cut until the
   notebook marks the rerun ("worker X was lost; attempt 2 of 4 on Y"), and until the call
   returns.
4. **log memory**: three 200,000-line floods with ``logs.max-bytes`` at 16 MB: the bytes
   the kernel keeps, and lines spilled.

Prints a table, then a line starting with ``BENCHMARK_JSON``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from tests import hermetic  # noqa: E402  (before dask: the run's own config folders)

hermetic.pin()

import dask  # noqa: E402
from distributed.deploy.subprocess import SubprocessCluster  # noqa: E402

import jupyter_remote  # noqa: E402
from jupyter_remote.core import calls, clusters, spill  # noqa: E402
from jupyter_remote.exceptions import ClusterConnectError, RemoteTimeoutError  # noqa: E402


def ticks(n):
    import time

    for i in range(n):
        print("tick", i, flush=True)
        time.sleep(0.5)
    return n


def flood(n):
    for i in range(n):
        print(f"line {i:06d} of a flood, long enough to weigh something")
    return n


def pid():
    import os

    return os.getpid()


def wait_for(predicate, limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up after {limit} s waiting for {what}")
        time.sleep(0.01)


def shut(cluster) -> None:
    try:  # a cluster whose scheduler was killed does not close cleanly
        cluster.close(timeout=5)
    except Exception:
        pass


def started(found, seconds: int = 600, resources=None):
    call = calls.Call(found, "ticks()", "call")
    future = call.submit({"kind": "call", "fn": ticks, "args": (seconds,), "kwargs": {}},
                         resources=resources)
    wait_for(lambda: len(call.log.lines) >= 1, 60, "the call to start")
    return call, future


def lost_scheduler() -> dict:
    cluster = SubprocessCluster(n_workers=1, threads_per_worker=2, dashboard_address=None)
    found = clusters.connect(cluster.scheduler_address, "bench-lost")
    out: dict = {}
    try:
        with dask.config.set({"jupyter-remote.connect-timeout": "3s"}):
            call, future = started(found)
            t0 = time.monotonic()
            os.kill(cluster.scheduler.process.pid, signal.SIGKILL)
            try:
                calls.wait(call, [], fetch=[future])
            except ClusterConnectError as exc:
                out["raised"] = type(exc).__name__
            out["call_raises_s"] = time.monotonic() - t0
            call.finish("failed")
            t0 = time.monotonic()
            info = found.info()
            out["clusters_info_s"] = time.monotonic() - t0
            out["status"] = info["status"]
            t0 = time.monotonic()
            try:
                jupyter_remote.function(pid, found)()
            except ClusterConnectError:
                pass
            out["next_call_fails_s"] = time.monotonic() - t0
            out["connect_timeout_s"] = 3.0
    finally:
        found.close()
        shut(cluster)
    return out


def silent_worker() -> dict:
    cluster = SubprocessCluster(n_workers=1, threads_per_worker=2, dashboard_address=None)
    found = clusters.connect(cluster.scheduler_address, "bench-silent")
    out: dict = {"timeout_s": 4.0}
    stopped = None
    try:
        found.client.wait_for_workers(1, timeout=60)
        [worker_pid] = found.client.run(pid).values()
        call, future = started(found)
        os.kill(worker_pid, signal.SIGSTOP)
        stopped = worker_pid
        t0 = time.monotonic()
        try:
            calls.wait(call, [], fetch=[future], timeout=4)
        except RemoteTimeoutError:
            out["raised"] = "RemoteTimeoutError"
        out["timeout_raises_s"] = time.monotonic() - t0
        os.kill(worker_pid, signal.SIGCONT)
        call2, _ = started(found)
        os.kill(worker_pid, signal.SIGSTOP)
        t0 = time.monotonic()
        out["cancel_says"] = call2.cancel()
        out["cancel_s"] = time.monotonic() - t0
    finally:
        if stopped:
            os.kill(stopped, signal.SIGCONT)
        found.close()
        shut(cluster)
    return out


def cut_link() -> dict:
    from tests.hosts import network as net
    from tests.hosts.cluster import HostCluster

    why = net.can_make_namespaces()
    if why:
        return {"skipped": why}
    net.remove_stale()
    network = net.Network()
    cluster = HostCluster(network, Path(tempfile.mkdtemp(prefix="bench-hosts-")), workers=2)
    out: dict = {}
    found = None
    try:
        deadline = time.monotonic() + 60
        while found is None:
            try:
                found = clusters.connect(cluster.address, "bench-hosts")
            except ClusterConnectError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        found.client.wait_for_workers(2, timeout=60)
        call, future = started(found, seconds=20)
        victim = next(n for n, h in cluster.hosts.items() if f"//{h.address}:" in call.log.worker)
        marked = threading.Event()
        call.log.listen(lambda log, lines: marked.set() if any(
            line["stream"] == "log" for line in lines) else None)
        t0 = time.monotonic()
        network.cut(victim)
        done = threading.Thread(target=lambda: calls.wait(call, [], fetch=[future]), daemon=True)
        done.start()
        marked.wait(120)
        out["rerun_marked_s"] = time.monotonic() - t0 if marked.is_set() else None
        done.join(120)
        out["call_returns_s"] = time.monotonic() - t0
        out["call_length_s"] = 20 * 0.5
        from tests.hosts.cluster import CONNECT_TIMEOUT, WORKER_TTL

        out["worker_ttl"], out["connect_timeout"] = WORKER_TTL, CONNECT_TIMEOUT
    finally:
        if found is not None:
            found.close()
        cluster.close()
        network.close()
    return out


def log_memory(n: int, floods: int) -> dict:
    local = clusters.cluster("local")
    with dask.config.set({"jupyter-remote.logs.max-bytes": "16MB"}):
        fn = jupyter_remote.function(flood, local)
        for _ in range(floods):
            fn(n)
        logs = local.router.calls()[-floods:]
        return {"lines_per_flood": n, "floods": floods, "cap_bytes": spill.Budget.cap(),
                "held_bytes": spill.BUDGET.held,
                "spilled_lines": sum(log.lines.spilled for log in logs),
                "replayed_lines_last": sum(1 for _ in logs[-1].lines)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-hosts", action="store_true", help="skip the cut link (no root)")
    parser.add_argument("--flood", type=int, default=200_000)
    parser.add_argument("--only", choices=["cut_link"], help="run one part")
    args = parser.parse_args()
    if args.only:
        print("BENCHMARK_JSON " + json.dumps({args.only: cut_link(), "load": os.getloadavg()}))
        return
    load = os.getloadavg()
    results = {"load_before": load, "lost_scheduler": lost_scheduler(),
               "silent_worker": silent_worker()}
    results["cut_link"] = {"skipped": "--no-hosts"} if args.no_hosts else cut_link()
    results["log_memory"] = log_memory(args.flood, 3)
    results["load_after"] = os.getloadavg()
    for part, figures in results.items():
        print(f"{part}:")
        if isinstance(figures, dict):
            for k, v in figures.items():
                print(f"    {k:22s} {v:.2f}" if isinstance(v, float) else f"    {k:22s} {v}")
        else:
            print(f"    {figures}")
    print("BENCHMARK_JSON " + json.dumps(results, default=str))
    clusters.close_all()


if __name__ == "__main__":
    main()
