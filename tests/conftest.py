"""Shared fixtures: the package's own embedded cluster (real worker processes) and a real
IPython shell with the extension loaded.

Before anything else, the run is made hermetic (tests/hermetic.py): HOME, XDG, Dask config,
IPython, Jupyter, kernelspecs, environment root, store, registry, pip and uv point at folders
of the run's own, for this process and every process it starts. And no test vanishes quietly
(tests/notrun.py): skips and test modules that were not collected are listed at the end, and
fail the run under CI.
"""

from __future__ import annotations

import contextlib
import os
import time

# First, before anything imports dask (dask reads its config folders once, at import).
from tests import hermetic  # isort: skip

_USER_HOME = os.path.expanduser("~")
PINS = hermetic.pin()
hermetic.check(PINS, _USER_HOME)
_REGISTRY = str(PINS.registry_path)

import pytest  # noqa: E402

pytest_plugins = ["tests.notrun"]


@pytest.fixture(scope="session")
def pins() -> hermetic.Pins:
    """The run's own folders (home, Dask config, Jupyter dirs, kernelspec name, environment
    root, store, registry): what every process of the run reads instead of the user's."""
    return PINS


@pytest.fixture(scope="session")
def kernel_name() -> str:
    """The kernelspec of this interpreter under the suite's own name (tests/hermetic.py)."""
    return PINS.kernel_name


@pytest.fixture
def registry_path(tmp_path, monkeypatch):
    """A registry of this test's own; processes the test starts inherit it through the
    environment."""
    import dask

    fn = str(tmp_path / "registry" / "clusters.json")
    monkeypatch.setenv("DASK_JUPYTER_REMOTE__REGISTRY_PATH", fn)
    with dask.config.set({"jupyter-remote.registry-path": fn}):
        yield fn


@pytest.fixture(autouse=True, scope="session")
def _private_registry():
    import dask

    with dask.config.set({
        "jupyter-remote.registry-path": _REGISTRY,
        "jupyter-remote.environments.root": str(PINS.env_root),
    }):  # fmt: skip
        yield


@pytest.fixture(autouse=True, scope="session")
def _no_split_tombstones_left():
    """Failed splits leave tombstones in /dev/shm (empty files, swept an hour later by the
    package): the run removes the ones it made."""
    from jupyter_remote.worker import shared

    before = set(shared.tombstones())
    yield
    for path in set(shared.tombstones()) - before:
        with contextlib.suppress(OSError):
            os.unlink(path)


@pytest.fixture(scope="session")
def _embedded():
    """Starts the embedded ``local`` cluster once for the session; closes every cluster."""
    from jupyter_remote.core import clusters

    _ = clusters.cluster("local").client
    yield
    clusters.close_all()


@pytest.fixture
def local(_embedded):
    """The embedded ``local`` cluster, as a user gets it: the one ``%%remote`` uses now
    (asked for again by each test: a test that shut it down leaves a fresh one behind)."""
    from jupyter_remote.core import clusters

    found = clusters.cluster("local")
    _ = found.client
    return found


@pytest.fixture
def client(local):
    return local.client


@pytest.fixture(scope="session")
def shell(_embedded):
    from IPython.testing.globalipapp import start_ipython

    ip = start_ipython()
    ip.run_line_magic("load_ext", "jupyter_remote")
    return ip


@pytest.fixture
def run(shell):
    """Run a cell in the real shell; re-raise what it raised, return its result."""

    def run_cell(source: str, **ns):
        shell.user_ns.update(ns)
        result = shell.run_cell(source)
        if result.error_before_exec is not None:
            raise result.error_before_exec
        if result.error_in_exec is not None:
            raise result.error_in_exec
        return result.result

    return run_cell


@pytest.fixture
def tracker_file(tmp_path):
    path = tmp_path / "unpickled.txt"
    path.write_text("")
    return str(path)


# A cell that ignores being interrupted (for about 2 s) and then binds ``big`` anyway.
IGNORES_INTERRUPT = (
    "import time\n"
    "t0 = time.time()\n"
    "try:\n"
    "    while time.time() < t0 + 2:\n"
    "        time.sleep(0.01)\n"
    "except BaseException:\n"
    "    pass\n"
    "big = bytes(10_000_000)\n"
)


def wait_until(predicate, timeout: float = 30.0, what: str = "the condition", every: float = 0.02):
    """Poll ``predicate()`` until it is truthy and return its value; fail the test after
    ``timeout`` seconds. Tests wait for conditions, never for a guessed number of seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def wait_for_file_source(path: str, timeout: float = 60) -> str:
    """Remote code that waits (at most ``timeout`` s) until the test creates ``path``: a gate
    that keeps a call running until the test has seen what it must see while it runs."""
    return (
        "import os as _os, time as _time\n"
        f"_deadline = _time.time() + {timeout}\n"
        f"while not _os.path.exists({path!r}) and _time.time() < _deadline:\n"
        "    _time.sleep(0.01)\n"
    )


def unpickled_in(path: str) -> list[int]:
    with open(path) as f:
        return [int(x) for x in f.read().split()]


pid = os.getpid


@contextlib.contextmanager
def spec_cluster(workers: dict[str, dict], name: str):
    """A ``SpecCluster`` of Nanny workers (``{name: Nanny options}``), all on loopback,
    connected as ``name``; closed on the way out."""
    from distributed import Nanny, Scheduler, SpecCluster

    from jupyter_remote.core import clusters

    spec = {w: {"cls": Nanny, "options": {"host": "127.0.0.1", **options}}
            for w, options in workers.items()}
    scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1",
                                               "dashboard_address": "127.0.0.1:0"}}
    with SpecCluster(workers=spec, scheduler=scheduler) as sc:
        cluster = clusters.connect(sc.scheduler_address, name=name)
        try:
            cluster.client.wait_for_workers(len(spec), timeout=60)
            yield cluster
        finally:
            cluster.close()
