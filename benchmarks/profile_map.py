"""Where the time of ``RemoteFunction.map`` goes, per item, in the notebook and in the workers.

    python benchmarks/profile_map.py                 # 100,000 items, all parts (~1-2 min)
    python benchmarks/profile_map.py --items 20000 --parts micro
    python benchmarks/profile_map.py --no-py-spy

Parts (``--parts``, default all):

- ``notebook``: cProfile of the calling thread over ``f.map(range(n))`` on the embedded
  cluster (``f = lambda x: x + 1``), plus, with py-spy, a sampled profile of *every* thread
  of this process (the client's event-loop thread receives and unpickles the results).
- ``workers``: cProfile switched on inside each worker's task thread (one thread per worker
  on the embedded cluster: a task that enables a profiler leaves it enabled on that thread),
  and py-spy sampling each worker process for the whole map (task thread + event loop).
- ``cpu``: CPU seconds (user + system, psutil) of each process during an unprofiled map:
  the notebook, the scheduler, each worker.
- ``timeline``: a second client polls the scheduler during the map: when the first batch
  task appears, when every batch is computed, and when the map returns.
- ``micro``: one batch of today's path, step by step in this process (best of 5): pickle the
  batch (items a ``range``, then a list), open it on the "worker", run it
  (``worker.kinds.run_batch``, against bare ``map`` and list-comprehension loops), pickle its
  ``BatchResult`` once as for the event stream, unpickle it and extend the result list.
- ``large``: the same pickling for one batch of 13 arrays of 10 MiB (what automatic
  batching made of 100 on two threads; big buffers out of band) against Dask's own
  serialization of the arrays.

Prints µs per item for each step and the top functions of each profile; ``--out DIR`` keeps
the raw profiles (``.pstats``, py-spy's collapsed stacks).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import cProfile
import io
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time

perf = time.perf_counter


def inc(x):
    return x + 1


# -- helpers -------------------------------------------------------------------------------
def _quiet():
    """The text view prints a status line per call; keep the profile output readable."""
    stack = contextlib.ExitStack()
    sink = io.StringIO()
    stack.enter_context(contextlib.redirect_stdout(sink))
    stack.enter_context(contextlib.redirect_stderr(sink))
    return stack


def _say(*a) -> None:
    print(*a, file=sys.__stdout__, flush=True)


def top_functions(stats: pstats.Stats, n_items: int, limit: int = 18, sort: str = "tottime") -> None:
    """Top functions by own time, as µs per item."""
    rows = []
    for (file, line, name), (_cc, nc, tt, ct, _callers) in stats.stats.items():
        rows.append((tt, ct, nc, f"{os.path.basename(file)}:{line}({name})"))
    key = 0 if sort == "tottime" else 1
    rows.sort(key=lambda r: r[key], reverse=True)
    _say(f"   {'own µs/item':>12s}{'cum µs/item':>12s}{'calls':>10s}  function")
    for tt, ct, nc, where in rows[:limit]:
        _say(f"   {tt / n_items * 1e6:12.2f}{ct / n_items * 1e6:12.2f}{nc:10d}  {where}")


def cum_of(stats: pstats.Stats, *names: str) -> dict[str, tuple[float, int]]:
    """Cumulative seconds and call counts of functions named ``names`` (any module)."""
    out: dict[str, tuple[float, int]] = {}
    for (file, _line, name), (_cc, nc, _tt, ct, _callers) in stats.stats.items():
        if name in names:
            label = f"{os.path.basename(file)}:{name}"
            prev = out.get(label, (0.0, 0))
            out[label] = (prev[0] + ct, prev[1] + nc)
    return out


class PySpy:
    """``py-spy record`` of one process in raw (collapsed stacks) format."""

    def __init__(self, pid: int, path: str, rate: int = 250, native: bool = False):
        exe = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
        self.path = path
        cmd = [exe, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw",
               "--output", path, "--threads", "--nonblocking"]
        if native:
            cmd.append("--native")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self) -> None:
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def summarize_collapsed(path: str, limit: int = 14) -> dict:
    """Samples per thread, and per leaf-most interesting frame (own time), from py-spy raw output."""
    if not os.path.exists(path):
        return {}
    threads: collections.Counter = collections.Counter()
    own: collections.Counter = collections.Counter()
    incl: collections.Counter = collections.Counter()
    total = 0
    with open(path) as fh:
        for line in fh:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            n = int(count)
            frames = stack.split(";")
            total += n
            threads[frames[0]] += n
            leaf = frames[-1]
            own[leaf] += n
            for fr in set(frames[1:]):
                incl[fr] += n
    return {"total": total, "threads": threads, "own": own.most_common(limit),
            "incl": incl.most_common(limit * 2)}


def print_collapsed(title: str, summary: dict, wall_s: float, n_items: int, rate: int) -> None:
    """Shares of py-spy's samples. A sample is a thread seen in Python code (idle threads are
    left out, though a thread in ``select`` may show up): waiting for the GIL or for a CPU
    counts as active, so on a loaded machine these are thread-seconds, not CPU seconds."""
    if not summary or not summary["total"]:
        _say(f"   ({title}: no samples)")
        return
    total = summary["total"]
    _say(f"   {title}: {total} samples at {rate}/s over a {wall_s:.2f} s window")
    for thread, n in summary["threads"].most_common(6):
        _say(f"     thread {thread[:60]:60s} {100 * n / total:5.1f}% of samples "
             f"({n / rate:.2f} thread-s, {n / rate / n_items * 1e6:.1f} µs/item)")
    _say("     own time (leaf frames):")
    for frame, n in summary["own"]:
        _say(f"       {100 * n / total:5.1f}%  {frame[:110]}")


# -- notebook side -------------------------------------------------------------------------
def part_notebook(fn, n: int, opts, outdir: str) -> None:
    _say(f"\n== notebook side: f.map(range({n:,})): py-spy over all threads (one run), "
         "then cProfile of the calling thread (another run)")
    spy = None
    if opts.py_spy:
        spy = PySpy(os.getpid(), os.path.join(outdir, "notebook.collapsed.txt"), rate=opts.rate)
        time.sleep(1.0)  # let py-spy attach
        with _quiet():
            t = perf()
            fn.map(range(n))
            spied = perf() - t
        time.sleep(0.2)
        spy.stop()
        print_collapsed("py-spy, all threads of the notebook process",
                        summarize_collapsed(spy.path), spied + 1.2, n, opts.rate)
    prof = cProfile.Profile()
    with _quiet():
        t = perf()
        prof.enable()
        got = fn.map(range(n))
        prof.disable()
        profiled = perf() - t
    assert len(got) == n and got[-1] == n
    prof.dump_stats(os.path.join(outdir, "notebook.pstats"))
    stats = pstats.Stats(prof)
    _say(f"   cProfile: {profiled:.2f} s under the profiler (its overhead inflates rows with many "
         "Python calls: compare with the micro part)")
    phases = cum_of(stats, "starmap", "submit", "dumps", "persistent_id", "_as_future",
                    "wait", "<listcomp>", "_batch_size", "register_local_modules")
    _say("   cumulative, µs/item:")
    for label, (ct, nc) in sorted(phases.items(), key=lambda kv: -kv[1][0]):
        _say(f"     {ct / n * 1e6:9.2f}  {label}  ({nc} calls)")
    top_functions(stats, n, limit=12)


# -- CPU per process -----------------------------------------------------------------------
def part_cpu(fn, client, n: int, opts) -> None:
    """CPU seconds each process of the cluster spends on one unprofiled map."""
    import psutil

    _say(f"\n== CPU time per process during f.map(range({n:,})) (psutil, user+system), µs per item")
    pids = {"notebook": os.getpid(), "scheduler": client.run_on_scheduler(os.getpid)}
    for i, (addr, pid) in enumerate(sorted(client.run(os.getpid).items())):
        pids[f"worker {i} ({addr})"] = pid
    procs = {k: psutil.Process(p) for k, p in pids.items()}
    with _quiet():
        fn.map(range(1000))
    rows = []
    for _rep in range(opts.cpu_reps):
        before = {k: sum(p.cpu_times()[:2]) for k, p in procs.items()}
        with _quiet():
            t = perf()
            got = fn.map(range(n))
            wall = perf() - t
        after = {k: sum(p.cpu_times()[:2]) for k, p in procs.items()}
        assert len(got) == n
        rows.append((wall, {k: after[k] - before[k] for k in procs}))
    wall, cpu = sorted(rows, key=lambda r: r[0])[len(rows) // 2]  # the median run
    # what the same processes burn while idle for as long (heartbeats, polling)
    before = {k: sum(p.cpu_times()[:2]) for k, p in procs.items()}
    time.sleep(wall)
    idle = {k: sum(p.cpu_times()[:2]) - before[k] for k, p in procs.items()}
    _say(f"   wall {wall:.2f} s = {wall / n * 1e6:.1f} µs/item ({n / wall:,.0f} items/s), "
         f"median of {len(rows)} runs, load {os.getloadavg()[0]:.2f}")
    for k, c in cpu.items():
        _say(f"   {c / n * 1e6:9.1f} µs CPU/item  {k}   (idle for as long: {idle[k] / n * 1e6:.1f})")
    _say(f"   {sum(cpu.values()) / n * 1e6:9.1f} µs CPU/item  all ({sum(cpu.values()) / wall:.2f} "
         "cores busy on average, of 2)")


# -- timeline: when the batches are computed vs when the map returns -----------------------
def _map_task_states(prefix, dask_scheduler=None):
    import collections as _c

    states = _c.Counter()
    for key, ts in dask_scheduler.tasks.items():
        if isinstance(key, str) and key.startswith(prefix):
            states[ts.state] += 1
    return dict(states)


def part_timeline(fn, client, n: int, opts) -> None:
    """Poll the scheduler (from a second client) for the map's batch tasks every 0.1 s."""
    import threading

    from distributed import Client

    _say(f"\n== timeline of f.map(range({n:,})): the batch tasks' states on the scheduler")
    other = Client(client.scheduler.address, set_as_default=False, timeout=30)
    prefix = "remote-map"  # the package's key prefix for map batches, as of this writing
    timeline: list[tuple[float, dict]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            t = perf() - t0
            timeline.append((t, other.run_on_scheduler(_map_task_states, prefix)))
            stop.wait(0.1)

    try:
        with _quiet():
            fn.map(range(1000))
        watcher = threading.Thread(target=watch, daemon=True)
        t0 = perf()
        watcher.start()
        with _quiet():
            fn.map(range(n))
        end = perf() - t0
        stop.set()
        watcher.join(timeout=30)
    finally:
        other.close()
    total = max((sum(st.values()) for _, st in timeline), default=0)
    marks: dict[str, float] = {"batches": total}
    for t, st in timeline:
        if st and "first_task" not in marks:
            marks["first_task"] = t
        if total and st.get("memory", 0) == total and "all_computed" not in marks:
            marks["all_computed"] = t
    if "all_computed" not in marks:
        _say(f"   map returned at {end:.2f} s; the watcher never saw all batches computed "
             f"(key prefix {prefix!r} changed?)")
        return
    first, computed = marks["first_task"], marks["all_computed"]
    _say(f"   first batch task on the scheduler at {first:.2f} s (items built and pickled before)")
    _say(f"   all {marks['batches']} batches computed (in worker memory) at {computed:.2f} s")
    _say(f"   map returned at {end:.2f} s: {end - computed:.2f} s ({100 * (end - computed) / end:.0f}%) "
         "after the last batch was computed, spent moving results to the notebook")


# -- worker side ---------------------------------------------------------------------------
def _enable_profile():
    import cProfile as _cp

    from distributed import get_worker

    w = get_worker()
    w._bench_profile = _cp.Profile()
    w._bench_profile.enable()
    return os.getpid()


def _disable_profile(path):
    from distributed import get_worker

    w = get_worker()
    prof = getattr(w, "_bench_profile", None)
    if prof is None:
        return None
    prof.disable()
    prof.dump_stats(path)
    del w._bench_profile
    return path


def part_workers(fn, client, n: int, opts, outdir: str) -> None:
    _say("\n== worker side: py-spy on each worker process (one run), then cProfile in each "
         "worker's task thread (another run)")
    nthreads = client.nthreads()
    if any(v != 1 for v in nthreads.values()):
        _say(f"   (workers have {nthreads} threads: cProfile sees only the thread that enabled it)")
    pids = client.run(os.getpid)
    with _quiet():
        fn.map(range(1000))
    if opts.py_spy:
        spies = [(addr, PySpy(pid, os.path.join(outdir, f"worker-{pid}.collapsed.txt"), rate=opts.rate))
                 for addr, pid in pids.items()]
        time.sleep(1.0)
        with _quiet():
            t = perf()
            fn.map(range(n))
            spied = perf() - t
        time.sleep(0.2)
        for _, spy in spies:
            spy.stop()
        for addr, spy in spies:
            print_collapsed(f"py-spy, worker {addr}", summarize_collapsed(spy.path), spied + 1.2, n, opts.rate)
    for addr in nthreads:
        client.submit(_enable_profile, workers=[addr], allow_other_workers=False, pure=False).result()
    with _quiet():
        t = perf()
        got = fn.map(range(n))
        wall = perf() - t
    paths = []
    for addr, pid in pids.items():
        path = os.path.join(outdir, f"worker-{pid}.pstats")
        got_path = client.submit(_disable_profile, path, workers=[addr],
                                 allow_other_workers=False, pure=False).result()
        if got_path:
            paths.append(got_path)
    assert len(got) == n
    _say(f"   cProfile run: wall {wall:.2f} s ({n / wall:,.0f} items/s)")
    if paths:
        stats = pstats.Stats(*paths)
        phases = cum_of(stats, "run", "loads", "execute", "_run_batch", "inc", "state",
                        "pack_exception", "_stop_interrupts", "__enter__", "__exit__",
                        "apply_function", "apply_function_simple", "_deserialize", "dumps",
                        "worker_sink")
        _say("   cumulative in the task threads of both workers, µs/item "
             "(per item of the whole map; each worker did about half):")
        for label, (ct, nc) in sorted(phases.items(), key=lambda kv: -kv[1][0])[:10]:
            _say(f"     {ct / n * 1e6:9.2f}  {label}  ({nc} calls)")
        top_functions(stats, n, limit=8)


# -- micro: the steps one by one -----------------------------------------------------------
def best_of(fn, reps: int = 5) -> float:
    times = []
    for _ in range(reps):
        t = perf()
        fn()
        times.append(perf() - t)
    return min(times)


def part_micro(n_batch: int, opts) -> None:
    """One batch of today's path, each step timed alone in this process: the notebook pickles
    the batch (its items a ``range`` or a list), the worker opens it and runs the items
    (``run_batch``: C ``map`` strides), pickles the ``BatchResult`` once for the event
    stream, and the notebook unpickles it into the result list."""
    import cloudpickle

    from jupyter_remote.wire import payload
    from jupyter_remote.worker import capture, kinds

    _say(f"\n== micro: one batch of {n_batch:,} items, each step in this process (best of 5), "
         "µs per item")
    rows: list[tuple[str, float]] = []

    def row(label: str, seconds: float) -> None:
        rows.append((label, seconds / n_batch * 1e6))
        _say(f"   {seconds / n_batch * 1e6:9.3f}  {label}")

    sink = capture.Sink("c" * 12, lambda event: None, lambda fn: None)
    opened = {}
    for name, args in (("range", range(n_batch)), ("list", list(range(n_batch)))):
        spec = {"kind": "batch", "fn": inc, "args": args, "start": 0, "star": False,
                "batch": 0, "seconds": 0.5, "call": "c" * 12, "topic": "t", "stream": True}
        data, deps = payload.dumps(spec)
        indent = "" if name == "range" else "   "
        row(f"{indent}notebook: payload.dumps(batch), items a {name} ({len(data) / n_batch:.2f} "
            "B/item)", best_of(lambda: payload.dumps(spec)))
        row(f"{indent}worker: payload.loads(batch), items a {name}",
            best_of(lambda: payload.loads(data, tuple(deps))))
        opened[name] = payload.loads(data, tuple(deps))
    row("worker: kinds.run_batch  [C map strides, errors and tags kept]",
        best_of(lambda: kinds.run_batch(opened["range"], sink)))
    xs = opened["range"]["args"]
    row("   bare: list(map(fn, xs))", best_of(lambda: list(map(inc, xs))))
    row("   bare: [fn(x) for x in xs]", best_of(lambda: [inc(x) for x in xs]))
    result = kinds.run_batch(opened["range"], sink)
    row("worker: BatchResult pickled once (for the event stream)",
        best_of(lambda: result.small(1 << 40)))
    blob = result.small(1 << 40)
    _say(f"             ({len(blob) / n_batch:.2f} bytes per item)")
    row("notebook: cloudpickle.loads(results)", best_of(lambda: cloudpickle.loads(blob)))
    values = cloudpickle.loads(blob).values
    row("notebook: results.extend(values)", best_of(lambda: [].extend(values)))
    total = sum(us for label, us in rows if not label.startswith("   "))
    _say(f"   {total:9.3f}  sum of the package's steps (indented rows are comparisons)")


def part_micro_large(count: int, opts) -> None:
    """Large items: what one batch of 10 MiB arrays costs to pickle (big buffers out of band,
    as ``Call.submit`` sends them), against how Dask ships the same arrays."""
    import numpy as np
    from distributed.protocol import dumps as msg_dumps
    from distributed.protocol import loads as msg_loads
    from distributed.protocol import to_serialize

    from jupyter_remote.wire import payload

    arrays = [np.full(10 * 2**20 // 8, i, dtype=np.float64) for i in range(count)]
    nbytes = sum(a.nbytes for a in arrays)
    _say(f"\n== micro, large items: one batch of {count} arrays of 10 MiB ({nbytes / 2**20:.0f} MiB), "
         "MiB/s of input (best of 3)")
    spec = {"kind": "batch", "fn": inc, "args": arrays, "start": 0, "star": False, "batch": 0,
            "call": "c" * 12, "topic": "jupyter-remote-x"}

    def row(label: str, seconds: float) -> None:
        _say(f"   {nbytes / seconds / 2**20:9.0f} MiB/s  {seconds * 1e3:8.1f} ms  {label}")

    buffers: list = []
    data, _ = payload.dumps(spec, None, buffers)
    row(f"notebook: payload.dumps(batch) -> {len(data):,} B + {len(buffers)} buffers out of band",
        best_of(lambda: payload.dumps(spec, None, []), 3))
    frames = payload.Frames(data, buffers)
    row("worker: payload.loads (buffers not copied)", best_of(lambda: payload.loads(frames), 3))
    row("Dask message of the arrays themselves: dumps (zero-copy frames)",
        best_of(lambda: msg_dumps({"x": to_serialize(arrays)}), 3))
    message = msg_dumps({"x": to_serialize(arrays)})
    row("   ... loads", best_of(lambda: msg_loads(message), 3))


# -- main ----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--batch", type=int, help="items per batch for the micro part "
                    "(default: what automatic batching picks for --items on 2 threads)")
    ap.add_argument("--parts", default="micro,large,cpu,timeline,notebook,workers")
    ap.add_argument("--cpu-reps", type=int, default=3)
    ap.add_argument("--no-py-spy", dest="py_spy", action="store_false")
    ap.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    ap.add_argument("--out", help="keep the raw profiles in this folder")
    opts = ap.parse_args(argv)
    parts = {p.strip() for p in opts.parts.split(",")}
    if opts.py_spy and not (shutil.which("py-spy") or os.path.exists(
            os.path.join(os.path.dirname(sys.executable), "py-spy"))):
        _say("(py-spy not installed: pip install py-spy; continuing without it)")
        opts.py_spy = False
    outdir = opts.out or tempfile.mkdtemp(prefix="profile-map-")
    os.makedirs(outdir, exist_ok=True)
    _say(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}; raw profiles in {outdir}")
    n = opts.items
    if "micro" in parts:
        part_micro(opts.batch or -(-n // 8), opts)
    if "large" in parts:
        part_micro_large(13, opts)  # 100 arrays on 2 threads: automatic batches of 13
    if parts & {"cpu", "timeline", "notebook", "workers"}:
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
        import jupyter_remote

        cluster = jupyter_remote.cluster("local")
        try:
            client = cluster.client
            fn = jupyter_remote.function(inc)
            if "cpu" in parts:
                part_cpu(fn, client, n, opts)
            if "timeline" in parts:
                part_timeline(fn, client, n, opts)
            if "notebook" in parts:
                part_notebook(fn, n, opts, outdir)
            if "workers" in parts:
                part_workers(fn, client, n, opts, outdir)
        finally:
            cluster.close()
    _say(f"\nload average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")


if __name__ == "__main__":
    main()
