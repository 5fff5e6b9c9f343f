"""jupyter_remote side by side with ipyparallel and raw Dask, in one process and one run.

    python benchmarks/peers.py             # full run (~6-10 min on 2 cores, 1M-item map)
    python benchmarks/peers.py --quick     # < 2 min: smaller n, fewer repetitions
    python benchmarks/peers.py --json      # also print the JSON results to stdout
    python benchmarks/peers.py --only roundtrip,map --ns 1000,10000

What runs (issue 12): the embedded ``local`` cluster of jupyter_remote, configured as
``benchmarks/run.py`` leaves it (the package defaults: scheduler in its own process, Dask's
batched-send intervals zeroed), and an ipyparallel ``Cluster(n=2)`` that this script starts
and stops itself. Raw Dask figures use the very ``distributed.Client`` the package uses.

1. round trip of one trivial call: ``jupyter_remote.function(f)(1)``, ``%%remote 1 + 1``
   (a real IPython shell with ``%load_ext jupyter_remote``), ``client.submit(f, 1).result()``,
   ipyparallel ``apply_sync`` on a DirectView (one engine) and a load-balanced view;
   interleaved repetitions, medians.
2. ``f.map(range(n))`` with automatic batches, ``f = lambda x: x + 1`` defined here (in
   ``__main__``, so it travels by value as a notebook's would), vs ipyparallel
   ``lview.map_sync(f, range(n), chunksize=c)`` for each c (the best one is the reference),
   vs raw ``client.map`` + ``gather`` (small n only: it runs at a few hundred tasks/s).
3. large items: map over 10 MB numpy arrays, ``f`` returning ``arr.sum()`` and returning the
   array, vs ``client.map`` + ``gather`` on the same arrays, in bytes/s of input.
4. one more map of the largest n, from a generator, run before that size's timed maps
   (whose freed results would otherwise hide its growth): peak RSS growth of this (the
   notebook's) process, sampled every 10 ms, vs the size of the result list
   (``sys.getsizeof`` of the list and its items); and the round trip of other calls
   meanwhile: a second ``distributed.Client`` (another notebook) and
   ``jupyter_remote.function(g)(1)`` from a second thread.

Every timed map, ours and ipyparallel's alike, starts after ``--settle`` seconds of idle
(default 0.1): the work a map leaves behind (ipyparallel's hub recording its tasks, our
releases) would otherwise land on the next one's clock, whichever it is.

Every loop is bounded in count and in time (a map has a timeout; a section stops repeating
when its time budget is spent); both clusters are stopped on the way out, even on failure
or Ctrl-C. Figures are medians; every section records the load average (``os.getloadavg``)
before and after, since the 2-core machine is shared. Results go to
``benchmarks/results/peers-<UTC date-time>.json`` (``--out`` to change, ``--out -`` for none).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import gc
import io
import json
import os
import platform
import signal
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
perf = time.perf_counter


# -- the user's functions: defined in __main__, so they travel by value ----------------------
def inc(x):
    return x + 1


def one(x):
    return x


def total(arr):
    return float(arr.sum())


def same(arr):
    return arr


# -- helpers -------------------------------------------------------------------------------
def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _say(*args) -> None:
    # to the real stderr: while measuring, sys.stdout/stderr are a sink (see main)
    print(*args, file=sys.__stderr__, flush=True)


class _Discard(io.TextIOBase):
    """Where the text view's status lines go while measuring (a notebook shows a widget)."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return len(text)


class Section:
    """Times a section and records the load average before and after."""

    def __init__(self, results: dict, name: str, budget: float):
        self.results, self.name, self.budget = results, name, budget
        self.entry: dict = {}

    def __enter__(self):
        _say(f"-- {self.name} (load {_load()[0]})")
        self.entry["load_before"] = _load()
        self.t0 = perf()
        self.results[self.name] = self.entry
        return self

    def left(self) -> float:
        return self.budget - (perf() - self.t0)

    def __exit__(self, *exc):
        self.entry["load_after"] = _load()
        self.entry["wall_s"] = round(perf() - self.t0, 2)
        return False


class RSSSampler(threading.Thread):
    """Peak RSS of this process, sampled every ``interval`` seconds."""

    def __init__(self, interval: float = 0.01):
        super().__init__(daemon=True, name="rss-sampler")
        import psutil

        self.proc = psutil.Process()
        self.interval = interval
        self.stop = threading.Event()
        self.base = self.peak = self.proc.memory_info().rss

    def run(self) -> None:
        while not self.stop.is_set():
            rss = self.proc.memory_info().rss
            if rss > self.peak:
                self.peak = rss
            self.stop.wait(self.interval)


class Prober(threading.Thread):
    """Round trips of other calls while the main thread runs a long map."""

    def __init__(self, cases: dict, period: float = 0.1, limit: int = 2000):
        super().__init__(daemon=True, name="prober")
        self.cases, self.period, self.limit = cases, period, limit
        self.stop = threading.Event()
        self.times: dict[str, list[float]] = {k: [] for k in cases}
        self.errors: list[str] = []

    def run(self) -> None:
        n = 0
        while not self.stop.is_set() and n < self.limit:
            for name, fn in self.cases.items():
                t = perf()
                try:
                    fn()
                except Exception as exc:  # keep probing; report it
                    self.errors.append(f"{name}: {type(exc).__name__}: {exc}"[:200])
                    continue
                self.times[name].append(perf() - t)
            n += 1
            self.stop.wait(self.period)


def _result_size(values: list) -> int:
    return sys.getsizeof(values) + sum(sys.getsizeof(v) for v in values)


# -- the clusters --------------------------------------------------------------------------
class Peers:
    """Both clusters, started in order and stopped on the way out."""

    def __init__(self, stack: contextlib.ExitStack):
        self.stack = stack

    def start_ours(self) -> None:
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
        from IPython.testing.globalipapp import start_ipython

        import jupyter_remote

        self.ip = start_ipython()
        self.ip.run_line_magic("load_ext", "jupyter_remote")
        self._out = io.StringIO()
        t = perf()
        self.cell("%%remote\nx = 1")  # starts the embedded cluster, as a notebook's first cell
        self.ours_startup = perf() - t
        self.cluster = jupyter_remote.cluster("local")
        self.stack.callback(self.cluster.close)
        self.client = self.cluster.client
        self.jr = jupyter_remote

    def cell(self, source: str) -> None:
        with contextlib.redirect_stdout(self._out), contextlib.redirect_stderr(self._out):
            result = self.ip.run_cell(source, store_history=False)
        if not result.success:
            result.raise_error()
        self._out.seek(0)
        self._out.truncate()

    def start_ipp(self, n: int = 2) -> None:
        import ipyparallel as ipp

        t = perf()
        self.ipp_cluster = ipp.Cluster(n=n, log_level=40)
        self.stack.callback(self._stop_ipp)
        self.rc = self.ipp_cluster.start_and_connect_sync(activate=False)
        self.rc.wait_for_engines(n, timeout=60)
        self.ipp_startup = perf() - t
        self.lview = self.rc.load_balanced_view()
        self.dview = self.rc[0]

    def _stop_ipp(self) -> None:
        with contextlib.suppress(Exception):
            self.rc.close()
        self.ipp_cluster.stop_cluster_sync()

    def info(self) -> dict:
        nthreads = self.client.nthreads()
        return {
            "jupyter_remote": {
                "workers": len(nthreads),
                "threads": sum(nthreads.values()),
                "startup_s": round(self.ours_startup, 2),
                "package": os.path.dirname(self.jr.__file__),
                "client_to_scheduler_interval_s": self.client.scheduler_comm.interval,
            },
            "ipyparallel": {
                "engines": len(self.rc.ids),
                "startup_s": round(self.ipp_startup, 2),
                "version": __import__("ipyparallel").__version__,
            },
        }


# -- 1. round trip -------------------------------------------------------------------------
def bench_roundtrip(p: Peers, opts, results: dict) -> None:
    with Section(results, "roundtrip", opts.budget_roundtrip) as sec:
        rf = p.jr.function(one)
        client = p.client
        cases = {
            "jr_call": lambda: rf(1),
            "jr_cell": lambda: p.cell("%%remote\n1 + 1"),
            "dask_submit": lambda: client.submit(one, 1, pure=False).result(),
            "ipp_apply_direct": lambda: p.dview.apply_sync(one, 1),
            "ipp_apply_balanced": lambda: p.lview.apply_sync(one, 1),
        }
        times: dict[str, list[float]] = {k: [] for k in cases}
        names = list(cases)
        for i in range(opts.rt_warmup + opts.rt_reps):
            if i >= opts.rt_warmup and sec.left() <= 0:
                break
            k = i % len(names)
            for name in names[k:] + names[:k]:  # rotate: no case always follows another
                t = perf()
                cases[name]()
                dt = perf() - t
                if i >= opts.rt_warmup:
                    times[name].append(dt)
        best_ipp = min(statistics.median(times[k]) for k in ("ipp_apply_direct", "ipp_apply_balanced"))
        raw = statistics.median(times["dask_submit"])
        sec.entry["cases"] = {
            name: {
                "n": len(v),
                "median_ms": round(statistics.median(v) * 1e3, 3),
                "p95_ms": round(_percentile(v, 0.95) * 1e3, 3),
                "calls_per_s": round(1 / statistics.median(v), 1),
                "x_ipp_best": round(statistics.median(v) / best_ipp, 3),
                "x_dask": round(statistics.median(v) / raw, 3),
            }
            for name, v in times.items()
        }


# -- 2. map of trivial items (+ 4. memory and other calls during the largest) ---------------
def _timed_ipp_map(p: Peers, n: int, c: int, timeout: float, settle: float) -> float:
    time.sleep(settle)
    t = perf()
    ar = p.lview.map_async(inc, range(n), chunksize=c)
    try:
        got = ar.get(timeout=timeout)
    except BaseException:
        with contextlib.suppress(Exception):
            ar.abort()
        raise
    dt = perf() - t
    assert len(got) == n and got[0] == 1 and got[-1] == n, "ipyparallel map: wrong results"
    return dt


def _timed_dask_map(p: Peers, n: int, timeout: float) -> float:
    from distributed import wait

    client = p.client
    t = perf()
    futures = client.map(inc, range(n), pure=False)
    try:
        with client.as_current():
            wait(futures, timeout=timeout)
        got = client.gather(futures)
    finally:
        client.cancel(futures)
        del futures
    dt = perf() - t
    assert got == list(range(1, n + 1)), "client.map: wrong results"
    return dt


def bench_map(p: Peers, opts, results: dict) -> None:
    with Section(results, "map", opts.budget_map) as sec:
        fn = p.jr.function(inc)
        fn.map(range(100))  # warm up (function shipped, views imported)
        p.lview.map_sync(inc, range(100), chunksize=10)
        p.client.gather(p.client.map(inc, range(10), pure=False))
        rows = {}
        for n in opts.ns:
            reps = opts.map_reps(n)
            row: dict = {"n": n, "reps": reps}
            ours: list[float] = []
            ipp: dict[int, list[float]] = {c: [] for c in opts.chunksizes}
            skipped: dict[int, str] = {}
            raw: list[float] = []
            instrument = n == max(opts.ns) and "memory" in opts.only
            if instrument:  # first, before the other maps of this size have grown the heap
                t, mem = _instrumented_map(p, fn, n, opts)
                row["memory_and_others"] = mem
            for r in range(reps):
                if r and sec.left() <= 0:
                    break
                gc.collect()
                time.sleep(opts.settle)
                t0 = perf()
                got = fn.map(range(n), timeout=opts.map_timeout)
                t = perf() - t0
                assert len(got) == n and got[0] == 1 and got[-1] == n, "map: wrong results"
                del got
                ours.append(t)
                # ipyparallel, each chunksize
                for c in opts.chunksizes:
                    if n / c > opts.max_ipp_tasks:
                        skipped[c] = f"n/c = {n // c} tasks > {opts.max_ipp_tasks}"
                        continue
                    ipp[c].append(_timed_ipp_map(p, n, c, opts.map_timeout, opts.settle))
                # raw Dask, small n only
                if n <= opts.raw_max_n and r < opts.raw_reps:
                    raw.append(_timed_dask_map(p, n, opts.map_timeout))
            ours_rate = n / statistics.median(ours)
            ipp_rates = {c: n / statistics.median(v) for c, v in ipp.items() if v}
            best_c = max(ipp_rates, key=ipp_rates.get)
            row["jr_items_per_s"] = round(ours_rate)
            row["jr_runs_s"] = [round(x, 3) for x in ours]
            row["ipp_items_per_s"] = {str(c): round(v) for c, v in ipp_rates.items()}
            row["ipp_runs"] = {str(c): len(v) for c, v in ipp.items() if v}
            row["ipp_skipped"] = {str(c): why for c, why in skipped.items()}
            row["ipp_best_chunksize"] = best_c
            row["ipp_best_items_per_s"] = round(ipp_rates[best_c])
            row["jr_x_ipp_best"] = round(ours_rate / ipp_rates[best_c], 4)
            if raw:
                row["dask_items_per_s"] = round(n / statistics.median(raw))
                row["dask_runs"] = len(raw)
                row["jr_x_dask"] = round(ours_rate / row["dask_items_per_s"], 2)
            rows[str(n)] = row
            _say(
                f"   n={n:>9,}: ours {ours_rate:>11,.0f}/s  ipp best {ipp_rates[best_c]:>11,.0f}/s "
                f"(c={best_c})  ratio {ours_rate / ipp_rates[best_c]:.3f}  load {_load()[0]}"
            )
        sec.entry["rows"] = rows


def _instrumented_map(p: Peers, fn, n: int, opts) -> tuple[float, dict]:
    """One map of ``n`` items from a generator (read as the batches go out, never held
    whole), with the RSS sampler and the other-call probes running; not one of the timed
    maps."""
    from distributed import Client

    other = Client(p.client.scheduler.address, set_as_default=False, timeout=30)
    probe_fn = p.jr.function(one)
    probes = {
        "other_client_submit": lambda: other.submit(one, 1, pure=False).result(timeout=60),
        "jr_call_second_thread": lambda: probe_fn(1),
    }
    try:
        # the same probes on an idle cluster first: the baseline
        idle = Prober(probes, period=0.02, limit=opts.probe_idle)
        idle.start()
        idle.join(timeout=60)
        idle.stop.set()

        gc.collect()
        sampler = RSSSampler()
        sampler.start()
        busy = Prober(probes, period=opts.probe_period)
        busy.start()
        t0 = perf()
        try:
            got = fn.map((i for i in range(n)), timeout=opts.map_timeout)
        finally:
            t = perf() - t0
            busy.stop.set()
            sampler.stop.set()
            busy.join(timeout=60)
            sampler.join(timeout=5)
        assert len(got) == n and got[0] == 1 and got[-1] == n, "map: wrong results"
        size = _result_size(got)
        del got
    finally:
        other.close()

    def stats(v: list[float]) -> dict:
        if not v:
            return {"n": 0}
        return {"n": len(v), "median_ms": round(statistics.median(v) * 1e3, 2),
                "p95_ms": round(_percentile(v, 0.95) * 1e3, 2),
                "max_ms": round(max(v) * 1e3, 2)}

    growth = sampler.peak - sampler.base
    mem = {
        "n": n,
        "input": "generator",
        "seconds": round(t, 3),
        "rss_before_mib": round(sampler.base / 2**20, 1),
        "rss_peak_growth_mib": round(growth / 2**20, 1),
        "result_list_mib": round(size / 2**20, 1),
        "rss_growth_x_result": round(growth / size, 2),
        "other_calls_idle": {k: stats(v) for k, v in idle.times.items()},
        "other_calls_during_map": {k: stats(v) for k, v in busy.times.items()},
        "probe_errors": busy.errors[:5] + idle.errors[:5],
    }
    return t, mem


# -- 3. large items ------------------------------------------------------------------------
def bench_large(p: Peers, opts, results: dict) -> None:
    import numpy as np
    from distributed import wait

    with Section(results, "large", opts.budget_large) as sec:
        count, mb = opts.large_count, 10
        arrays = [np.full(mb * 2**20 // 8, i, dtype=np.float64) for i in range(count)]
        nbytes = sum(a.nbytes for a in arrays)
        client = p.client
        f_sum, f_same = p.jr.function(total), p.jr.function(same)
        f_sum.map(arrays[:2])
        f_same.map(arrays[:2])  # warm up

        def ours(f, batch_size=None):
            def run():
                got = f.map(arrays, timeout=opts.map_timeout, batch_size=batch_size)
                assert len(got) == count
            return run

        def dask(func):
            def run():
                futures = client.map(func, arrays, pure=False)
                try:
                    with client.as_current():
                        wait(futures, timeout=opts.map_timeout)
                    got = client.gather(futures)
                finally:
                    client.cancel(futures)
                    del futures
                assert len(got) == count
            return run

        cases = {
            "jr_map_sum": ours(f_sum),
            "dask_map_sum": dask(total),
            "jr_map_array": ours(f_same),
            "dask_map_array": dask(same),
            # diagnostic: one array per task (automatic batching groups ~count/8 arrays)
            "jr_map_sum_batch1": ours(f_sum, batch_size=1),
        }
        times: dict[str, list[float]] = {k: [] for k in cases}
        for r in range(opts.large_reps):
            if r and sec.left() <= 0:
                break
            for name, fn in cases.items():
                gc.collect()
                time.sleep(opts.settle)
                t = perf()
                fn()
                times[name].append(perf() - t)
        rates = {k: nbytes / statistics.median(v) for k, v in times.items()}
        sec.entry.update({
            "arrays": count,
            "array_mib": mb,
            "input_mib": round(nbytes / 2**20),
            "cases": {
                k: {"n": len(times[k]), "median_s": round(statistics.median(times[k]), 3),
                    "mib_per_s": round(v / 2**20, 1)}
                for k, v in rates.items()
            },
            "jr_x_dask_sum": round(rates["jr_map_sum"] / rates["dask_map_sum"], 3),
            "jr_x_dask_array": round(rates["jr_map_array"] / rates["dask_map_array"], 3),
            "jr_batch1_x_dask_sum": round(rates["jr_map_sum_batch1"] / rates["dask_map_sum"], 3),
        })


# -- report --------------------------------------------------------------------------------
def report(results: dict) -> None:
    w = 92
    print("=" * w)
    print("jupyter_remote vs ipyparallel vs raw Dask, one run, same machine")
    print("=" * w)
    meta = results["meta"]
    print(f"{meta['host']}: {meta['cpus']} CPUs, Python {meta['python']}, "
          f"distributed {meta['distributed']}, ipyparallel {meta['ipyparallel']}, "
          f"mode {'quick' if meta['quick'] else 'full'}")
    print(f"load average at start {meta['load_start']}, at end {meta.get('load_end')}")
    rt = results.get("roundtrip")
    if rt and "cases" in rt:
        print(f"\n1. round trip of one trivial call (load {rt['load_before'][0]} -> {rt['load_after'][0]})")
        print(f"   {'':36s}{'median ms':>10s}{'p95 ms':>9s}{'calls/s':>9s}{'x ipp best':>11s}{'x dask':>8s}")
        labels = {
            "jr_call": "jupyter_remote.function(f)(1)",
            "jr_cell": "%%remote 1 + 1 (IPython)",
            "dask_submit": "client.submit(f, 1).result()",
            "ipp_apply_direct": "ipp DirectView.apply_sync",
            "ipp_apply_balanced": "ipp LoadBalancedView.apply_sync",
        }
        for k, label in labels.items():
            c = rt["cases"][k]
            print(f"   {label:36s}{c['median_ms']:10.2f}{c['p95_ms']:9.2f}{c['calls_per_s']:9.0f}"
                  f"{c['x_ipp_best']:11.2f}{c['x_dask']:8.2f}")
    mp = results.get("map")
    if mp and "rows" in mp:
        print(f"\n2. map of f(x) = x + 1, items/s (load {mp['load_before'][0]} -> {mp['load_after'][0]})")
        cs = sorted({int(c) for r in mp["rows"].values() for c in r["ipp_items_per_s"]})
        head = "".join(f"{'ipp c=' + format(c, ','):>14s}" for c in cs)
        print(f"   {'n':>10s}{'ours':>12s}{head}{'ipp best':>12s}{'ours/ipp':>10s}{'dask':>8s}{'ours/dask':>10s}")
        for r in mp["rows"].values():
            cells = "".join(
                f"{r['ipp_items_per_s'].get(str(c), 0):>14,}" if str(c) in r["ipp_items_per_s"]
                else f"{'-':>14s}" for c in cs
            )
            dask = f"{r['dask_items_per_s']:>8,}" if "dask_items_per_s" in r else f"{'-':>8s}"
            dx = f"{r['jr_x_dask']:>10.1f}" if "jr_x_dask" in r else f"{'-':>10s}"
            print(f"   {r['n']:>10,}{r['jr_items_per_s']:>12,}{cells}"
                  f"{r['ipp_items_per_s'][str(r['ipp_best_chunksize'])]:>12,}"
                  f"{r['jr_x_ipp_best']:>10.3f}{dask}{dx}")
        print("   (ipp best = the best chunksize of this row; ours = median of "
              f"{', '.join(str(r['reps']) for r in mp['rows'].values())} runs)")
    lg = results.get("large")
    if lg and "cases" in lg:
        print(f"\n3. map over {lg['arrays']} arrays of {lg['array_mib']} MiB, MiB/s of input "
              f"(load {lg['load_before'][0]} -> {lg['load_after'][0]})")
        for k, c in lg["cases"].items():
            print(f"   {k:24s}{c['mib_per_s']:10.1f} MiB/s  ({c['median_s']:.2f} s, median of {c['n']})")
        print(f"   ours / dask: returning a scalar {lg['jr_x_dask_sum']:.2f}x, returning the array "
              f"{lg['jr_x_dask_array']:.2f}x; diagnostic batch_size=1, scalar: "
              f"{lg['jr_batch1_x_dask_sum']:.2f}x")
    for r in (mp or {}).get("rows", {}).values():
        m = r.get("memory_and_others")
        if not m:
            continue
        print(f"\n4. during a {m['n']:,}-item map from a generator ({m.get('seconds', float('nan')):.2f} s)")
        print(f"   notebook RSS: {m['rss_before_mib']} MiB before, peak growth "
              f"{m['rss_peak_growth_mib']} MiB; result list {m['result_list_mib']} MiB "
              f"-> growth is {m['rss_growth_x_result']}x the result list")
        for k in m["other_calls_during_map"]:
            i, b = m["other_calls_idle"][k], m["other_calls_during_map"][k]
            if b.get("n"):
                print(f"   {k:24s} idle median {i.get('median_ms', float('nan')):7.2f} ms; during map "
                      f"median {b['median_ms']:8.2f} ms, p95 {b['p95_ms']:8.2f} ms, "
                      f"max {b['max_ms']:8.2f} ms (n={b['n']})")
            else:
                print(f"   {k:24s} no call completed during the map")
        if m["probe_errors"]:
            print(f"   probe errors: {m['probe_errors']}")
    print()


# -- main ----------------------------------------------------------------------------------
def _count(text: str) -> int:
    """``10000``, ``10k`` or ``1M``."""
    text = text.strip()
    scale = {"k": 1000, "M": 1000000}.get(text[-1:], 1)
    return int(text[:-1] if scale > 1 else text) * scale


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="< 2 min: smaller n, fewer repeats")
    ap.add_argument("--only", default="roundtrip,map,memory,large",
                    help="comma-separated sections (default all: roundtrip,map,memory,large)")
    ap.add_argument("--ns", help="comma-separated map sizes (default 1k,10k,100k,1M; quick 1k,10k,100k)")
    ap.add_argument("--chunksizes", default="100,500,5000,50000")
    ap.add_argument("--json", action="store_true", help="print the JSON results to stdout too")
    ap.add_argument("--out", help="JSON file (default benchmarks/results/peers-<date>.json; '-': none)")
    ap.add_argument("--settle", type=float, default=0.1,
                    help="idle seconds before every timed map, ours and ipyparallel's alike "
                         "(default 0.1; 0: back to back)")
    ap.add_argument("--max-seconds", type=float, help="abort the whole run after this (default 1500, quick 300)")
    opts = ap.parse_args(argv)
    q = opts.quick
    opts.ns = [_count(x) for x in (opts.ns or ("1k,10k,100k" if q else "1k,10k,100k,1M")).split(",")]
    opts.chunksizes = [int(x) for x in opts.chunksizes.split(",")]
    opts.only = {s.strip() for s in opts.only.split(",") if s.strip()}
    opts.rt_reps, opts.rt_warmup = (40, 5) if q else (200, 20)
    opts.map_reps = (lambda n: 1 if n >= 100_000 else 2) if q else (
        lambda n: 3 if n >= 1_000_000 else 7 if n >= 100_000 else 9)
    opts.raw_max_n = 1000 if q else 10_000
    opts.raw_reps = 1
    opts.max_ipp_tasks = 2000
    opts.map_timeout = 120 if q else 600
    opts.large_count = 20 if q else 100
    opts.large_reps = 1 if q else 3
    opts.probe_period = 0.01  # a million items take well under a second now
    opts.probe_idle = 20 if q else 50
    opts.budget_roundtrip = 20 if q else 90
    opts.budget_map = 90 if q else 900
    opts.budget_large = 40 if q else 240
    opts.max_seconds = opts.max_seconds or (300 if q else 1500)
    return opts


class _Abort(BaseException):
    pass


def _abort(signum, frame):
    raise _Abort(f"signal {signum}: stopping the clusters")


def main(argv: list[str] | None = None) -> dict:
    opts = parse(argv)
    import distributed
    import ipyparallel

    results: dict = {
        "meta": {
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "distributed": distributed.__version__,
            "ipyparallel": ipyparallel.__version__,
            "quick": opts.quick,
            "load_start": _load(),
            "options": {k: v for k, v in vars(opts).items() if not callable(v) and k != "only"},
            "sections": sorted(opts.only),
        }
    }
    signal.signal(signal.SIGTERM, _abort)
    signal.signal(signal.SIGALRM, _abort)
    signal.alarm(int(opts.max_seconds))
    t0 = perf()
    error = None
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(contextlib.redirect_stdout(_Discard()))
            stack.enter_context(contextlib.redirect_stderr(_Discard()))
            peers = Peers(stack)
            _say("starting the embedded jupyter_remote cluster ...")
            peers.start_ours()
            _say("starting ipyparallel Cluster(n=2) ...")
            peers.start_ipp(2)
            results["meta"]["clusters"] = peers.info()
            if "roundtrip" in opts.only:
                bench_roundtrip(peers, opts, results)
            if "map" in opts.only or "memory" in opts.only:
                bench_map(peers, opts, results)
            if "large" in opts.only:
                bench_large(peers, opts, results)
            _say("stopping the clusters ...")
    except BaseException as exc:  # report what was measured, then fail
        error = exc
        results["meta"]["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        signal.alarm(0)
    results["meta"]["load_end"] = _load()
    results["meta"]["wall_s"] = round(perf() - t0, 1)
    report(results)
    print(f"total wall time {results['meta']['wall_s']:.0f} s")
    out = opts.out
    if out != "-":
        if not out:
            stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
            kind = "quick" if opts.quick else "full"
            out = os.path.join(HERE, "results", f"peers-{stamp}-{kind}.json")
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as fh:
            json.dump(results, fh, indent=1, sort_keys=True)
        print(f"results written to {out}")
    if opts.json:
        print(json.dumps(results, sort_keys=True))
    if error is not None:
        raise error
    return results


if __name__ == "__main__":
    main()
