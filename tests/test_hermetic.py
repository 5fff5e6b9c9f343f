"""The suite passes with a hostile user home, each file in a process of its own.

The home holds what real users have: jupyter-remote and distributed settings in
``~/.config/dask``, ``DASK_*`` variables, an IPython startup file, a kernelspec named
``python3`` whose interpreter does not exist, an environment already in the default
environment root, pip settings that point at an index. A representative subset of the suite
runs in subprocesses whose HOME is that home; tests/hermetic.py must keep every one of those
from reaching what the tests do, and nothing may be written into the home.

First the test checks that the home is hostile: without the pins, Dask reads its settings
and Jupyter finds the broken kernelspec. So this test fails if the home stops being hostile
as well as if the pins stop holding.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import hermetic

REPO = Path(__file__).resolve().parent.parent

# Files that failed on such a home before the pins (issue 15), plus a real kernel by name.
SUBSET = [
    "tests/test_config.py",
    "tests/core/test_functions.py",
    "tests/core/test_refs.py",
    "tests/ipython/test_magics.py",
    "tests/ipython/test_kernel.py",
]

DASK_YAML = """\
jupyter-remote:
  default-cluster: nowhere
  map: {batch-size: 1}
  widgets: text
  local: {n-workers: 1, threads-per-worker: 1}
  logs: {max-lines: 3}
distributed:
  scheduler: {allowed-failures: 0, worker-saturation: 1.0}
"""

STARTUP = """\
import pathlib
pathlib.Path({marker!r}).write_text("the user's IPython startup file ran")
raise RuntimeError("the user's IPython startup file ran")
"""


def hostile_home(home: Path) -> None:
    (home / ".config" / "dask").mkdir(parents=True)
    (home / ".config" / "dask" / "jupyter-remote.yaml").write_text(DASK_YAML)
    startup = home / ".ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-user.py").write_text(STARTUP.format(marker=str(home / "STARTUP-RAN")))
    spec = home / ".local" / "share" / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": ["/nonexistent/python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "a user's broken Python 3",
        "language": "python",
    }))  # fmt: skip
    env = home / ".cache" / "jupyter_remote" / "envs" / "0123456789abcdef"
    env.mkdir(parents=True)
    (env / "jupyter-remote-env.json").write_text('{"requirements": ["users-own==1.0"]}')
    (home / ".config" / "pip").mkdir(parents=True)
    (home / ".config" / "pip" / "pip.conf").write_text(
        "[global]\nindex-url = http://127.0.0.1:9/simple\n"
    )


def user_environment(home: Path) -> dict[str, str]:
    """This process's environment as a user would have it: none of the pins, HOME at
    ``home``, and some variables of the user's own."""
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(hermetic._DROPPED_PREFIXES)
        and k not in ("HOME", "PYTHONNOUSERSITE")
        and not k.startswith("GIT_")
    }  # fmt: skip
    env.update({
        "HOME": str(home),
        "DASK_JUPYTER_REMOTE__WIDGETS": "text",
        "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s",
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
        # In a venv Jupyter prefers the venv's kernelspecs to the user's; many installs
        # (conda base, system Python) do not: make the user's python3 win, as it would there.
        "JUPYTER_PREFER_ENV_PATH": "0",
    })  # fmt: skip
    return env


def files_under(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime for p in root.rglob("*")}


@pytest.mark.slow
def test_the_suite_passes_with_a_hostile_home(tmp_path):
    home = tmp_path / "home"
    hostile_home(home)
    env = user_environment(home)

    # The home is hostile: unpinned, Dask and Jupyter read it.
    probe = subprocess.run(
        [sys.executable, "-c",
         "import dask, jupyter_remote\n"
         "from jupyter_client.kernelspec import KernelSpecManager\n"
         "print(dask.config.get('jupyter-remote.default-cluster'),\n"
         "      dask.config.get('jupyter-remote.map.batch-size'),\n"
         "      KernelSpecManager().get_kernel_spec('python3').argv[0])\n"],
        env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert probe.stdout.split() == ["nowhere", "1", "/nonexistent/python3"], probe.stderr

    before = files_under(home)
    failures = []
    for i, path in enumerate(SUBSET):
        run = subprocess.run(
            [sys.executable, "-m", "pytest", path, "-q", "-p", "no:cacheprovider",
             f"--basetemp={tmp_path / f'run-{i}'}"],
            env=env, capture_output=True, text=True, cwd=REPO, timeout=900,
        )  # fmt: skip
        if run.returncode != 0:
            failures.append(f"--- {path} (exit {run.returncode})\n{run.stdout[-4000:]}{run.stderr[-2000:]}")
    assert not failures, "with a hostile home:\n" + "\n".join(failures)
    # Nothing read the startup file, and nothing was written into (or removed from) the home.
    assert not (home / "STARTUP-RAN").exists()
    assert files_under(home) == before
