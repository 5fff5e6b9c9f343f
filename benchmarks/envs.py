"""Requirement environments: the cost of a call whose environment is built, and a first build.

    python benchmarks/envs.py            # ~30-60 s on 2 cores
    python benchmarks/envs.py --reps 100

On the embedded ``local`` cluster (as a user gets it), with wheels this script writes into a
temporary wheelhouse (no network) and an environments root in a temporary folder:

1. **Cached call overhead**: ``jupyter_remote.function(f, reqs=[...])()`` once its
   environment is built and its process started, vs the same ``f`` with no requirements,
   interleaved, median of ``--reps``. Target: ratio < 1.2x.
2. **First build**: the first call with requirements (venv + pip install + process start +
   the call) next to a plain ``python -m venv`` + ``pip install`` of the same wheels into a
   fresh virtual environment, both offline from the same wheelhouse.

Prints a table, then one line starting with ``BENCHMARK_JSON``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

TARGET_RATIO = 1.2
N_WHEELS = 5


def trivial():
    return 1


def trivial_with_import():
    import jrbench0

    return jrbench0.VERSION


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=200)
    opts = parser.parse_args()

    from tests import wheelhouse

    work = tempfile.mkdtemp(prefix="jr-bench-envs-")
    house = os.path.join(work, "wheelhouse")
    names = [f"jrbench{i}" for i in range(N_WHEELS)]
    for name in names:
        wheelhouse.wheel(house, name, "1.0")
    root = os.path.join(work, "envs")
    # Read by the workers of the embedded cluster (they inherit this environment).
    os.environ["DASK_JUPYTER_REMOTE__ENVIRONMENTS__ROOT"] = root
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")
    import dask

    import jupyter_remote

    dask.config.set({"jupyter-remote.pip-options": ["--no-index", "--find-links", house]})
    cluster = jupyter_remote.cluster("local")
    cluster.client.wait_for_workers(1)  # start it
    reqs = [f"{n}==1.0" for n in names]
    plain = jupyter_remote.function(trivial, cluster)
    plain_import = jupyter_remote.function(trivial_with_import, cluster)  # noqa: F841
    with_reqs = jupyter_remote.function(trivial, cluster, reqs=reqs)
    importing = jupyter_remote.function(trivial_with_import, cluster, reqs=reqs)

    plain()  # warm the plain path
    t0 = time.perf_counter()
    importing()
    first_call = time.perf_counter() - t0
    records = [os.path.join(root, d, "jupyter-remote-env.json") for d in os.listdir(root)
               if not d.startswith(".")]
    with open(records[0]) as f:
        build_seconds = json.load(f)["build_seconds"]
    # Warm every worker's env process (calls land on any worker).
    n_workers = len(cluster.client.nthreads())
    for _ in range(6 * n_workers):
        with_reqs()

    times: dict[str, list[float]] = {"no_reqs": [], "built_reqs": []}
    for _ in range(opts.reps):
        for name, fn in (("no_reqs", plain), ("built_reqs", with_reqs)):
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    median = {k: statistics.median(v) * 1000 for k, v in times.items()}
    p95 = {k: sorted(v)[int(0.95 * (len(v) - 1))] * 1000 for k, v in times.items()}
    ratio = median["built_reqs"] / median["no_reqs"]

    # A plain `python -m venv` + `pip install` of the same wheels, offline.
    fresh = os.path.join(work, "fresh-venv")
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", fresh], check=True, capture_output=True)
    venv_seconds = time.perf_counter() - t
    t = time.perf_counter()
    subprocess.run([os.path.join(fresh, "bin", "pip"), "install", "--disable-pip-version-check",
                    "--no-index", "--find-links", house, *reqs], check=True, capture_output=True)
    pip_seconds = time.perf_counter() - t
    # The same without pip inside the venv (how environments are built): venv + pip --python.
    lean = os.path.join(work, "lean-venv")
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", lean], check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "pip", "--python", os.path.join(lean, "bin", "python"),
                    "install", "--disable-pip-version-check", "--no-index", "--find-links", house,
                    *reqs], check=True, capture_output=True)
    lean_seconds = time.perf_counter() - t

    figures = {
        "reps": opts.reps,
        "workers": n_workers,
        "no_reqs_median_ms": median["no_reqs"],
        "built_reqs_median_ms": median["built_reqs"],
        "no_reqs_p95_ms": p95["no_reqs"],
        "built_reqs_p95_ms": p95["built_reqs"],
        "cached_ratio": ratio,
        "target_ratio": TARGET_RATIO,
        "wheels": N_WHEELS,
        "first_call_s": first_call,
        "first_build_s": build_seconds,
        "plain_venv_with_pip_s": venv_seconds,
        "plain_pip_install_s": pip_seconds,
        "plain_total_s": venv_seconds + pip_seconds,
        "venv_without_pip_plus_pip_python_s": lean_seconds,
    }
    print(f"\nRequirement environments ({n_workers} workers, {N_WHEELS} wheels, {opts.reps} reps)")
    print(f"  call, no requirements        median {median['no_reqs']:7.2f} ms   p95 {p95['no_reqs']:7.2f} ms")
    print(f"  call, environment built      median {median['built_reqs']:7.2f} ms   p95 {p95['built_reqs']:7.2f} ms")
    print(f"  ratio (target < {TARGET_RATIO}x)        {ratio:.2f}x  {'OK' if ratio < TARGET_RATIO else 'MISSED'}")
    print(f"  first call with requirements {first_call:7.2f} s  (build record: {build_seconds:.2f} s)")
    print(f"  plain venv + pip install     {venv_seconds + pip_seconds:7.2f} s  "
          f"(venv with pip {venv_seconds:.2f} s + install {pip_seconds:.2f} s)")
    print(f"  venv --without-pip + pip --python  {lean_seconds:.2f} s")
    print("BENCHMARK_JSON " + json.dumps(figures))
    from jupyter_remote.core import clusters

    clusters.close_all()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
