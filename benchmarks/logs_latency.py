"""Latency of remote output, from the remote write to where the user sees it.

1. Arrival in the notebook process: a line printed by remote code (our stream: captured
   stdout, batched, ``Worker.log_event`` on the client's topic, routed to its ``CallLog``)
   against Dask's own ``distributed.print`` (the same channel, the ``print`` topic), on the
   same embedded cluster, in the same run, alternating one of each.
2. Remote write -> the kernel's iopub ``comm_msg`` that updates the call's log widget, in a
   real kernel driven through jupyter_client, idle and while another call floods 200,000
   lines.

Every clock is ``time.time()`` on this machine (workers, kernel and this process share it).

    .venv/bin/python benchmarks/logs_latency.py [--samples N]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def stats(xs: list[float]) -> str:
    xs = sorted(xs)
    if not xs:
        return "no samples"
    p95 = xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
    return f"median {statistics.median(xs) * 1000:6.2f} ms   p95 {p95 * 1000:6.2f} ms   (n={len(xs)})"


# -- 1. arrival in the notebook process ---------------------------------------------------
def _emit_both(samples: int, gap: float) -> int:
    import time

    import distributed

    for i in range(samples):
        print(f"ours {i} {time.time()!r}", flush=True)
        time.sleep(gap / 2)
        distributed.print(f"dask {i} {time.time()!r}")
        time.sleep(gap / 2)
    return samples


def arrival(samples: int) -> tuple[list[float], list[float]]:
    from jupyter_remote.core import calls, clusters

    cluster = clusters.cluster("local")
    client = cluster.client
    ours: list[float] = []
    theirs: list[float] = []
    done = threading.Event()

    def on_print(event) -> None:  # replaces the client's own "print" handler for this run
        now = time.time()
        _, msg = event
        text = " ".join(str(a) for a in msg.get("args", ()))
        m = re.match(r"dask \d+ (\S+)", text)
        if m:
            theirs.append(now - float(m.group(1)))

    def on_lines(_log, lines) -> None:
        now = time.time()
        for line in lines:
            m = re.match(r"ours \d+ (\S+)", line.get("text", ""))
            if m:
                ours.append(now - float(m.group(1)))

    client.subscribe_topic("print", on_print)
    call = calls.Call(cluster, "latency probe", "call")
    call.log.listen(on_lines)
    future = call.submit({"kind": "call", "fn": _emit_both, "args": (samples, 0.02), "kwargs": {}})
    future.add_done_callback(lambda _f: done.set())
    done.wait(120)
    time.sleep(0.3)  # the last events
    call.finish("done")
    future.release()
    return ours, theirs


# -- 2. remote write -> kernel iopub widget update ----------------------------------------
def _new_lines(delta: dict, seen: set[str]) -> list[str]:
    value = delta.get("value", "")
    body = re.search(r"<pre[^>]*>(.*)</pre>", value, re.S)
    if not body:
        return []
    out = []
    for line in re.sub(r"<[^>]+>", "", body.group(1)).split("\n"):
        if line.startswith("lat ") and line not in seen:
            seen.add(line)
            out.append(line)
    return out


def kernel_latency(samples: int, flood: int) -> dict[str, list[float]]:
    from tests.widgets.kernel import Kernel

    cell = (
        "%%remote --out n\n"
        "import time\n"
        f"for i in range({samples}):\n"
        "    print('lat', i, repr(time.time()))\n"
        "    time.sleep(0.02)\n"
        "n = 1\n"
    )
    results: dict[str, list[float]] = {}
    k = Kernel(cwd=tempfile.mkdtemp())
    try:
        k.execute("%load_ext jupyter_remote")
        k.execute("%%remote --out warm\nwarm = 1\n", timeout=120)
        for flooding in (False, True):
            if flooding:
                flood_id = k.submit(
                    "%%remote --no-wait --out f\n"
                    f"for i in range({flood}):\n    print('flood', i)\nf = 1\n"
                )
                fw = k.call_widget(flood_id)
                fw.wait_value("lines", "flood ")
            msg_id = k.submit(cell)
            widget = k.call_widget(msg_id)
            k.reply(msg_id, timeout=120)
            widget.wait_value("status", "done")
            flood_end = float("inf")
            if flooding:
                last = fw.wait_value("lines", f"flood {flood - 1}", timeout=120)
                flood_end = time.time() - (time.monotonic() - last)
            seen: set[str] = set()
            during, after = [], []
            for t, delta in widget.updates("lines"):
                arrived = time.time() - (time.monotonic() - t)  # monotonic stamp -> wall clock
                for line in _new_lines(delta, seen):
                    written = float(line.split()[2])
                    (during if written < flood_end else after).append(arrived - written)
            if flooding:
                results[f"while {flood:,} lines stream in"] = during
                results["after the flood"] = after
            else:
                results["idle"] = during
            if flooding:
                fw.wait_value("status", "done", timeout=120)
    finally:
        k.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--flood", type=int, default=200_000)
    args = parser.parse_args()

    from jupyter_remote.core import clusters

    try:
        ours, theirs = arrival(args.samples)
    finally:
        clusters.close_all()
    print("remote print -> notebook process (same cluster, same run, alternating)")
    print(f"  jupyter_remote stream   {stats(ours)}")
    print(f"  distributed.print       {stats(theirs)}")
    if theirs and ours:
        ratio = statistics.median(ours) / statistics.median(theirs)
        print(f"  ratio of medians        {ratio:.2f}x (target: within 2x)")

    print("remote print -> kernel iopub comm_msg updating the call's log widget")
    for label, lat in kernel_latency(args.samples, args.flood).items():
        print(f"  {label:<38}{stats(lat)}")


if __name__ == "__main__":
    main()
