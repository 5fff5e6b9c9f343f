"""Shared fixtures: the package's own embedded cluster (real worker processes) and a real
IPython shell with the extension loaded."""

from __future__ import annotations

import os
import tempfile

import pytest

# Test runs never touch the user's cluster registry: kernels and clusters the tests start
# (in this process and in the processes it starts) register in a throwaway one.
_REGISTRY = os.path.join(tempfile.mkdtemp(prefix="jupyter-remote-tests-"), "clusters.json")
os.environ["DASK_JUPYTER_REMOTE__REGISTRY_PATH"] = _REGISTRY


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

    with dask.config.set({"jupyter-remote.registry-path": _REGISTRY}):
        yield


@pytest.fixture(scope="session")
def local():
    """The embedded ``local`` cluster, as a user gets it: started on first use."""
    from jupyter_remote.core import clusters

    found = clusters.cluster("local")
    _ = found.client  # start it now, once for the session
    yield found
    clusters.close_all()


@pytest.fixture
def client(local):
    return local.client


@pytest.fixture(scope="session")
def shell(local):
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


def unpickled_in(path: str) -> list[int]:
    with open(path) as f:
        return [int(x) for x in f.read().split()]


pid = os.getpid
