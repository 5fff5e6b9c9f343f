"""jupyter_remote vs raw Dask on the same cluster, measured in the same run.

    python benchmarks/run.py            # full run (~2 minutes on 2 cores)
    python benchmarks/run.py --quick    # fewer repetitions, fewer raw map items

Each setting runs in a fresh child process (the embedded ``local`` cluster is started once
per process): ``tuned`` is the package default (``jupyter-remote.local.interactive: true``,
scheduler in its own process, Dask's batched-send intervals zeroed by
``jupyter_remote.preload``); ``untuned`` sets ``interactive: false`` before the cluster
starts. In each, the raw Dask figures use the very client the package uses, so both sides
share one cluster. The cells run through a real IPython ``InteractiveShell`` with
``%load_ext jupyter_remote``.

Prints a table, then one machine-readable line starting with ``BENCHMARK_JSON``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

TARGET_ROUND_TRIP = 1.25  # our cell's median within this factor of raw Dask's
TARGET_MAP = 10.0  # RemoteFunction.map items/s at least this factor of raw client.map's
TARGET_BYTES = 64 * 1024  # bytes the notebook receives when a 200 MB ref feeds a cell


# ---------------------------------------------------------------------------------------
# child: one setting, one cluster
# ---------------------------------------------------------------------------------------
def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _stats(seconds: list[float]) -> dict:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "median_ms": statistics.median(ms),
        "p95_ms": _percentile(ms, 0.95),
        "mean_ms": statistics.fmean(ms),
        "min_ms": min(ms),
    }


def child(mode: str, opts: argparse.Namespace) -> dict:
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    import dask

    import jupyter_remote.config  # noqa: F401 (registers the package's config defaults)

    if mode == "untuned":
        dask.config.set({"jupyter-remote.local.interactive": False})
    interactive = bool(dask.config.get("jupyter-remote.local.interactive"))

    import netbytes

    netbytes.install_tornado_counter()

    from IPython.testing.globalipapp import start_ipython

    ip = start_ipython()
    ip.run_line_magic("load_ext", "jupyter_remote")
    out = io.StringIO()

    def cell(source: str) -> None:
        # stdout (Out[n]) and stderr (the text view's `[remote]` status lines) are still
        # written, as in a terminal, just not to this process's terminal.
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            result = ip.run_cell(source, store_history=True)
        if not result.success:
            result.raise_error()
        out.seek(0)
        out.truncate()

    t0 = time.perf_counter()
    cell("%%remote\nx = 1")  # starts the embedded cluster
    startup = time.perf_counter() - t0

    import jupyter_remote
    from jupyter_remote.core import cells as core_cells

    cluster = jupyter_remote.cluster("local")
    client = cluster.client

    def scheduler_intervals(dask_scheduler):
        return {
            "to_workers": sorted({c.interval for c in dask_scheduler.stream_comms.values()}),
            "to_clients": sorted({c.interval for c in dask_scheduler.client_comms.values()}),
            "scheduler_pid": os.getpid(),
        }

    def worker_interval(dask_worker):
        return dask_worker.batched_stream.interval

    sched = client.run_on_scheduler(scheduler_intervals)
    setting = {
        "mode": mode,
        "interactive": interactive,
        "startup_s": startup,
        "workers": len(client.nthreads()),
        "threads": sum(client.nthreads().values()),
        "scheduler_in_own_process": sched["scheduler_pid"] != os.getpid(),
        "intervals_s": {
            "client_to_scheduler": client.scheduler_comm.interval,
            "scheduler_to_workers": sched["to_workers"],
            "scheduler_to_clients": sched["to_clients"],
            "workers_to_scheduler": sorted(set(client.run(worker_interval).values())),
        },
    }

    # -- 1. round trip -------------------------------------------------------------------
    def inc_one():
        return 1

    ns: dict = {}
    ip.user_ns.update(_bench_client=client, _bench_f=inc_one)

    cases = {
        "raw_submit": lambda: client.submit(inc_one, pure=False).result(),
        "cell_expr": lambda: cell("%%remote\n1 + 1"),
        "cell_bind": lambda: cell("%%remote\nx = 1"),
        # diagnostics: where the time goes
        "raw_in_cell": lambda: cell("_bench_client.submit(_bench_f, pure=False).result()"),
        "core_run_cell": lambda: core_cells.run_cell("\n1 + 1", ns, cluster),
        "local_ipython_cell": lambda: cell("1 + 1"),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    perf = time.perf_counter
    for i in range(opts.warmup + opts.reps):
        # rotate the order so no case always follows the same neighbour
        k = i % len(names)
        for name in names[k:] + names[:k]:
            fn = cases[name]
            t = perf()
            fn()
            dt = perf() - t
            if i >= opts.warmup:
                times[name].append(dt)
    round_trip = {name: _stats(v) for name, v in times.items()}

    # -- 2. map ----------------------------------------------------------------------------
    mapped = None
    if opts.map:
        fn = jupyter_remote.function(lambda x: x + 1)
        fn.map(range(100))  # warm up
        ours = []
        for _ in range(opts.map_runs):
            t = perf()
            got = fn.map(range(opts.map_items))
            ours.append(perf() - t)
            assert got == list(range(1, opts.map_items + 1)), "RemoteFunction.map: wrong results"
        raw_fn = lambda x: x + 1  # noqa: E731 (same kind of function as ours)
        client.gather(client.map(raw_fn, range(100), pure=False))  # warm up
        t = perf()
        futures = client.map(raw_fn, range(opts.raw_map_items), pure=False)
        got = client.gather(futures)
        raw = perf() - t
        del futures
        assert got == list(range(1, opts.raw_map_items + 1)), "client.map: wrong results"
        ours_s = statistics.median(ours)
        mapped = {
            "items": opts.map_items,
            "ours_runs_s": ours,
            "ours_items_per_s": opts.map_items / ours_s,
            "raw_items": opts.raw_map_items,
            "raw_s": raw,
            "raw_items_per_s": opts.raw_map_items / raw,
        }
        mapped["ratio"] = mapped["ours_items_per_s"] / mapped["raw_items_per_s"]

    # -- 3. bytes received when a 200 MB ref feeds the next cell ---------------------------
    moved = None
    if opts.bytes:
        cell("%%remote\nimport numpy as np\nbig = np.ones(25_000_000)")
        big = ip.user_ns["big"]
        with netbytes.Window() as w_cell:
            cell("%%remote\ns = big.sum()")
        total = ip.user_ns["s"].get()
        assert total == 25_000_000, f"big.sum() gave {total}"
        with netbytes.Window() as w_get:
            value = big.get()
        nbytes = int(value.nbytes)
        del value
        moved = {
            "ref_nbytes": int(big.info.get("nbytes") or nbytes),
            "cell": w_cell.as_dict(),
            "get_control": w_get.as_dict(),
        }
        ip.run_cell("del big, s", store_history=False)

    return {"setting": setting, "round_trip": round_trip, "map": mapped, "bytes": moved}


# ---------------------------------------------------------------------------------------
# parent: run the settings, print the table
# ---------------------------------------------------------------------------------------
def run_child(mode: str, opts: argparse.Namespace, argv: list[str]) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", mode, *argv]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=opts.child_timeout, cwd=HERE)
    for line in proc.stdout.splitlines():
        if line.startswith("CHILD_RESULT "):
            return json.loads(line[len("CHILD_RESULT ") :])
    sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-8000:])
    raise SystemExit(f"benchmark child {mode!r} failed (exit {proc.returncode})")


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def report(results: dict[str, dict], opts: argparse.Namespace) -> dict:
    summary: dict = {"quick": opts.quick, "settings": {}}
    width = 78
    print("=" * width)
    print("jupyter_remote vs raw Dask, same cluster, same run")
    print("=" * width)
    for mode, res in results.items():
        s = res["setting"]
        rt = res["round_trip"]
        raw = rt["raw_submit"]
        iv = s["intervals_s"]
        print(
            f"\n[{mode}] jupyter-remote.local.interactive={s['interactive']}  "
            f"workers={s['workers']} threads={s['threads']}  "
            f"scheduler in own process={s['scheduler_in_own_process']}  "
            f"startup={s['startup_s']:.2f}s"
        )
        print(
            f"  batched-send intervals: client->sched {iv['client_to_scheduler']}, "
            f"sched->workers {iv['scheduler_to_workers']}, sched->clients "
            f"{iv['scheduler_to_clients']}, workers->sched {iv['workers_to_scheduler']}"
        )
        print(f"\n  1. round trip ({raw['n']} reps after {opts.warmup} warmup, interleaved)")
        print(f"  {'':40s}{'median':>9s}{'p95':>9s}{'x raw':>8s}{'x raw':>8s}")
        print(f"  {'':40s}{'ms':>9s}{'ms':>9s}{'(med)':>8s}{'(p95)':>8s}")
        labels = {
            "raw_submit": "raw client.submit(f).result()",
            "cell_expr": "%%remote `1 + 1`  (IPython run_cell)",
            "cell_bind": "%%remote `x = 1`  (IPython run_cell)",
            "raw_in_cell": "  diag: raw submit as an IPython cell",
            "core_run_cell": "  diag: core.cells.run_cell (no IPython)",
            "local_ipython_cell": "  diag: plain local IPython cell",
        }
        for name, label in labels.items():
            st = rt[name]
            print(
                f"  {label:40s}{st['median_ms']:9.2f}{st['p95_ms']:9.2f}"
                f"{st['median_ms'] / raw['median_ms']:8.2f}{st['p95_ms'] / raw['p95_ms']:8.2f}"
            )
        ratio = rt["cell_expr"]["median_ms"] / raw["median_ms"]
        ratio_bind = rt["cell_bind"]["median_ms"] / raw["median_ms"]
        ok = ratio <= TARGET_ROUND_TRIP
        print(
            f"  target: %%remote median <= {TARGET_ROUND_TRIP}x raw -> `1 + 1` {ratio:.2f}x "
            f"{'MET' if ok else 'MISSED'}; `x = 1` {ratio_bind:.2f}x "
            f"{'MET' if ratio_bind <= TARGET_ROUND_TRIP else 'MISSED'}"
        )
        in_cell = rt["cell_expr"]["median_ms"] / rt["raw_in_cell"]["median_ms"]
        print(
            f"  (like for like, both as IPython cells: %%remote `1 + 1` is {in_cell:.2f}x "
            "a raw submit run in a cell)"
        )
        entry: dict = {
            "interactive": s["interactive"],
            "startup_s": round(s["startup_s"], 3),
            "intervals_s": iv,
            "round_trip_ms": {
                k: {"median": round(v["median_ms"], 3), "p95": round(v["p95_ms"], 3)}
                for k, v in rt.items()
            },
            "round_trip_ratio_median": round(ratio, 3),
            "round_trip_ratio_p95": round(rt["cell_expr"]["p95_ms"] / raw["p95_ms"], 3),
            "round_trip_bind_ratio_median": round(ratio_bind, 3),
            "round_trip_ratio_vs_raw_in_cell_median": round(in_cell, 3),
            "round_trip_target_met": ok,
        }
        m = res.get("map")
        if m:
            ok_map = m["ratio"] >= TARGET_MAP
            print(f"\n  2. map over trivial items")
            print(
                f"  {'RemoteFunction.map':38s}{m['items']:>7d} items "
                f"{m['ours_items_per_s']:10.0f} items/s  (median of {len(m['ours_runs_s'])} runs)"
            )
            print(
                f"  {'raw client.map + gather':38s}{m['raw_items']:>7d} items "
                f"{m['raw_items_per_s']:10.0f} items/s"
            )
            print(
                f"  target: >= {TARGET_MAP:g}x raw -> {m['ratio']:.1f}x "
                f"{'MET' if ok_map else 'MISSED'}"
            )
            entry["map"] = {
                "items": m["items"],
                "ours_items_per_s": round(m["ours_items_per_s"], 1),
                "raw_items": m["raw_items"],
                "raw_items_per_s": round(m["raw_items_per_s"], 1),
                "ratio": round(m["ratio"], 2),
                "target_met": ok_map,
            }
        b = res.get("bytes")
        if b:
            c, g = b["cell"], b["get_control"]
            got = max(c["tcp_info_bytes"], c["tornado_bytes"])
            ok_b = got < TARGET_BYTES
            print(f"\n  3. bytes received by this process (ref of {_fmt_bytes(b['ref_nbytes'])})")
            print(f"  {'':40s}{'TCP_INFO':>12s}{'tornado':>12s}")
            print(
                f"  {'%%remote `s = big.sum()`':38s}{_fmt_bytes(c['tcp_info_bytes']):>12s}"
                f"{_fmt_bytes(c['tornado_bytes']):>12s}"
            )
            print(
                f"  {'control: big.get()':38s}{_fmt_bytes(g['tcp_info_bytes']):>12s}"
                f"{_fmt_bytes(g['tornado_bytes']):>12s}"
            )
            if c["closed_sockets"] or g["closed_sockets"]:
                print("  (a socket closed during a window: TCP_INFO misses its bytes; see tornado)")
            control_ok = min(g["tcp_info_bytes"], g["tornado_bytes"]) >= 0.95 * b["ref_nbytes"]
            print(
                f"  target: < {_fmt_bytes(TARGET_BYTES)} -> {_fmt_bytes(got)} "
                f"{'MET' if ok_b else 'MISSED'}; control sees the download: "
                f"{'yes' if control_ok else 'NO (measurement suspect)'}"
            )
            entry["bytes"] = {
                "ref_nbytes": b["ref_nbytes"],
                "cell_tcp_info": c["tcp_info_bytes"],
                "cell_tornado": c["tornado_bytes"],
                "get_tcp_info": g["tcp_info_bytes"],
                "get_tornado": g["tornado_bytes"],
                "control_ok": control_ok,
                "target_met": ok_b,
            }
        summary["settings"][mode] = entry
    print()
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and raw map items")
    parser.add_argument("--reps", type=int, help="round-trip repetitions (default 300, quick 60)")
    parser.add_argument("--warmup", type=int, help="warmup repetitions (default 30, quick 10)")
    parser.add_argument("--settings", default="tuned,untuned",
                        help="comma-separated: tuned, untuned (default both)")
    parser.add_argument("--map-items", type=int, default=10_000)
    parser.add_argument("--raw-map-items", type=int,
                        help="items for raw client.map (default 10000, quick 2000)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-timeout", type=float, default=240, help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    opts.reps = opts.reps or (60 if opts.quick else 300)
    opts.warmup = opts.warmup or (10 if opts.quick else 30)
    opts.raw_map_items = opts.raw_map_items or (2000 if opts.quick else 10_000)
    opts.map_runs = 3

    if opts.child:
        mode = opts.child
        opts.map = True
        opts.bytes = mode == "tuned"
        result = child(mode, opts)
        print("CHILD_RESULT " + json.dumps(result), flush=True)
        # The embedded cluster closes at exit; skip slow interpreter teardown of threads.
        return

    settings = [s.strip() for s in opts.settings.split(",") if s.strip()]
    passthrough = [
        *(["--quick"] if opts.quick else []),
        "--reps", str(opts.reps), "--warmup", str(opts.warmup),
        "--map-items", str(opts.map_items), "--raw-map-items", str(opts.raw_map_items),
    ]
    t0 = time.perf_counter()
    results = {}
    for mode in settings:
        print(f"running setting {mode!r} ...", file=sys.stderr, flush=True)
        results[mode] = run_child(mode, opts, passthrough)
    summary = report(results, opts)
    summary["wall_s"] = round(time.perf_counter() - t0, 1)
    print(f"total wall time {summary['wall_s']:.0f} s")
    print("BENCHMARK_JSON " + json.dumps(summary, sort_keys=True))


if __name__ == "__main__":
    main()
