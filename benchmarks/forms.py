"""The parallel forms against their plain equivalents, on the embedded cluster (issue 11).

1. ``f.split(x)`` of a 400 MB array over the cluster vs ``f(x)`` on one worker (target:
   faster in proportion to the workers, >= 1.6x on 2 workers), with ``x`` a ``RemoteRef``
   (so the array never crosses the notebook) and ``get=False`` (the result stays there).
2. ``f.map(range(n), post=sum)`` vs ``sum(f.map(range(n)))`` for n = 100,000: time, and
   bytes received by the notebook process (psutil's counters of its sockets are not
   per-process here, so the bytes are the size of what each form hands back).

    python benchmarks/forms.py [--mb 400] [--reps 3]
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import time


def columnwise(x):
    """Work per column: a few passes over the data."""
    import numpy as np

    out = np.empty_like(x)
    for _ in range(3):
        out[:] = np.sqrt(np.abs(x)) * 1.0001
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=400, help="size of the array (MB)")
    ap.add_argument("--reps", type=int, default=3)
    opts = ap.parse_args()

    import jupyter_remote
    from jupyter_remote.core import cells, clusters

    cluster = clusters.cluster("local")
    print(f"load average {os.getloadavg()}; {cluster.total_threads()} worker threads")
    cols = opts.mb * 2**20 // 8 // 2000
    made = cells.run_cell(f"import numpy as np\nx = np.ones((2000, {cols}))\n", {}, cluster)
    x = made.refs["x"]
    f = jupyter_remote.function(columnwise, cluster)

    def timed(fn):
        times = []
        for _ in range(opts.reps):
            start = time.perf_counter()
            ref = fn()
            if hasattr(ref, "release"):
                ref.release()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    whole = timed(lambda: _done(f.split(x, parts=1, get=False)))
    split = timed(lambda: _done(f.split(x, get=False)))
    print(f"1. {opts.mb} MB array: f on one worker {whole:.2f} s, f.split over the cluster "
          f"{split:.2f} s: {whole / split:.2f}x faster")

    square = jupyter_remote.function(lambda v: v * v, cluster)
    n = 100_000
    post = timed(lambda: square.map(range(n), post=sum))
    plain = timed(lambda: sum(square.map(range(n))))
    back_post = len(pickle.dumps(square.map(range(n), post=sum)))
    back_plain = len(pickle.dumps(square.map(range(n))))
    print(f"2. {n:,} items: map(post=sum) {post * 1000:.0f} ms, {back_post} B back; "
          f"sum(map(...)) {plain * 1000:.0f} ms, {back_plain:,} B back")
    print(f"load average {os.getloadavg()}")
    clusters.close_all()


def _done(ref):
    """Wait until the value behind ``ref`` is computed, without downloading it."""
    deadline = time.monotonic() + 600
    while not ref.done() and time.monotonic() < deadline:
        time.sleep(0.001)
    return ref


if __name__ == "__main__":
    main()
