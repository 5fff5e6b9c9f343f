"""What ``%load_ext jupyter_remote`` costs a kernel, beside importing Dask itself.

Each figure is the median over fresh Python processes (so nothing is imported yet), timed
inside the process around the statement alone:

- ``import distributed``: what any Dask code pays first (the baseline);
- ``import jupyter_remote``: the package (its API is lazy);
- ``%load_ext jupyter_remote`` in a fresh IPython shell: what a notebook's first cell pays
  (registering the magics; Dask loads on the first ``%%remote``);
- the first ``%%remote`` cell's imports, without running it: ``jupyter_remote.core.cells``
  with ``ipython.render``, i.e. what the magic imports before it submits.

Prints a table, then one ``BENCHMARK_JSON`` line.

    .venv/bin/python benchmarks/import_time.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CASES = {
    "import distributed": ("", "import distributed"),
    "import jupyter_remote": ("", "import jupyter_remote"),
    "%load_ext jupyter_remote": (
        "from IPython.testing.globalipapp import start_ipython\nip = start_ipython()",
        "ip.run_line_magic('load_ext', 'jupyter_remote')",
    ),
    "first %%remote's imports": (
        "from IPython.testing.globalipapp import start_ipython\nip = start_ipython()\n"
        "ip.run_line_magic('load_ext', 'jupyter_remote')",
        "import jupyter_remote.core.cells, jupyter_remote.ipython.render",
    ),
}

_PROBE = """
import time
{setup}
t0 = time.perf_counter()
{stmt}
print(time.perf_counter() - t0)
"""


def measure(setup: str, stmt: str, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", _PROBE.format(setup=setup, stmt=stmt)],
            capture_output=True, text=True, check=True,
        )
        out.append(float(done.stdout.strip().splitlines()[-1]))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per case")
    opts = parser.parse_args(argv)
    results = {name: statistics.median(measure(*case, opts.runs)) for name, case in CASES.items()}
    base = results["import distributed"]
    print(f"{'':32} {'median ms':>10} {'x import distributed':>20}")
    for name, seconds in results.items():
        print(f"{name:32} {seconds * 1e3:10.1f} {seconds / base:20.2f}")
    print("BENCHMARK_JSON " + json.dumps(
        {"runs": opts.runs, "ms": {k: round(v * 1e3, 2) for k, v in results.items()},
         "load_ext_ratio": round(results["%load_ext jupyter_remote"] / base, 3)},
        sort_keys=True,
    ))


if __name__ == "__main__":
    main()
