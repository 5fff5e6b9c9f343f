"""The parallel forms against their plain equivalents, on the embedded cluster (issue 11).

1. ``f.split(x)`` of a 400 MB array over the cluster vs ``f(x)`` on one worker
   (``f.remote(x)``, on the worker holding ``x``; target: faster in proportion to the
   workers, >= 1.6x on 2 workers), with ``x`` a ``RemoteRef`` (so the array never crosses
   the notebook) and ``get=False`` (the result stays there). The split moves the other
   workers' pieces there and their results back, and pastes the whole: a cost fixed by the
   bytes, so the gain grows with the work per byte (``--passes``).
2. ``f.map(range(n), post=sum)`` vs ``sum(f.map(range(n)))`` for n = 100,000: time, and
   bytes received by the notebook process (psutil's counters of its sockets are not
   per-process here, so the bytes are the size of what each form hands back).

    python benchmarks/forms.py [--mb 400] [--reps 3] [--passes 3] [--work sqrt|sin]
"""

from __future__ import annotations

import argparse
import functools
import os
import pickle
import statistics
import time


def columnwise(x, passes=3, work="sqrt"):
    """Work per column: a few passes over the data. ``sqrt`` is bound by memory bandwidth
    (two cores share it, so two workers give less than 2x even with nothing moved); ``sin``
    by the cores' arithmetic."""
    import numpy as np

    out = np.empty_like(x)
    for _ in range(passes):
        if work == "sin":
            np.sin(x, out=out)
        else:
            out[:] = np.sqrt(np.abs(x)) * 1.0001
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=400, help="size of the array (MB)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--passes", type=int, default=3,
                    help="passes of the column-wise function over the data (compute per byte: "
                    "the pieces' transfers and the paste cost the same whatever it is)")
    ap.add_argument("--work", choices=("sqrt", "sin"), default="sqrt",
                    help="what each pass computes: sqrt is bound by memory bandwidth, sin by "
                    "the cores (see columnwise)")
    opts = ap.parse_args()

    import jupyter_remote
    from jupyter_remote.core import cells, clusters

    cluster = clusters.cluster("local")
    print(f"load average {os.getloadavg()}; {cluster.total_threads()} worker threads")
    cols = opts.mb * 2**20 // 8 // 2000
    made = cells.run_cell(f"import numpy as np\nx = np.ones((2000, {cols}))\n", {}, cluster)
    x = made.refs["x"]
    work = functools.partial(columnwise, passes=opts.passes, work=opts.work)
    f = jupyter_remote.function(work, cluster, name="columnwise")

    def timed(fn, setup=None):
        times = []
        for rep in range(opts.reps):
            args = () if setup is None else (setup(rep),)
            start = time.perf_counter()
            ref = fn(*args)
            if hasattr(ref, "release"):
                ref.release()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    whole = timed(lambda: _done(f.remote(x)))  # f(x) on the worker holding x
    split = timed(lambda: _done(f.split(x, get=False)))
    ceiling = _ceiling(cluster.client, cols, opts, timed)
    print(f"1. {opts.mb} MB array, {opts.passes} passes of {opts.work}: f(x) on one worker {whole:.2f} s, "
          f"f.split(x) over the cluster {split:.2f} s: {whole / split:.2f}x faster "
          f"(load average {os.getloadavg()[0]:.2f}); the machine's ceiling now, raw Dask "
          f"with the halves already on their workers: {ceiling:.2f}x")
    # The same from a notebook array (a new one each time: a call shares a big argument
    # once per content, so a repeat would not send it again).
    import numpy as np

    def fresh(rep):
        return np.full((2000, cols), float(rep))

    whole = timed(lambda a: _done(f.remote(a)), fresh)
    split = timed(lambda a: _done(f.split(a, get=False)), fresh)
    print(f"   the array in the notebook: f(x) {whole:.2f} s, f.split(x) {split:.2f} s: "
          f"{whole / split:.2f}x (load average {os.getloadavg()[0]:.2f})")

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


def _ceiling(client, cols, opts, timed):
    """What two workers give over one right now (other work on the machine included): the
    function on the whole on one worker vs on two halves already on two workers, raw Dask,
    nothing cut, moved or pasted."""
    import numpy as np
    from distributed import wait

    fn = functools.partial(columnwise, passes=opts.passes, work=opts.work)
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])[:2]
    whole = client.submit(np.ones, (2000, cols), workers=workers[:1], pure=False)
    halves = [client.submit(np.ones, (2000, cols // 2), workers=[w], pure=False)
              for w in workers]

    def run(inputs):
        out = [client.submit(fn, a, workers=[w], pure=False) for a, w in zip(inputs, workers)]
        with client.as_current():
            wait(out)  # all done, nothing moved or downloaded
        return out

    one = timed(lambda: run([whole]))
    two = timed(lambda: run(halves))
    return one / two


def _done(ref):
    """Wait until the value behind ``ref`` is computed, without downloading it."""
    deadline = time.monotonic() + 600
    while not ref.done() and time.monotonic() < deadline:
        time.sleep(0.001)
    return ref


if __name__ == "__main__":
    main()
